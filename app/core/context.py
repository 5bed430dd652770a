from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
# The signed-in user's id for the current request (set by app.deps.optional_user; error reports carry it).
user_id_var: ContextVar[str | None] = ContextVar("user_id", default=None)

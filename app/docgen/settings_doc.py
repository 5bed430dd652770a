"""The settings table: every ``Settings`` field with its environment variable, type, default and meaning.

The meaning is the comment block above the variable in ``.env.example`` (consecutive variables share the
comment above the first), else the field's ``description``. A setting with neither is a
DocGenError. Secret defaults are never printed.
"""

from __future__ import annotations

import json
import re
import typing
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic_settings import BaseSettings

from app.docgen.errors import DocGenError

_ASSIGN = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=")


def env_comments(text: str) -> dict[str, str]:
    """VAR -> the comment above it in an ``.env.example``-style file (first occurrence wins)."""
    out: dict[str, str] = {}
    pending: list[str] = []
    shared = ""
    for raw in text.splitlines():
        line = raw.strip()
        m = _ASSIGN.match(line)
        if m:
            text_ = " ".join(pending) if pending else shared
            out.setdefault(m.group(1), text_)
            shared, pending = text_, []
        elif line.startswith("#"):
            body = line.lstrip("#").strip()
            if not body or body.startswith(("=====", "---")):
                pending, shared = [], ""
            else:
                pending.append(body)
        else:
            pending, shared = [], ""
    return out


def _type(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(str(a) for a in args)
    if args and type(None) in args:
        return _type(next(a for a in args if a is not type(None))) + "?"
    if origin is list:
        return f"list[{_type(args[0])}]"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return annotation.__name__
    return getattr(annotation, "__name__", str(annotation))


def _default(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        return "a development-only value" if value.get_secret_value() else "unset"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, list):
        return "`" + json.dumps(value) + "`"
    if isinstance(value, Path):
        return f"`{value.as_posix()}`"
    return f"`{value}`"


def settings_rows(settings_cls: type[BaseSettings], env_example: str) -> list[tuple[str, str, str, str]]:
    """(ENV_VAR, type, default, meaning) per field; raises DocGenError for an undocumented setting."""
    comments = env_comments(env_example)
    rows, missing = [], []
    for name, info in settings_cls.model_fields.items():
        var = (info.validation_alias if isinstance(info.validation_alias, str) else name).upper()
        meaning = comments.get(var) or info.description or ""
        if not meaning:
            missing.append(var)
            continue
        rows.append((var, _type(info.annotation), _default(info.get_default(call_default_factory=True)), meaning))
    if missing:
        raise DocGenError(f"settings without a description (a comment above them in .env.example, or "
                          f"Field(description=...)): {missing}")
    return rows


def settings_section(settings_cls: type[BaseSettings], env_example: str) -> str:
    rows = settings_rows(settings_cls, env_example)
    out = ["| variable | type | default | meaning |", "|---|---|---|---|"]
    for var, typ, default, meaning in rows:
        out.append(f"| `{var}` | {typ} | {default} | {meaning.replace('|', chr(92) + '|')} |")
    out += ["", f"{len(rows)} settings, read from the environment or `.env` (`app/config.py`); "
            "`.env.example` lists them all with these defaults."]
    return "\n".join(out)

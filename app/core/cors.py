"""CORS (Starlette's middleware), with a refused preflight answered as an RFC 9457 problem like every error."""

from __future__ import annotations

from fastapi.middleware.cors import CORSMiddleware
from starlette.datastructures import Headers
from starlette.responses import Response

from app.core.errors import problem


class ProblemCORSMiddleware(CORSMiddleware):
    """Starlette's ``CORSMiddleware``; a preflight it refuses (an origin, method, header or private-network
    request not allowed: its plain-text 400) becomes a 400 ``cors-refused`` problem with the same headers and
    the refusal as ``detail`` (e.g. "Disallowed CORS origin"). Browsers enforce CORS themselves; the body is for
    whoever debugs the call."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-type")}
        return problem(400, detail=bytes(response.body).decode(), code="cors-refused", title="CORS request refused",
                       headers=headers)

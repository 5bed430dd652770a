"""Interactive API docs that work with no internet: Swagger UI at ``/docs`` and ReDoc at ``/redoc``.

The JavaScript and CSS come from the pinned ``fastapi-offline`` wheel (its ``static`` folder holds
swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js and a favicon), served by the app under
``/docs/assets``; no CDN is referenced. Each page is sent under a content-security policy that allows
scripts only from the app plus the page's one inline bootstrap script (by nonce), and network requests
only to the app itself.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/docs/assets"


def csp(nonce: str) -> str:
    """The docs pages' policy: the app's own scripts + the nonce'd bootstrap, inline styles (both UIs set
    style attributes), images/fonts from the app or data: URIs, ReDoc's blob: worker, requests to the app."""
    return (f"default-src 'none'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def _page(html: HTMLResponse) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    body = bytes(html.body).decode().replace("<script>", f'<script nonce="{nonce}">')
    return HTMLResponse(body, headers={"Content-Security-Policy": csp(nonce), "Cache-Control": "no-store"})


def install_docs(app: FastAPI, openapi_url: str) -> None:
    """Serve the docs pages and their assets (call with the app's ``docs_url``/``redoc_url`` set to None)."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")
    title = app.title
    oauth2_redirect = "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        return _page(get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{title} – Swagger UI", oauth2_redirect_url=oauth2_redirect,
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js", swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
            swagger_ui_parameters={"persistAuthorization": True, "displayRequestDuration": True,
                                   "validatorUrl": None}))

    @app.get(oauth2_redirect, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return _page(get_swagger_ui_oauth2_redirect_html())

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return _page(get_redoc_html(openapi_url=openapi_url, title=f"{title} – API reference",
                                    redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
                                    redoc_favicon_url=f"{ASSETS_URL}/favicon.png", with_google_fonts=False))

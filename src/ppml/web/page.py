"""The page's HTML, its static assets, and the headers every response carries.

The page runs the customer's side in the browser, so what the browser loads
is what keeps the customer's data private: every script, style and request
stays on the service's own origin (the Content-Security-Policy says so to
the browser), and nothing is inlined, so no injected markup can run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from importlib import resources
from types import MappingProxyType

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, Response
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PACKAGE = "ppml.web"
STATIC_FOLDER = "static"
PAGE_TEMPLATE = "templates/index.html"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "worker-src 'self'",
        # The form is never submitted by the browser: the page's script
        # encrypts it. Without the script, a plain submit would put the specs
        # in a URL; this refuses that.
        "form-action 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)

SECURITY_HEADERS: Mapping[str, str] = MappingProxyType(
    {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
    }
)

PAGE_CACHE_CONTROL = "no-cache"
"""The page and its assets are revalidated on every load: a browser never runs an old script
against a newer service."""

MEDIA_TYPES: Mapping[str, str] = MappingProxyType(
    {
        ".html": "text/html; charset=utf-8",
        ".css": "text/css; charset=utf-8",
        # Browsers run module scripts and workers only when served as JavaScript,
        # and the system's MIME table may not know .mjs or may say application/javascript.
        ".js": "text/javascript; charset=utf-8",
        ".mjs": "text/javascript; charset=utf-8",
        ".json": "application/json",
        ".svg": "image/svg+xml",
        ".png": "image/png",
        ".ico": "image/x-icon",
        ".txt": "text/plain; charset=utf-8",
        ".woff2": "font/woff2",
    }
)
"""The only kinds of file served from the static folder; any other file there is a 404."""


class SecurityHeaders:
    """ASGI middleware: every HTTP response gets SECURITY_HEADERS (a handler's own values win).

    It wraps ``send`` only, so request bodies stream through untouched.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class PageAssets(StaticFiles):
    """The files of the package's static folder, each with an explicit media type.

    Paths that leave the folder are refused by StaticFiles (404); so is any
    file whose suffix is not in MEDIA_TYPES.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        """The package's static folder, or ``directory`` instead."""
        if directory is None:
            super().__init__(packages=[(PACKAGE, STATIC_FOLDER)])
        else:
            super().__init__(directory=directory)

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        media_type = MEDIA_TYPES.get(os.path.splitext(full_path)[1].lower())
        if media_type is None:
            raise HTTPException(status_code=404)
        response = FileResponse(
            full_path,
            status_code=status_code,
            stat_result=stat_result,
            media_type=media_type,
            headers={"Cache-Control": PAGE_CACHE_CONTROL},
        )
        if self.is_not_modified(response.headers, Headers(scope=scope)):
            return NotModifiedResponse(response.headers)
        return response


@cache
def page_html() -> str:
    """The page's HTML: a shell the page's script fills in from the service's feature spec."""
    return resources.files(PACKAGE).joinpath(PAGE_TEMPLATE).read_text(encoding="utf-8")

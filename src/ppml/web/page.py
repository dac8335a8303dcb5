"""The page's HTML, its static assets, and the headers every response carries.

The page runs the customer's side in the browser, so what the browser loads
is what keeps the customer's data private: every script, style and request
stays on the service's own origin (the Content-Security-Policy says so to
the browser), and nothing is inlined but the import map, whose hash the
policy names, so no injected markup can run.

The HTML pins the page's code: the script and style tags carry Subresource
Integrity hashes, and the import map gives one for every module under
``static/``, so the browser runs only the bytes this installed package holds.
The hashes are computed from the installed files when this module is first
imported (as the service starts), which makes the HTML a fixed function of
the installed version: page_hashes() gives its SHA-256 for users to compare.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from types import MappingProxyType

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, Response
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PACKAGE = "ppml.web"
STATIC_FOLDER = "static"
PAGE_TEMPLATE = "templates/index.html"

PAGE_CACHE_CONTROL = "no-cache"
"""The page and its assets are revalidated on every load: a browser never runs an old script
against a newer service."""

MEDIA_TYPES: Mapping[str, str] = MappingProxyType(
    {
        ".html": "text/html; charset=utf-8",
        ".css": "text/css; charset=utf-8",
        # Browsers run module scripts only when served as JavaScript,
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


SCRIPT_SUFFIXES = (".js", ".mjs")
"""Files of the static folder that the browser loads as modules: each is in the import map."""

PLACEHOLDERS = ("{{stylesheet_integrity}}", "{{import_map}}", "{{app_integrity}}")
"""What the template leaves for page_html() to fill in, each exactly once."""


def sri(data: bytes) -> str:
    """A Subresource Integrity value: the algorithm, a dash, the base64 digest."""
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode("ascii")


def _static_files(folder: Traversable, prefix: str = "") -> Iterator[tuple[str, Traversable]]:
    """Every file the static folder serves, as (path under static/, file), in name order."""
    for entry in sorted(folder.iterdir(), key=lambda entry: entry.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            yield from _static_files(entry, f"{prefix}{entry.name}/")
        elif os.path.splitext(entry.name)[1].lower() in MEDIA_TYPES:
            yield f"{prefix}{entry.name}", entry


@dataclass(frozen=True)
class PageHashes:
    """What pins the page: the served HTML's digest, and the integrity of every asset.

    ``html_sha256`` is the lowercase hex SHA-256 of the HTML as ``GET /`` serves
    it (UTF-8), what ``sha256sum`` prints for a saved copy. ``assets`` maps each
    file under ``/static/`` (as ``static/app.js``, the path relative to the page)
    to its Subresource Integrity value, ``sha384-`` and the base64 digest, as
    the HTML's integrity attributes and import map carry them.
    """

    html_sha256: str
    assets: Mapping[str, str]

    def to_document(self) -> dict[str, object]:
        """The hashes as a JSON-ready object: {"html_sha256": ..., "assets": {path: sri}}."""
        return {"html_sha256": self.html_sha256, "assets": dict(self.assets)}


@dataclass(frozen=True)
class _Page:
    html: str
    import_map_sha256: str
    hashes: PageHashes


@cache
def _page() -> _Page:
    """The page's HTML with its hashes filled in, from the installed files (read once)."""
    assets = {
        f"{STATIC_FOLDER}/{path}": sri(entry.read_bytes())
        for path, entry in _static_files(resources.files(PACKAGE).joinpath(STATIC_FOLDER))
    }
    # The import map names every module the package ships, not only those app.js imports
    # today: a module added later is pinned without anyone remembering to list it. Its keys
    # are relative to the page, as the script tag's src is, so a path prefix changes nothing.
    import_map = json.dumps(
        {
            "integrity": {
                f"./{path}": value
                for path, value in assets.items()
                if path.endswith(SCRIPT_SUFFIXES)
            }
        },
        indent=1,
        sort_keys=True,
    )
    template = resources.files(PACKAGE).joinpath(PAGE_TEMPLATE).read_text(encoding="utf-8")
    for placeholder in PLACEHOLDERS:
        if template.count(placeholder) != 1:
            raise RuntimeError(f"the page template must hold {placeholder} exactly once")
    html = (
        template.replace("{{stylesheet_integrity}}", assets[f"{STATIC_FOLDER}/page.css"])
        .replace("{{app_integrity}}", assets[f"{STATIC_FOLDER}/app.js"])
        .replace("{{import_map}}", import_map)
    )
    digest = base64.b64encode(hashlib.sha256(import_map.encode("utf-8")).digest())
    html_sha256 = hashlib.sha256(html.encode("utf-8")).hexdigest()
    return _Page(
        html=html,
        import_map_sha256=f"sha256-{digest.decode('ascii')}",
        hashes=PageHashes(html_sha256, MappingProxyType(assets)),
    )


CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        # The import map is the page's one inline script: its hash lets exactly that text
        # run (an import map cannot be loaded from a file), and nothing else inline.
        f"script-src 'self' '{_page().import_map_sha256}'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        # No worker-src: the page starts no worker (its key is made on its own thread, by
        # modules the HTML pins), so default-src 'none' forbids every worker, whose code
        # the browser would not check against any integrity.
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


def page_html() -> str:
    """The page's HTML: a shell the page's script fills in from the service's feature spec,
    with the integrity of its stylesheet, its script and every module they import."""
    return _page().html


def page_hashes() -> PageHashes:
    """The SHA-256 of the HTML that ``GET /`` serves and the integrity of every static asset.

    Both are computed once from the installed files, so they are the same for every
    installation of one ppml version: publish them, and a user can check what a
    service sends against them.
    """
    return _page().hashes

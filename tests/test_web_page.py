"""The browser page of a real `ppml serve` on 127.0.0.1: its assets, headers and /docs."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.client
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from test_service import free_port, start_server

from ppml.cli.main import main
from ppml.datasets import laptops_csv
from ppml.model.training import train
from ppml.web import CONTENT_SECURITY_POLICY, PageAssets, page_hashes

STATIC = resources.files("ppml.web").joinpath("static")
EXPECTED_TYPES = {
    ".html": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".json": "application/json",
    ".png": "image/png",
}
ANY_URL = re.compile(r"""\bhttps?://[^\s"'`<>)]+""", re.IGNORECASE)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    model = tmp_path_factory.mktemp("page") / "model"
    model.mkdir()
    result = train(laptops_csv(), "Price", holdout=0)
    result.spec.save(model / "features.json")
    result.model.save(model / "model.json")
    process, url = start_server(model)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


class _References(HTMLParser):
    """The URLs an HTML document loads or links to, by the attribute that holds them."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[str] = []
        self.linked: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value for name, value in attrs if value is not None}
        if tag in {"script", "img", "iframe", "source", "audio", "video"} and "src" in values:
            self.loaded.append(values["src"])
        elif tag == "link" and "href" in values:
            self.loaded.append(values["href"])
        elif tag in {"a", "area"} and "href" in values:
            self.linked.append(values["href"])
        for name in ("action", "formaction", "srcset", "poster", "data"):
            if name in values:
                self.loaded.append(values[name])


def _references(html: str) -> _References:
    parser = _References()
    parser.feed(html)
    return parser


def _static_files() -> list[str]:
    """Every file in the package's static folder, as its path under /static/."""
    found: list[str] = []

    def walk(folder: object, prefix: str) -> None:
        for entry in folder.iterdir():  # type: ignore[attr-defined]
            if entry.is_dir():
                walk(entry, f"{prefix}{entry.name}/")
            elif not entry.name.startswith("."):
                found.append(f"{prefix}{entry.name}")

    walk(STATIC, "")
    return sorted(found)


def _assert_strict_headers(response: httpx.Response) -> None:
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


def _assert_same_origin(text: str, base: str, where: str) -> None:
    origin = urlsplit(base)
    for match in ANY_URL.finditer(text):
        found = urlsplit(urljoin(base, match.group()))
        assert (found.scheme, found.netloc) == (origin.scheme, origin.netloc), (
            f"{where} names another origin: {match.group()}"
        )


def test_the_page_is_served_with_strict_headers(service: str) -> None:
    response = httpx.get(f"{service}/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    _assert_strict_headers(response)
    csp = response.headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    page = response.text
    assert 'aria-live="polite"' in page
    assert "Price it" in page
    assert 'type="module"' in page
    # No inline script but the import map, no inline style: the policy blocks them anyway.
    inline = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page)
    assert inline == ['<script type="importmap">']
    assert "<style" not in page and " style=" not in page
    assert "What the service sees" in page and "What it cannot see" in page


def test_every_asset_the_page_references_is_served(service: str) -> None:
    page = httpx.get(f"{service}/").text
    references = _references(page)
    assert references.loaded, "the page loads no asset"
    for reference in references.loaded:
        url = urljoin(f"{service}/", reference)
        assert urlsplit(url).path.startswith("/static/"), reference
        response = httpx.get(url)
        assert response.status_code == 200, reference
        _assert_strict_headers(response)
        suffix = Path(urlsplit(url).path).suffix
        assert response.headers["content-type"].startswith(EXPECTED_TYPES[suffix]), reference
    for reference in references.linked:
        assert httpx.get(urljoin(f"{service}/", reference)).status_code == 200, reference


def test_every_static_file_has_its_type_and_the_policy(service: str) -> None:
    files = _static_files()
    assert "app.js" in files and "page.css" in files
    for name in files:
        response = httpx.get(f"{service}/static/{name}")
        assert response.status_code == 200, name
        _assert_strict_headers(response)
        expected = EXPECTED_TYPES[Path(name).suffix]
        assert response.headers["content-type"].startswith(expected), name


IMPORT = re.compile(
    r"""(?:\bimport\s*\(\s*|\bfrom\s+|\bimport\s+|new\s+URL\s*\(\s*)["'](\.{1,2}/[^"']+)["']"""
)


def _imported_modules(service: str) -> dict[str, bytes]:
    """Every module the page's code names (imports, and any new URL), with its bytes:
    from app.js, transitively, as served."""
    pending = [f"{service}/static/app.js"]
    seen: dict[str, bytes] = {}
    while pending:
        url = pending.pop()
        if url in seen:
            continue
        response = httpx.get(url)
        assert response.status_code == 200, f"{url} is imported but not served"
        assert response.headers["content-type"].startswith("text/javascript"), url
        seen[url] = response.content
        pending.extend(urljoin(url, match.group(1)) for match in IMPORT.finditer(response.text))
    return seen


def test_the_library_modules_the_page_imports_are_served(service: str) -> None:
    # The page's script imports the Paillier modules only when they are needed;
    # each of them, and whatever they import in turn, must ship with the package.
    assert len(_imported_modules(service)) > 1


def _sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode("ascii")


class _PageScripts(HTMLParser):
    """The page's script and stylesheet tags, and the text of its import map."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[dict[str, str]] = []
        self.import_maps: list[str] = []
        self._in_import_map = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "script" or (tag == "link" and values.get("rel") == "stylesheet"):
            self.tags.append(values)
        self._in_import_map = tag == "script" and values.get("type") == "importmap"
        if self._in_import_map:
            self.import_maps.append("")

    def handle_data(self, data: str) -> None:
        if self._in_import_map:
            self.import_maps[-1] += data

    def handle_endtag(self, tag: str) -> None:
        self._in_import_map = False


def test_the_html_pins_every_module_the_page_imports(service: str) -> None:
    response = httpx.get(f"{service}/")
    parser = _PageScripts()
    parser.feed(response.text)
    # The import map comes before the first module script, as browsers require.
    assert parser.tags[1]["type"] == "importmap"
    assert len(parser.import_maps) == 1
    (text,) = parser.import_maps
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
    # The policy lets exactly this import map run, and nothing else inline.
    script_src = next(
        part
        for part in response.headers["content-security-policy"].split("; ")
        if part.startswith("script-src ")
    )
    assert script_src == f"script-src 'self' 'sha256-{digest}'"
    integrity = json.loads(text)["integrity"]
    base = f"{service}/"
    pinned = {urljoin(base, key): value for key, value in integrity.items()}
    # Every tag that loads something names its integrity, and it is right.
    for tag in parser.tags:
        reference = tag.get("src") or tag.get("href")
        if reference:
            body = httpx.get(urljoin(base, reference)).content
            assert tag.get("integrity") == _sri(body), reference
    modules = _imported_modules(service)
    assert f"{service}/static/js/keys.js" in modules
    for url, body in modules.items():
        assert pinned.get(url) == _sri(body), f"{url} is not pinned by the import map"


def test_page_hashes_are_those_of_what_is_served(service: str) -> None:
    hashes = page_hashes()
    served = httpx.get(f"{service}/").content
    assert hashes.html_sha256 == hashlib.sha256(served).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", hashes.html_sha256)
    assert sorted(hashes.assets) == [f"static/{name}" for name in _static_files()]
    for path, value in hashes.assets.items():
        assert value == _sri(httpx.get(f"{service}/{path}").content), path
        # Each script's value is the one in the page's import map.
        if path.endswith(".js"):
            assert f'"./{path}": "{value}"' in served.decode("utf-8"), path
    document = hashes.to_document()
    assert json.loads(json.dumps(document)) == {
        "html_sha256": hashes.html_sha256,
        "assets": dict(hashes.assets),
    }


def test_nothing_served_names_another_origin(service: str) -> None:
    for path in ["/", "/docs", *(f"/static/{name}" for name in _static_files())]:
        response = httpx.get(f"{service}{path}")
        assert response.status_code == 200, path
        _assert_same_origin(response.text, f"{service}{path}", path)


def test_docs_lists_the_api_without_loading_anything(service: str) -> None:
    response = httpx.get(f"{service}/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    _assert_strict_headers(response)
    docs = response.text
    for path in ("/healthz", "/v1/features", "/v1/limits", "/v1/predict"):
        assert f"{path}</code>" in docs, path
    assert "POST /v1/predict" in docs
    assert "application/x-ndjson" in docs
    assert "413" in docs and "body, row count or cost over the limits" in docs
    assert 'id="schema-servicelimits"' in docs and "max_request_cost" in docs
    assert "<script" not in docs
    for reference in _references(docs).loaded:
        assert httpx.get(urljoin(f"{service}/docs", reference)).status_code == 200, reference
    document = httpx.get(f"{service}/openapi.json")
    assert document.status_code == 200
    assert "/v1/predict" in document.json()["paths"]
    # Neither the page nor the docs are part of the API.
    assert "/" not in document.json()["paths"] and "/docs" not in document.json()["paths"]
    assert httpx.get(f"{service}/redoc").status_code == 404
    assert httpx.get(f"{service}/docs/oauth2-redirect").status_code == 404


def test_api_answers_carry_the_headers_too(service: str) -> None:
    response = httpx.get(f"{service}/healthz")
    assert response.status_code == 200
    _assert_strict_headers(response)
    missing = httpx.get(f"{service}/static/no-such-file.js")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "http_error"
    _assert_strict_headers(missing)


@pytest.mark.parametrize(
    "path",
    [
        "/static/../page.py",
        "/static/../templates/index.html",
        "/static/js/../../page.py",
        "/static/%2e%2e/page.py",
        "/static/..%2fpage.py",
        "/static/%2e%2e%2f%2e%2e%2fservice/app.py",
        "/static//etc/passwd",
        "/static/js",
        "/static/",
    ],
)
def test_paths_out_of_the_static_folder_are_refused(service: str, path: str) -> None:
    # http.client sends the path as written; httpx would resolve the dots first.
    address = urlsplit(service)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert response.status == 404, path
    assert b"import " not in body and b"<form" not in body


def test_only_known_kinds_of_file_are_served(tmp_path: Path) -> None:
    for name in ("module.mjs", "script.js", "style.css", "notes.py", "key.pem", ".hidden"):
        (tmp_path / name).write_text("x")
    app = FastAPI()
    app.mount("/static", PageAssets(tmp_path))

    async def get_all() -> dict[str, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://page.test") as client:
            return {name: await client.get(f"/static/{name}") for name in os.listdir(tmp_path)}

    responses = asyncio.run(get_all())
    for name in ("module.mjs", "script.js"):
        assert responses[name].headers["content-type"] == "text/javascript; charset=utf-8", name
    assert responses["style.css"].headers["content-type"].startswith("text/css")
    for name in ("notes.py", "key.pem", ".hidden"):
        assert responses[name].status_code == 404, name


def test_page_hashes_vouch_for_a_service_serving_this_page(
    service: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["page-hashes", "--url", service]) == 0
    assert "are this ppml's" in capsys.readouterr().err
    assert main(["page-hashes", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == page_hashes().to_document()


def test_page_hashes_name_every_file_a_server_changed(
    service: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A copy of the page on another server, with one module altered and one missing."""
    site = tmp_path / "site"
    (site / "static").mkdir(parents=True)
    (site / "index.html").write_bytes(httpx.get(f"{service}/").content)
    for path in page_hashes().assets:
        target = site / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(httpx.get(f"{service}/{path}").content)
    altered = site / "static" / "js" / "customer.js"
    altered.write_bytes(altered.read_bytes() + b"\n// sent elsewhere\n")
    (site / "static" / "js" / "names.js").unlink()
    port = free_port()
    copy = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
         "--directory", str(site)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_up(url)
        assert main(["page-hashes", "--url", url]) == 1
    finally:
        copy.terminate()
        copy.wait(timeout=30)
    lines = capsys.readouterr().err.splitlines()
    assert any("/static/js/customer.js: served sha384-" in line for line in lines), lines
    assert any("/static/js/names.js: served missing" in line for line in lines), lines
    assert lines[-1] == f"error: {url}: the page differs from this ppml's in 2 file(s)"


def _wait_until_up(url: str) -> None:
    give_up = time.monotonic() + 30
    while True:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            assert time.monotonic() < give_up, f"{url} did not start"
            time.sleep(0.1)


@pytest.mark.parametrize("url", ["http://[::1", "http://127.0.0.1:1/?x=1", "ftp://host/", "host"])
def test_page_hashes_refuse_what_is_not_a_service_address(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["page-hashes", "--url", url]) == 1
    assert (
        capsys.readouterr().err
        == f"error: {url}: give the service's address, such as https://host:port/\n"
    )

"""The page in a real browser: headless Chromium (Debian's) against a real `ppml serve`.

Playwright drives /usr/bin/chromium, which scripts/install-system-deps.sh
installs; Playwright's own browser download is never used. Every test here
also records each request the page makes, and none may leave the service's
origin.
"""

from __future__ import annotations

import csv
import math
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright import sync_api
from test_service import start_server

from ppml.cli.main import main
from ppml.crypto import KeyPolicy
from ppml.datasets import laptops_csv
from ppml.features import FeatureSpec
from ppml.model.linear import LinearModel
from ppml.model.training import train
from ppml.wire.document import dump_document
from ppml.wire.keyfile import (
    load_private_key,
    load_public_key,
    private_key_document,
    public_key_document,
)
from ppml.wire.messages import (
    BlockFileWriter,
    ciphertext_width,
    encode_ciphertext_value,
    open_query,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The laptop recipe's raw columns that take a value of one of the spec's categorical fields.
CHOICE_COLUMNS = {"Company": "company", "TypeName": "type", "OpSys": "os"}
LOAD_TIMEOUT_MS = 30_000
# Making a 2048-bit key pair in JavaScript takes a few seconds, longer on a slow machine.
PRICE_TIMEOUT_MS = 240_000

pytestmark = pytest.mark.slow


@dataclass
class Service:
    url: str
    spec: FeatureSpec
    model: LinearModel
    root: Path


@dataclass
class Visit:
    """A page opened on the service, with everything it asked for and every error it met."""

    page: sync_api.Page
    requests: list[sync_api.Request] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("browser")
    result = train(laptops_csv(), "Price", holdout=0)
    (root / "model").mkdir()
    result.spec.save(root / "model" / "features.json")
    result.model.save(root / "model" / "model.json")
    process, url = start_server(root / "model")
    try:
        yield Service(url, result.spec, result.model, root)
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sync_api.BrowserContext]:
    # A fresh profile: no cache, cookies or service worker from an earlier run.
    profile = tmp_path_factory.mktemp("chromium-profile")
    # make setup installs it (scripts/install-system-deps.sh): its absence is a failure.
    assert CHROMIUM.exists(), "no /usr/bin/chromium: run scripts/install-system-deps.sh"
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def visit(service: Service, browser: sync_api.BrowserContext) -> Iterator[Visit]:
    page = browser.new_page()
    opened = Visit(page)
    page.on("request", lambda request: opened.requests.append(request))
    page.on("pageerror", lambda error: opened.problems.append(f"uncaught: {error}"))
    page.on(
        "console",
        lambda message: (
            opened.problems.append(f"console: {message.text}")
            if message.type == "error" or "Content Security Policy" in message.text
            else None
        ),
    )
    page.goto(f"{service.url}/")
    page.locator("#price-form").wait_for(state="visible", timeout=LOAD_TIMEOUT_MS)
    try:
        yield opened
    finally:
        page.close()


def assert_same_origin(visit: Visit, service: Service) -> None:
    origin = urlsplit(service.url)
    assert visit.requests, "the page made no request"
    for request in visit.requests:
        where = urlsplit(request.url)
        assert (where.scheme, where.netloc) == (origin.scheme, origin.netloc), request.url


def choices_of(page: sync_api.Page, column: str) -> list[str]:
    """The values a form control offers: a select's options, or its datalist's."""
    control = page.locator(f'[data-column="{column}"]')
    values: list[str] = control.evaluate(
        """(control) => {
            const options = control.tagName === "SELECT" ? control.options : control.list?.options;
            return Array.from(options ?? [], (option) => option.value).filter((value) => value);
        }"""
    )
    return values


def test_the_form_is_generated_from_the_spec(service: Service, visit: Visit) -> None:
    page = visit.page
    columns = list(service.spec.to_document()["input_columns"])
    controls = page.locator("#fields [data-column]")
    assert controls.count() == len(columns)
    # Grouped by topic, so not in the spec's order: one control per column all the same.
    shown = [controls.nth(i).get_attribute("data-column") or "" for i in range(len(columns))]
    assert sorted(shown) == sorted(columns)
    for column in columns:
        control = page.locator(f'[data-column="{column}"]')
        identifier = control.get_attribute("id")
        assert identifier
        # Every control has a visible label, inside a fieldset with a legend.
        assert page.locator(f'label[for="{identifier}"]').is_visible(), column
        assert control.evaluate("(c) => Boolean(c.closest('fieldset')?.querySelector('legend'))")
        assert control.evaluate("(c) => c.required"), column
    categorical = {item["name"]: item for item in service.spec.to_document()["categorical"]}
    for column, field_name in CHOICE_COLUMNS.items():
        offered = choices_of(page, column)
        assert offered == list(categorical[field_name]["categories"]), column
    assert page.get_by_role("button", name="Price it").is_visible()
    assert page.locator("#result[aria-live]").count() == 1
    assert page.locator("details#sent summary").inner_text() == "What was sent"
    assert "cannot see" in page.locator("#visibility").inner_text()
    assert visit.problems == []
    assert_same_origin(visit, service)


def test_the_page_only_talks_to_its_own_origin(service: Service, visit: Visit) -> None:
    page = visit.page
    # Touching the form starts the key pair, which loads the library's modules.
    page.locator('[data-column="Company"]').focus()
    page.wait_for_load_state("networkidle")
    paths = {urlsplit(request.url).path for request in visit.requests}
    assert {"/", "/static/app.js", "/static/page.css", "/v1/features"} <= paths
    assert_same_origin(visit, service)


# Laptops from the bundled data: a plain one, SSD + HDD, a touchscreen with an IPS panel.
PRICED_ROWS = (2, 7, 11)


def laptop_rows(indices: tuple[int, ...]) -> list[dict[str, str]]:
    with laptops_csv().open(newline="", encoding="utf-8") as table:
        rows = list(csv.DictReader(table))
    return [rows[index] for index in indices]


def cli_prices(service: Service, rows: list[dict[str, str]], columns: list[str]) -> list[float]:
    """The prices the command-line customer gets for ``rows``: keygen, encrypt, predict, decrypt."""
    folder = service.root / "cli"
    folder.mkdir(exist_ok=True)
    with (folder / "rows.csv").open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=columns)
        writer.writeheader()
        writer.writerows({column: row[column] for column in columns} for row in rows)
    model, keys = service.root / "model", folder / "keys"
    assert main(["keygen", "--out", str(keys), "--bits", "2048"]) == 0
    assert main(["encrypt", "--public-key", str(keys / "public_key.json"),
                 "--features", str(model / "features.json"), "--input", str(folder / "rows.csv"),
                 "--out", str(folder / "q")]) == 0  # fmt: skip
    assert main(["predict", "--model", str(model), "--input", str(folder / "q"),
                 "--out", str(folder / "r")]) == 0  # fmt: skip
    assert main(["decrypt", "--private-key", str(keys / "private_key.json"),
                 "--query", str(folder / "q"), "--features", str(model / "features.json"),
                 "--input", str(folder / "r"), "--out", str(folder / "p.csv")]) == 0  # fmt: skip
    with (folder / "p.csv").open(newline="", encoding="utf-8") as table:
        return [float(line["prediction"]) for line in csv.DictReader(table)]


def searchable(typed: dict[str, str]) -> list[str]:
    """The typed values that cannot occur by chance in hex, a port or an id: those with a
    character other than a hex digit ("2" or "8" alone could)."""
    return [value for value in typed.values() if not set(value.lower()) <= set(string.hexdigits)]


def assert_only_ciphertexts(body: bytes, service: Service, typed: dict[str, str]) -> None:
    """``body`` is a ppml query and nothing more: ppml reads it (every ciphertext valid) and,
    writing back the header and ciphertexts it read, gets the same bytes; the header (key, ids,
    counts) holds no typed value that could not be a piece of hex."""
    posted, rewritten = service.root / "posted", service.root / "rewritten"
    posted.write_bytes(body)
    header, blocks = open_query(posted, policy=KeyPolicy(require_proof=True))
    width = ciphertext_width(header.public_key)
    with BlockFileWriter(rewritten, header.to_document()) as writer:
        for count, ciphertexts in blocks:
            writer.write_block(
                count, [encode_ciphertext_value(c.value, width) for c in ciphertexts]
            )
    assert rewritten.read_bytes() == body
    head = body.split(b"\n", 1)[0].decode("ascii")
    for value in searchable(typed):
        assert value not in head, value


def test_pricing_laptops_in_the_browser(service: Service, visit: Visit) -> None:
    """The page prices laptops of the bundled data as the command line does (1e-9 relative),
    and what it sends is ciphertexts only: no typed value and no price in clear."""
    page = visit.page
    columns = list(service.spec.to_document()["input_columns"])
    rows = laptop_rows(PRICED_ROWS)
    expected = cli_prices(service, rows, columns)
    answers: list[bytes] = []
    page.on(
        "response",
        lambda response: (
            answers.append(response.body()) if response.request.method == "POST" else None
        ),
    )
    for number, (row, price) in enumerate(zip(rows, expected, strict=True), start=1):
        for column in columns:
            control = page.locator(f'[data-column="{column}"]')
            if control.evaluate("(c) => c.tagName") == "SELECT":
                control.select_option(row[column])
            else:
                control.fill(row[column])
        page.get_by_role("button", name="Price it").click()
        # Either this laptop's price or the page's account of what went wrong.
        page.locator(f'#problem:not([hidden]), #result[data-priced="{number}"]').first.wait_for(
            timeout=PRICE_TIMEOUT_MS
        )
        problem = page.locator("#problem")
        assert problem.is_hidden(), problem.inner_text()
        shown = float(page.locator("#price").get_attribute("data-value") or "nan")
        assert math.isclose(shown, price, rel_tol=1e-9), (shown, price)

    posts = [request for request in visit.requests if request.method == "POST"]
    assert [urlsplit(request.url).path for request in posts] == ["/v1/predict"] * len(rows)
    for request, row in zip(posts, rows, strict=True):
        assert_only_ciphertexts(request.post_data_buffer or b"", service, row)
    for request in visit.requests:
        for row in rows:
            for value in searchable(row):
                assert value not in request.url, (value, request.url)
    # The answers hold the prices only encrypted.
    assert len(answers) == len(rows)
    for answer in answers:
        for price in expected:
            assert repr(price).encode() not in answer
            assert f"{price:.2f}".encode() not in answer
    disclosure = page.locator("#sent-body").text_content() or ""
    assert f"{len(posts[-1].post_data_buffer or b'')} bytes" in disclosure
    assert visit.problems == []
    assert_same_origin(visit, service)


# ---------------------------------------------------------------------------------------------
# The key kept in the browser. The tests share one browser profile, so a key made by one test
# is the stored key of the next: each test starts from the state it needs.

KEYGEN_WORKER = "/static/js/keygen.worker.js"


def key_id_shown(page: sync_api.Page) -> str:
    """The key id the page shows, once it shows one (loaded or made: touching the form asks
    for the key)."""
    page.locator('[data-column="Company"]').focus()
    key = page.locator("#key-id")
    key.wait_for(timeout=PRICE_TIMEOUT_MS)
    return key.inner_text()


def forget_key(page: sync_api.Page) -> None:
    key_id_shown(page)
    page.get_by_role("button", name="Forget this key").click()
    page.locator('#key-status[data-source="none"]').wait_for(timeout=LOAD_TIMEOUT_MS)


def worker_requests(visit: Visit) -> list[sync_api.Request]:
    return [r for r in visit.requests if urlsplit(r.url).path == KEYGEN_WORKER]


def test_the_key_is_kept_across_visits(service: Service, visit: Visit) -> None:
    page = visit.page
    first = key_id_shown(page)
    assert len(first) == 32 and set(first) <= set(string.hexdigits.lower())
    visit.requests.clear()
    page.reload()
    page.locator("#price-form").wait_for(state="visible", timeout=LOAD_TIMEOUT_MS)
    # Shown as soon as the form is, without touching it, and never made again.
    page.locator('#key-status[data-source="stored"] #key-id').wait_for(timeout=LOAD_TIMEOUT_MS)
    assert page.locator("#key-id").inner_text() == first
    assert "kept in this browser" in page.locator("#key-status").inner_text()
    page.locator('[data-column="Company"]').focus()
    page.wait_for_load_state("networkidle")
    assert worker_requests(visit) == []
    assert "unencrypted" in page.locator("#key-help").inner_text()
    assert "ppml decrypt" in page.locator("#key-help").inner_text()
    assert visit.problems == []
    assert_same_origin(visit, service)


def stored_record(page: sync_api.Page) -> object:
    """The page's IndexedDB record of the key, or None."""
    return page.evaluate(
        """() => new Promise((resolve, reject) => {
            const open = indexedDB.open("ppml-page");
            open.onerror = () => reject(open.error);
            open.onsuccess = () => {
                const database = open.result;
                if (!database.objectStoreNames.contains("keys")) return resolve(null);
                const get = database.transaction("keys").objectStore("keys").get("current");
                get.onsuccess = () => { database.close(); resolve(get.result ?? null); };
                get.onerror = () => reject(get.error);
            };
        })"""
    )


def test_forgetting_the_key_makes_a_new_one(service: Service, visit: Visit) -> None:
    page = visit.page
    old = key_id_shown(page)
    forget_key(page)
    assert page.locator("#key-id").count() == 0
    assert page.get_by_role("button", name="Forget this key").is_hidden()
    assert "next price" in page.locator("#key-status").inner_text()
    assert stored_record(page) is None
    visit.requests.clear()
    page.reload()
    page.locator("#price-form").wait_for(state="visible", timeout=LOAD_TIMEOUT_MS)
    assert page.locator("#key-id").count() == 0
    new = key_id_shown(page)
    assert new != old
    assert page.locator("#key-status").get_attribute("data-source") == "made"
    assert len(worker_requests(visit)) == 1
    record = stored_record(page)
    assert isinstance(record, dict) and record["keyPair"]["keyId"] == new
    assert visit.problems == []


def test_a_damaged_stored_key_is_replaced(service: Service, visit: Visit) -> None:
    page = visit.page
    key_id_shown(page)
    record = stored_record(page)
    assert isinstance(record, dict)
    # One hex digit of the modulus changed: the factors no longer multiply to it.
    damaged = dict(record, keyPair=dict(record["keyPair"], n="f" + record["keyPair"]["n"][1:]))
    page.evaluate(
        """(record) => new Promise((resolve, reject) => {
            const open = indexedDB.open("ppml-page");
            open.onsuccess = () => {
                const transaction = open.result.transaction("keys", "readwrite");
                transaction.objectStore("keys").put(record, "current");
                transaction.oncomplete = () => { open.result.close(); resolve(); };
                transaction.onerror = () => reject(transaction.error);
            };
        })""",
        damaged,
    )
    page.reload()
    page.locator("#price-form").wait_for(state="visible", timeout=LOAD_TIMEOUT_MS)
    status = page.locator("#key-status")
    status.get_by_text("could not be used").wait_for(timeout=LOAD_TIMEOUT_MS)
    assert stored_record(page) is None
    new = key_id_shown(page)
    assert new != record["keyPair"]["keyId"]
    assert "discarded" in status.inner_text()
    assert visit.problems == []


def test_the_exported_key_files_are_ppml_key_files(
    service: Service, visit: Visit, tmp_path: Path
) -> None:
    page = visit.page
    shown = key_id_shown(page)
    page.get_by_text("Export key files").click()
    saved: dict[str, Path] = {}
    for name in ("public_key.json", "private_key.json"):
        with page.expect_download() as started:
            page.locator(f'a[data-file="{name}"]').click()
        download = started.value
        assert download.suggested_filename == name
        assert download.url.startswith("blob:")
        saved[name] = tmp_path / name
        download.save_as(saved[name])
    public_key = load_public_key(saved["public_key.json"])
    private_key = load_private_key(saved["private_key.json"])
    assert public_key.key_id == private_key.key_id == shown
    assert private_key.public_key == public_key
    # Byte for byte what ppml itself writes for these keys.
    assert saved["public_key.json"].read_bytes() == dump_document(public_key_document(public_key))
    assert saved["private_key.json"].read_bytes() == dump_document(
        private_key_document(private_key)
    )
    for value in (0, 42, -987_654_321):
        assert private_key.decrypt(public_key.encrypt(value)) == value
    assert visit.problems == []


# ---------------------------------------------------------------------------------------------
# The page's code pinned by Subresource Integrity: a module whose bytes differ from those the
# HTML names is not run.


def tampered(route: sync_api.Route) -> None:
    """Serve the real file with one more line: the same code, different bytes."""
    response = route.fetch()
    route.fulfill(response=response, body=response.body() + b"\n// changed\n")


def test_a_changed_module_is_refused(service: Service, visit: Visit) -> None:
    page = visit.page
    key_id_shown(page)
    # Encrypting loads customer.js (and the modules it imports) for the first time.
    page.route("**/static/js/customer.js", tampered)
    page.get_by_role("button", name="Price it").click()
    problem = page.locator("#problem")
    problem.wait_for(state="visible", timeout=PRICE_TIMEOUT_MS)
    assert "customer.js could not be loaded" in problem.inner_text()
    assert [r for r in visit.requests if r.method == "POST"] == []
    assert any("integrity" in line for line in visit.problems), visit.problems


def test_a_changed_page_script_is_not_run(
    service: Service, browser: sync_api.BrowserContext
) -> None:
    page = browser.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(urlsplit(request.url).path))
    try:
        page.route("**/static/app.js", tampered)
        page.goto(f"{service.url}/")
        page.wait_for_load_state("networkidle")
        assert page.locator("#price-form").is_hidden()
        assert "Loading" in page.locator("#status").inner_text()
        assert not [path for path in requests if path.startswith("/v1/")]
    finally:
        page.close()


def test_the_keygen_worker_is_not_pinned(service: Service, visit: Visit) -> None:
    """What docs/service.md says of the worker: Chromium applies neither the script tag's
    integrity nor the import map's to a module worker or to what it imports, so a changed
    worker still runs. If this fails, the browser pins workers now: update the docs."""
    page = visit.page
    forget_key(page)
    page.route("**/static/js/keygen.worker.js", tampered)
    page.route("**/static/js/keys.js", tampered)
    # The page imported keys.js before the routes (to load the key it forgot), so only the
    # worker's fetch of it is changed. After forgetting, the next pricing makes the key.
    page.get_by_role("button", name="Price it").click()
    page.locator('#problem:not([hidden]), #result[data-priced="1"]').first.wait_for(
        timeout=PRICE_TIMEOUT_MS
    )
    assert page.locator("#problem").is_hidden(), page.locator("#problem").inner_text()
    assert page.locator("#key-status").get_attribute("data-source") == "made"
    assert len(worker_requests(visit)) == 1
    assert [r for r in visit.requests if r.method == "POST"]

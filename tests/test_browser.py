"""The page in a real browser: headless Chromium (Debian's) against a real `ppml serve`.

Playwright drives /usr/bin/chromium, which scripts/install-system-deps.sh
installs; Playwright's own browser download is never used. Every test here
also records each request the page makes, and none may leave the service's
origin.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
import math
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright import sync_api
from test_service import start_server

from ppml.cli.main import main
from ppml.crypto import KeyPolicy
from ppml.datasets import laptops_csv
from ppml.features import FeatureSpec
from ppml.features.spec import spec_id_of
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


@contextlib.contextmanager
def page_on(
    browser: sync_api.BrowserContext, url: str, spec: bytes | None = None
) -> Iterator[Visit]:
    """A new page open on the service at ``url`` (serving ``spec`` as its feature spec if
    given), with every request it makes and every error it meets; closed on exit."""
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
    try:
        if spec is not None:
            serve_spec(page, spec)
        page.goto(f"{url}/")
        page.locator("#price-form").wait_for(state="visible", timeout=LOAD_TIMEOUT_MS)
        yield opened
    finally:
        page.close()


@pytest.fixture
def visit(service: Service, browser: sync_api.BrowserContext) -> Iterator[Visit]:
    with page_on(browser, service.url) as opened:
        yield opened


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
    assert page.locator("#key-status").get_attribute("data-source") == "stored"
    assert page.locator("#key-id").inner_text() == first
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


def test_the_key_generation_code_is_pinned(service: Service, visit: Visit) -> None:
    """The key is made by keys.js on the page's thread, so the import map's integrity covers
    it: changed bytes of keys.js make no key and send nothing."""
    page = visit.page
    forget_key(page)
    page.route("**/static/js/keys.js", tampered)
    page.reload()
    page.locator("#price-form").wait_for(state="visible", timeout=LOAD_TIMEOUT_MS)
    page.get_by_role("button", name="Price it").click()
    problem = page.locator("#problem")
    problem.wait_for(state="visible", timeout=PRICE_TIMEOUT_MS)
    assert "keys.js could not be loaded" in problem.inner_text()
    assert page.locator("#key-id").count() == 0
    assert page.locator("#key-status").get_attribute("data-source") == "none"
    assert stored_record(page) is None
    assert [r for r in visit.requests if r.method == "POST"] == []
    assert any("integrity" in line for line in visit.problems), visit.problems
    # Nothing the page loaded is a worker: none could run unpinned code.
    assert not [r for r in visit.requests if r.resource_type in ("worker", "sharedworker")]


# Timing the key's generation: when the status says it is being made and when it is made,
# every gap between animation frames (the longest is the longest stall of the page's
# thread, rendering included) and the long tasks Chromium reports.
WATCH_KEY_GENERATION = """() => {
    const watch = { frames: [], longTasks: [], clicks: [] };
    window.keyWatch = watch;
    new MutationObserver(() => {
        const source = document.getElementById("key-status").dataset.source;
        if (source === "making" && watch.start === undefined) watch.start = performance.now();
        if (source === "made" && watch.end === undefined) watch.end = performance.now();
    }).observe(document.getElementById("key-status"), { attributes: true });
    const frame = (time) => {
        watch.frames.push(time);
        if (watch.end === undefined) requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
    new PerformanceObserver((list) => {
        for (const entry of list.getEntries()) watch.longTasks.push(entry.duration);
    }).observe({ type: "longtask" });
    document.querySelector("details#sent summary").addEventListener("click", () => {
        watch.clicks.push(document.getElementById("key-status").dataset.source);
    });
}"""


def test_the_page_stays_responsive_while_the_key_is_made(service: Service, visit: Visit) -> None:
    page = visit.page
    forget_key(page)
    page.reload()
    page.locator("#price-form").wait_for(state="visible", timeout=LOAD_TIMEOUT_MS)
    page.evaluate(WATCH_KEY_GENERATION)
    # Touching the form starts the key; a click elsewhere is handled while it is being made.
    page.locator('[data-column="Company"]').focus()
    page.locator('#key-status[data-source="making"]').wait_for(timeout=LOAD_TIMEOUT_MS)
    page.locator("details#sent summary").click()
    page.locator('#key-status[data-source="made"]').wait_for(timeout=PRICE_TIMEOUT_MS)
    watch = page.evaluate("() => window.keyWatch")
    assert watch["clicks"] and watch["clicks"][0] == "making", watch["clicks"]
    assert page.locator("details#sent").get_attribute("open") is not None
    # The progress bar moved while the key was made.
    assert "%" in page.locator("#status").inner_text() or page.locator("#key-id").count() == 1
    frames = [t for t in watch["frames"] if watch["start"] <= t <= watch["end"]]
    gaps = [later - earlier for earlier, later in itertools.pairwise(frames)]
    seconds = (watch["end"] - watch["start"]) / 1000
    stall = max(gaps, default=0.0)
    longest_task = max(watch["longTasks"], default=0.0)
    print(
        f"\n2048-bit key pair made in {seconds:.2f} s; longest gap between frames "
        f"{stall:.0f} ms over {len(frames)} frames; longest task {longest_task:.0f} ms"
    )
    assert len(frames) > 2
    assert visit.problems == []


# ---------------------------------------------------------------------------------------------
# What the page tells about the row it prices, and what it refuses to do.


def price(page: sync_api.Page, number: int) -> None:
    """Press Price it and wait for price `number` of this tab, or for a problem."""
    page.get_by_role("button", name="Price it").click()
    page.locator(f'#problem:not([hidden]), #result[data-priced="{number}"]').first.wait_for(
        timeout=PRICE_TIMEOUT_MS
    )


def posts(visit: Visit) -> list[sync_api.Request]:
    return [r for r in visit.requests if r.method == "POST"]


def test_an_unknown_category_is_said_before_the_price(service: Service, visit: Visit) -> None:
    page = visit.page
    page.locator('[data-column="Company"]').fill("Acme")
    price(page, 1)
    assert page.locator("#problem").is_hidden(), page.locator("#problem").inner_text()
    notes = page.locator("#row-notes")
    assert notes.get_attribute("aria-live") == "polite"
    text = notes.inner_text()
    assert "Manufacturer: 'Acme' is not a category the model knows; encoded as" in text
    control = page.locator('[data-column="Company"]')
    note_id = f"{control.get_attribute('id')}-note"
    assert note_id in (control.get_attribute("aria-describedby") or "").split()
    assert "not a category the model knows" in page.locator(f"#{note_id}").inner_text()
    # Taken, as the command line takes it: not marked invalid.
    assert control.get_attribute("aria-invalid") is None
    # A row the model reads as typed has no notes.
    control.fill(choices_of(page, "Company")[0])
    price(page, 2)
    assert notes.inner_text() == ""
    assert page.locator(f"#{note_id}").is_hidden()
    assert visit.problems == []


def test_a_faulty_field_is_named_by_its_label_and_focused(service: Service, visit: Visit) -> None:
    page = visit.page
    key_id_shown(page)
    ram = page.locator('[data-column="Ram"]')
    ram.fill("lots")
    page.get_by_role("button", name="Price it").click()
    problem = page.locator("#problem")
    problem.wait_for(state="visible", timeout=PRICE_TIMEOUT_MS)
    assert "Memory (RAM): cannot read 'lotsGB'" in problem.inner_text()
    assert "Nothing was sent" in problem.inner_text()
    assert ram.get_attribute("aria-invalid") == "true"
    assert ram.evaluate("(control) => control === document.activeElement")
    # A value outside the spec's bounds names the field too, not the model's input.
    ram.fill("100000")
    page.get_by_role("button", name="Price it").click()
    problem.get_by_text("outside the declared bounds").wait_for(timeout=LOAD_TIMEOUT_MS)
    assert problem.inner_text().startswith("Nothing was sent. Memory (RAM): ")
    assert ram.get_attribute("aria-invalid") == "true"
    # Fixed, the mark goes.
    ram.fill("8")
    price(page, 1)
    assert problem.is_hidden(), problem.inner_text()
    assert ram.get_attribute("aria-invalid") is None
    assert len(posts(visit)) == 1


def refuse_with(body: bytes, status: int = 400) -> sync_api.RouteHandlerCallback:
    def handler(route: sync_api.Route) -> None:
        route.fulfill(status=status, body=body, content_type="application/json")

    return handler


def test_after_a_refusal_the_page_says_what_a_retry_tells(service: Service, visit: Visit) -> None:
    page = visit.page
    key_id_shown(page)
    refusal = b'{"error": {"code": "invalid_query", "message": "not today"}}'
    page.route("**/v1/predict", refuse_with(refusal))
    price(page, 1)
    text = page.locator("#problem").inner_text()
    assert "The service refused the query: not today." in text
    assert "Trying again with other values tells the service something about them" in text


def test_a_refusal_is_read_strictly(service: Service, visit: Visit) -> None:
    """A refusal that is not strict JSON (a member twice) is not believed: the status line
    is shown instead of either message."""
    page = visit.page
    key_id_shown(page)
    twice = (
        b'{"error": {"code": "a", "message": "first"}, "error": {"code": "b", "message": "second"}}'
    )
    page.route("**/v1/predict", refuse_with(twice, status=409))
    price(page, 1)
    text = page.locator("#problem").inner_text()
    assert "the service answered 409" in text
    assert "first" not in text and "second" not in text


@dataclass
class Generic:
    """A classifier on a table of the generic recipe, served, with its spec's document."""

    url: str
    spec: dict[str, object]


# Class labels that Number() reads as numbers: they must be shown as written.
LABELS = ("0x10", "1e3")


@pytest.fixture(scope="module")
def generic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Generic]:
    root = tmp_path_factory.mktemp("generic")
    table = root / "data.csv"
    with table.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["size", "colour", "label"])
        for index in range(90):
            size, colour = 1 + index % 9, ("red", "blue", "green")[index % 3]
            writer.writerow([size, colour, LABELS[(size + index % 4) > 6]])
    result = train(table, "label", holdout=0)
    (root / "model").mkdir()
    result.spec.save(root / "model" / "features.json")
    result.model.save(root / "model" / "model.json")
    process, url = start_server(root / "model")
    try:
        yield Generic(url, result.spec.to_document())
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def generic_visit(generic: Generic, browser: sync_api.BrowserContext) -> Iterator[Visit]:
    with page_on(browser, generic.url) as opened:
        yield opened


def test_unusual_and_missing_values_are_said_and_marked(
    generic: Generic, generic_visit: Visit
) -> None:
    page = generic_visit.page
    size, colour = page.locator('[data-column="size"]'), page.locator('[data-column="colour"]')
    size.fill("nine")
    colour.fill("purple")
    price(page, 1)
    assert page.locator("#problem").is_hidden(), page.locator("#problem").inner_text()
    lines = page.locator("#row-notes li").all_inner_texts()
    assert lines == [
        "size: unusual value 'nine' treated as missing, filled in as the spec says",
        "colour: 'purple' is not a category the model knows; encoded as no category",
    ]
    assert size.get_attribute("aria-invalid") == "true"
    assert colour.get_attribute("aria-invalid") is None
    size.fill("")
    colour.fill("red")
    price(page, 2)
    assert page.locator("#row-notes li").all_inner_texts() == [
        "size: missing value filled in as the spec says"
    ]
    assert generic_visit.problems == []


def test_class_labels_are_shown_as_written(generic: Generic, generic_visit: Visit) -> None:
    page = generic_visit.page
    shown: set[str] = set()
    for size in ("1", "9"):
        page.locator('[data-column="size"]').fill(size)
        price(page, len(shown) + 1)
        assert page.locator("#problem").is_hidden(), page.locator("#problem").inner_text()
        label = page.locator("#price")
        assert label.inner_text() == label.get_attribute("data-value")
        shown.add(label.inner_text())
        cells = page.locator("#result .price").all_inner_texts()
        assert len(cells) == 3
        for cell in cells[1:]:
            # Percentages, two decimals, or a bound for the extremes.
            assert cell.endswith("%"), cell
            assert cell.startswith(("< ", "> ")) or len(cell.split(".")[1]) == 3, cell
        assert page.locator("#result .label").all_inner_texts()[1:] == [
            f"Probability of {label}: " for label in LABELS
        ]
    assert shown == set(LABELS), shown


def spec_bytes(document: dict[str, object]) -> bytes:
    """A spec document with its spec_id recomputed from its content, as ppml writes it."""
    content = {k: v for k, v in document.items() if k not in ("format", "version", "spec_id")}
    data = dump_document({**document, "spec_id": spec_id_of(content)})
    FeatureSpec.parse(data)  # ppml itself reads it: only its size makes it hostile
    return data


def serve_spec(page: sync_api.Page, body: bytes) -> None:
    page.route(
        "**/v1/features",
        lambda route: route.fulfill(status=200, body=body, content_type="application/json"),
    )


def test_a_spec_with_too_many_inputs_is_refused_before_encrypting(
    generic: Generic, browser: sync_api.BrowserContext
) -> None:
    """A hostile spec: one categorical column with 20,000 categories, 20,000 model inputs.
    The page says so and encrypts nothing."""
    document = json.loads(json.dumps(generic.spec))
    categories = [f"c{index}" for index in range(20_000)]
    (colour,) = document["categorical"]
    colour["categories"] = categories
    colour["fill"] = categories[0]
    document["features"] = ["size", *(f"colour={category}" for category in categories)]
    with page_on(browser, generic.url, spec_bytes(document)) as visit:
        page, requests = visit.page, visit.requests
        page.locator('[data-column="colour"]').fill("c1")
        price(page, 1)
        text = page.locator("#problem").inner_text()
        assert "Nothing was sent: the model takes 20,001 inputs" in text, text
        assert "Encrypting" not in page.locator("#status").inner_text()
        assert [r for r in requests if r.method == "POST"] == []


def test_a_query_over_the_service_limits_is_not_encrypted(
    generic: Generic, browser: sync_api.BrowserContext
) -> None:
    limits = json.loads(httpx.get(f"{generic.url}/v1/limits").content)
    limits["max_request_cost"] = 10
    small = json.dumps(limits).encode()
    with page_on(browser, generic.url) as visit:
        page, requests = visit.page, visit.requests
        page.route(
            "**/v1/limits",
            lambda route: route.fulfill(status=200, body=small, content_type="application/json"),
        )
        page.reload()
        page.locator("#price-form").wait_for(state="visible", timeout=LOAD_TIMEOUT_MS)
        price(page, 1)
        text = page.locator("#problem").inner_text()
        assert "the service takes at most 10" in text, text
        assert [r for r in requests if r.method == "POST"] == []


def test_a_column_named_proto_is_priced(generic: Generic, browser: sync_api.BrowserContext) -> None:
    """The page builds the row without a prototype: a column named "__proto__" keeps its
    value. (The service refuses the query, its spec being another: the query was made.)"""
    document = json.loads(json.dumps(generic.spec))
    (size,) = [c for c in document["recipe"]["columns"] if c["name"] == "size"]
    size["name"] = "__proto__"
    document["input_columns"] = [
        "__proto__" if c == "size" else c for c in document["input_columns"]
    ]
    document["numeric"][0]["name"] = "__proto__"
    document["features"] = ["__proto__" if f == "size" else f for f in document["features"]]
    with page_on(browser, generic.url, spec_bytes(document)) as visit:
        page, requests = visit.page, visit.requests
        page.locator('[data-column="__proto__"]').fill("4")
        price(page, 1)
        assert "could not price" not in page.locator("#problem").inner_text()
        assert [r for r in requests if r.method == "POST"]


MARKUP = '<img src="x" onerror="document.title=\'run\'">'


def test_markup_from_the_spec_or_a_refusal_is_shown_as_text(
    generic: Generic, browser: sync_api.BrowserContext
) -> None:
    """Categories and a refusal message that carry HTML are written as text: no element is
    made of them and nothing of them runs."""
    document = json.loads(json.dumps(generic.spec))
    (colour,) = document["categorical"]
    categories = [MARKUP, '"><script>document.title="run"</script>']
    colour["categories"] = categories
    colour["fill"] = categories[0]
    document["features"] = ["size", *(f"colour={category}" for category in categories)]
    message = json.dumps({"error": {"code": "invalid_query", "message": MARKUP}}).encode()
    with page_on(browser, generic.url, spec_bytes(document)) as visit:
        page = visit.page
        title = page.title()
        assert choices_of(page, "colour") == categories
        page.route("**/v1/predict", refuse_with(message, status=400))
        page.locator('[data-column="size"]').fill("4")
        control = page.locator('[data-column="colour"]')
        if control.evaluate("(c) => c.tagName") == "SELECT":
            control.select_option(MARKUP)
        else:
            control.fill(MARKUP)
        price(page, 1)
        assert MARKUP in page.locator("#problem").inner_text()
        assert page.locator("img, script:not([type=importmap]):not([src])").count() == 0
        assert page.title() == title
        # The browser reports the refused request itself; nothing else went wrong.
        assert [p for p in visit.problems if "status of 400" not in p] == []


def test_a_second_tab_neither_replaces_nor_forgets_the_first_tabs_key(
    service: Service, browser: sync_api.BrowserContext
) -> None:
    with page_on(browser, service.url) as earlier:
        if stored_record(earlier.page) is not None:
            forget_key(earlier.page)
    with page_on(browser, service.url) as first, page_on(browser, service.url) as second:
        # Both tabs were opened with nothing stored; the first to make a key keeps it.
        kept = key_id_shown(first.page)
        other = key_id_shown(second.page)
        assert other != kept
        assert (
            "Another tab of this site stored its key first"
            in second.page.locator("#key-status").inner_text()
        )
        record = stored_record(first.page)
        assert isinstance(record, dict) and record["keyPair"]["keyId"] == kept
        # Forgetting in the second tab forgets its own key, not the stored one.
        second.page.get_by_role("button", name="Forget this key").click()
        second.page.locator('#key-status[data-source="none"]').wait_for(timeout=LOAD_TIMEOUT_MS)
        record = stored_record(first.page)
        assert isinstance(record, dict) and record["keyPair"]["keyId"] == kept

"""The customer's side of the service: private round trips over HTTP.

Only encrypted queries leave the customer's process; the raw rows, the
private key and the decrypted predictions never do.

A table too big for one request is split: the client reads what one query
may hold from the service (``GET /v1/limits``), prices its requests the way
the service will (rows, cost units, the largest body the query's header
allows), and sends a whole number of packed blocks per request. Each answer
is checked and decrypted against the client's own record of its request, and
the predictions are streamed into one output in input order, which appears
only once every request has succeeded.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import json
import math
import tempfile
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from ppml.crypto import PrivateKey, PublicKey
from ppml.errors import (
    DataError,
    FileFormatError,
    InvalidCiphertextError,
    ServiceError,
    SettingError,
    SpecMismatchError,
)
from ppml.features.outputs import PredictionCell
from ppml.features.spec import EncodingReport, FeatureSpec
from ppml.features.table import CsvOptions, CsvTable
from ppml.roles import customer
from ppml.roles.parallel import ProgressReporter
from ppml.wire.document import MAX_DOCUMENT_BYTES, load_json
from ppml.wire.messages import QueryHeader, QueryRecord, ciphertext_width

QUERY_MEDIA_TYPE = "application/x-ndjson"
BINARY_MEDIA_TYPE = "application/octet-stream"

RETRY_STATUSES = frozenset({429, 503})
"""Statuses whose ``Retry-After`` is honoured: a quota or the service's queue is full for now."""
MAX_ATTEMPTS = 4
"""Tries of one request in all, when the service keeps asking to retry it."""
MAX_RETRY_WAIT_S = 120.0
"""The longest ``Retry-After`` waited for; a longer one (a quota used up for the hour) stops."""
LIMIT_MARGIN = 0.98
"""Requests are planned within this fraction of the service's cost and body limits, so that a
rounding difference or a slightly longer header never turns a planned request into a 413."""
HEADER_MARGIN_BYTES = 256
"""Added to the header line's planned length: its row count and members may vary a little."""
MAX_LIMITS_BYTES = 64 << 10


class ServiceRefusedError(ServiceError):
    """The service answered with an error status.

    ``retry_after`` is the number of seconds its ``Retry-After`` header
    asked for, when it sent one that could be read.
    """

    def __init__(self, message: str, status: int, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status, self.retry_after = status, retry_after


def _one_line(text: object, limit: int = 300) -> str:
    """A peer's text made safe for a one-line message: whitespace folded, length capped."""
    folded = " ".join(str(text).split())
    return folded if len(folded) <= limit else folded[: limit - 1] + "…"


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or an HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit() and len(value) <= 10:
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None  # RFC 9110 dates are in GMT; one without a zone is not one
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _read_bounded(response: httpx.Response, limit: int, url: str) -> bytes:
    """The body of a streamed response, refusing one longer than ``limit`` bytes."""
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise ServiceError(f"{url}: the answer is longer than the {limit} bytes expected")
        chunks.append(chunk)
    return b"".join(chunks)


def _send(
    client: httpx.Client, method: str, path: str, url: str, limit: int, **options: object
) -> bytes:
    """One request; a 4xx/5xx becomes a one-line :class:`ServiceRefusedError`.

    An answer longer than ``limit`` bytes is refused as it arrives.
    """
    with client.stream(method, path, **options) as response:  # type: ignore[arg-type]
        body = _read_bounded(response, limit, url)
        if response.is_success:
            return body
        try:
            error = load_json(body, max_bytes=MAX_DOCUMENT_BYTES)["error"]
            detail = f"{_one_line(error['code'], 40)}: {_one_line(error['message'])}"
        except (ValueError, KeyError, TypeError):
            detail = _one_line(response.reason_phrase)
        raise ServiceRefusedError(
            f"{url}: HTTP {response.status_code} {detail}",
            response.status_code,
            _retry_after(response.headers.get("retry-after")),
        )


def fetch_spec(client: httpx.Client, url: str) -> FeatureSpec:
    """The service's public feature spec, with its content hash checked."""
    body = _send(client, "GET", "/v1/features", url, MAX_DOCUMENT_BYTES)
    try:
        return FeatureSpec.parse(body, f"{url}/v1/features")
    except FileFormatError as error:
        raise ServiceError(str(error)) from None


_LIMIT_SECTIONS = {
    "scores": "cost",
    "reference_key_bits": "cost",
    "mask_units": "cost",
    "key_units": "cost",
    "ciphertext_overhead_bytes": "body",
    "block_overhead_bytes": "body",
    "query_overhead_bytes": "body",
}
"""Members of the limits document that sit in a section rather than at its top level."""


@dataclass(frozen=True)
class RequestLimits:
    """What one query may hold at a service, and the constants it prices queries with.

    Read from ``GET /v1/limits`` (docs/service.md); :meth:`cost` and
    :meth:`body_bound` compute what the service computes from a query's header.
    """

    max_rows: int
    max_request_cost: int
    max_body_bytes: int
    max_header_bytes: int
    min_key_bits: int
    max_key_bits: int
    scores: int
    reference_key_bits: int
    mask_units: int
    key_units: int
    ciphertext_overhead_bytes: int
    block_overhead_bytes: int
    query_overhead_bytes: int
    binary: bool = False
    """Whether the service takes queries in the binary container (its ``containers``)."""

    @classmethod
    def parse(cls, data: bytes, where: str) -> RequestLimits:
        """The limits document of a service; :class:`ServiceError` if it is not one."""
        try:
            document = load_json(data, max_bytes=MAX_LIMITS_BYTES)
        except FileFormatError as error:
            problem = error.problem
            raise ServiceError(f"{where}: the limits are not valid JSON ({problem})") from None
        if not isinstance(document, dict):
            raise ServiceError(f"{where}: the limits are not a JSON object")
        values: dict[str, int] = {}
        for field in fields(cls):
            if field.name == "binary":
                continue
            section = _LIMIT_SECTIONS.get(field.name)
            members = document if section is None else document.get(section)
            value = members.get(field.name) if isinstance(members, dict) else None
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ServiceError(f"{where}: the limits lack a whole number {field.name!r}")
            values[field.name] = value
        containers = document.get("containers", ["jsonl"])  # absent: an older service
        if not isinstance(containers, list) or not all(isinstance(c, str) for c in containers):
            raise ServiceError(f"{where}: the limits' containers are not a list of names")
        limits = cls(**values, binary="binary" in containers)
        if min(limits.max_rows, limits.max_request_cost, limits.max_body_bytes) < 1 or (
            min(limits.reference_key_bits, limits.scores) < 1
        ):
            raise ServiceError(f"{where}: the limits leave no room for any query")
        return limits

    def cost(self, blocks: int, features: int, key_bits: int) -> int:
        """Cost units of a query of ``blocks`` blocks, as the service prices it (costs.py)."""
        # The same expression, in the same order, as the service's: the same float rounding.
        scale = key_bits / self.reference_key_bits
        per_block = features * scale**2 + self.mask_units * scale**3
        return math.ceil(blocks * self.scores * per_block + self.key_units * scale**3)

    def body_bound(self, blocks: int, features: int, key_bits: int, header_bytes: int) -> int:
        """The largest body the service allows a query of this shape; it must fit max_body_bytes."""
        raw = -(-2 * key_bits // 8)  # a ciphertext is below n^2: at most 2 * bits bits
        text = 4 * -(-raw // 3)  # its base64
        block = features * (text + self.ciphertext_overhead_bytes) + self.block_overhead_bytes
        return header_bytes + blocks * block + self.query_overhead_bytes


def fetch_limits(client: httpx.Client, url: str) -> RequestLimits | None:
    """The service's per-query limits, or ``None`` from a service too old to publish them."""
    try:
        body = _send(client, "GET", "/v1/limits", url, MAX_LIMITS_BYTES)
    except ServiceRefusedError as refusal:
        if refusal.status == 404:
            return None
        raise
    return RequestLimits.parse(body, f"{url}/v1/limits")


def rows_per_request(
    limits: RequestLimits, spec: FeatureSpec, public_key: PublicKey, rows: int, url: str
) -> int:
    """How many of ``rows`` rows one request may hold: whole packed blocks, within every limit.

    :class:`ServiceError` if not even one block fits (a key too large, say),
    before anything is encrypted.
    """
    bits = public_key.bits
    if not limits.min_key_bits <= bits <= limits.max_key_bits:
        raise ServiceError(
            f"{url}: the service takes keys of {limits.min_key_bits} to {limits.max_key_bits} "
            f"bits, not {bits}; nothing was sent"
        )
    layout = customer.query_layout(spec, bits)
    features = len(spec.feature_names)
    # The header line is the query's JSON header as BlockFileWriter writes it;
    # the one with every row has the most digits a request's can have.
    header = QueryHeader(public_key, spec.spec_id, spec.frac_bits, features, rows, layout)
    header_text = json.dumps(header.to_document(), separators=(",", ":"))
    header_bytes = len(header_text.encode("utf-8")) + HEADER_MARGIN_BYTES
    if header_bytes > limits.max_header_bytes:
        raise ServiceError(
            f"{url}: a query header under this key takes {header_bytes} bytes; the service "
            f"reads at most {limits.max_header_bytes}; nothing was sent"
        )
    one_cost = limits.cost(1, features, bits)
    if one_cost > limits.max_request_cost:
        raise ServiceError(
            f"{url}: one block of {layout.slots} rows under a {bits}-bit key costs {one_cost} "
            f"units; the service takes at most {limits.max_request_cost} per request "
            "(use a smaller key); nothing was sent"
        )
    one_body = limits.body_bound(1, features, bits, header_bytes)
    if one_body > limits.max_body_bytes:
        raise ServiceError(
            f"{url}: one block under a {bits}-bit key may take {one_body} bytes; the service "
            f"takes at most {limits.max_body_bytes} per request; nothing was sent"
        )
    if limits.max_rows < layout.slots:
        return min(limits.max_rows, rows)  # part of one block, priced as a whole one

    cost_budget = limits.max_request_cost * LIMIT_MARGIN
    body_budget = limits.max_body_bytes * LIMIT_MARGIN

    def fits(blocks: int) -> bool:
        return (
            limits.cost(blocks, features, bits) <= cost_budget
            and limits.body_bound(blocks, features, bits, header_bytes) <= body_budget
        )

    # Both bounds grow with the blocks: the largest count that fits, by bisection.
    low, high = 1, min(limits.max_rows // layout.slots, -(-rows // layout.slots))
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return min(low * layout.slots, rows)


def _result_limit(header: QueryHeader, scores: int) -> int:
    """Generous upper bound on the size of an honest result for ``header``'s query, answered
    with ``scores`` ciphertexts per block."""
    ciphertext_text = 4 * -(-ciphertext_width(header.public_key) // 3)
    return (1 << 20) + 2 * header.blocks * (scores * (ciphertext_text + 4) + 128)


class _Continued:
    """Passes one request's decryption progress on to the reporter of the whole query."""

    def __init__(self, reporter: ProgressReporter) -> None:
        self._reporter = reporter

    def start(self, total: int) -> None:
        """Ignored: the whole query's total was given once, before the first request."""

    def advance(self, rows: int) -> None:
        """``rows`` more rows have been answered and decrypted."""
        self._reporter.advance(rows)


def _open_table(
    input_csv: str | Path | CsvTable,
    spec: FeatureSpec,
    csv_options: CsvOptions | None,
    id_columns: Sequence[str],
) -> CsvTable:
    """The input table, with the columns the spec reads and the id columns checked."""
    if isinstance(input_csv, CsvTable):
        table = input_csv
        needed = [*spec.recipe.input_columns, *id_columns]
    else:
        table = spec.open_table(input_csv, csv_options)
        needed = list(id_columns)
    missing = [name for name in dict.fromkeys(needed) if name not in table.columns]
    if missing:
        raise DataError(
            f"missing column{'s' if len(missing) > 1 else ''} "
            + ", ".join(repr(name) for name in missing),
            path=table.path,
        )
    return table


def _check_id_columns(id_columns: Sequence[str]) -> None:
    """Refuse id columns that would make the output's header ambiguous."""
    repeated = sorted({name for name in id_columns if list(id_columns).count(name) > 1})
    if repeated:
        raise SettingError(f"id column {repeated[0]!r} is given twice")
    if "prediction" in id_columns:
        raise SettingError("an id column cannot be called 'prediction': the output has one")


@dataclass
class _Exchange:
    """What every request of one query shares."""

    client: httpx.Client
    url: str
    scratch: Path
    private_key: PrivateKey
    spec: FeatureSpec
    table: CsvTable
    jobs: int | None
    progress: ProgressReporter | None
    binary: bool = False

    def answers(self, requests: list[range]) -> Generator[tuple[PredictionCell, ...], None, None]:
        """Every request in turn: encrypt, post, check and decrypt; predictions in row order."""
        for number, rows in enumerate(requests, 1):
            which = f"request {number} of {len(requests)}, " if len(requests) > 1 else ""
            yield from self._answer(rows, which)

    def _answer(self, rows: range, which: str) -> Iterator[tuple[PredictionCell, ...]]:
        """The predictions of ``rows``; ``which`` request this is, for messages."""
        # Messages name the service, the request and the user's rows, never a scratch file.
        where = f"{which}rows {rows.start + 1}-{rows.stop} of {self.table.path}"
        query, result = self.scratch / "query.jsonl", self.scratch / "result.jsonl"
        header = customer.encrypt_file(
            self.private_key,
            self.spec,
            self.table,
            query,
            rows=rows,
            jobs=self.jobs,
            binary=self.binary,
        )
        body = query.read_bytes()
        record = QueryRecord(header, hashlib.sha256(body).hexdigest())
        try:
            answer = self._post(body, _result_limit(header, self.spec.output.scores))
            del body  # the query may be large: keep one request's bytes at a time
            result.write_bytes(answer)
            del answer
            yield from customer.decrypt_predictions(
                self.private_key,
                result,
                query=record,
                spec=self.spec,
                jobs=self.jobs,
                progress=None if self.progress is None else _Continued(self.progress),
            )
        except (FileFormatError, SpecMismatchError, InvalidCiphertextError) as error:
            # The answer came from the service, not from a file the user named.
            problem = error.problem if isinstance(error, FileFormatError) else str(error)
            problem = problem.replace(f"{result}: ", "").replace(str(self.scratch), "...")
            raise ServiceError(
                f"{self.url}: the answer ({where}) is not a valid result ({problem}); "
                "nothing was written"
            ) from None
        except ServiceRefusedError as refusal:
            raise ServiceRefusedError(
                f"{refusal} ({where}; nothing was written)", refusal.status, refusal.retry_after
            ) from None
        except ServiceError as error:
            raise ServiceError(f"{error} ({where}; nothing was written)") from None
        except httpx.HTTPError as error:
            raise ServiceError(f"{self.url}: {error} ({where}; nothing was written)") from None

    def _post(self, body: bytes, limit: int) -> bytes:
        """Post one query, waiting and trying again while the service asks to (429/503)."""
        attempt = 1
        while True:
            try:
                return _send(
                    self.client,
                    "POST",
                    "/v1/predict",
                    self.url,
                    limit,
                    content=body,
                    headers={
                        "Content-Type": BINARY_MEDIA_TYPE if self.binary else QUERY_MEDIA_TYPE
                    },
                )
            except ServiceRefusedError as refusal:
                wait = refusal.retry_after
                if (
                    refusal.status not in RETRY_STATUSES
                    or wait is None
                    or wait > MAX_RETRY_WAIT_S
                    or attempt >= MAX_ATTEMPTS
                ):
                    if refusal.status in RETRY_STATUSES and wait is not None:
                        raise ServiceRefusedError(
                            f"{refusal}; the service asks to retry in {math.ceil(wait)} s",
                            refusal.status,
                            wait,
                        ) from None
                    raise
                time.sleep(wait)
                attempt += 1


def _named_for_the_user(
    error: OSError, scratch: Path, output: str | Path, input_name: str
) -> OSError:
    """``error`` naming the user's files instead of temporary ones."""
    name = error.filename
    if not isinstance(name, str):
        return error
    if name.startswith(str(scratch)):
        return OSError(
            error.errno,
            f"cannot hold the encrypted rows of {input_name} in a temporary folder "
            f"({error.strerror})",
        )
    target = Path(output)
    if Path(name).parent == target.parent and Path(name).name.startswith(f".{target.name}."):
        # The atomic writer's file beside the output.
        return OSError(error.errno, error.strerror, str(output))
    return error


def query_service(
    url: str,
    private_key: PrivateKey,
    input_csv: str | Path | CsvTable,
    output_csv: str | Path,
    *,
    token: str | None = None,
    jobs: int | None = None,
    timeout: float = 600.0,
    progress: ProgressReporter | None = None,
    spec: FeatureSpec | None = None,
    csv_options: CsvOptions | None = None,
    id_columns: Sequence[str] = (),
    report: EncodingReport | None = None,
    strict: bool = False,
) -> int:
    """Encrypt ``input_csv`` locally, have the service predict, decrypt into ``output_csv``.

    ``input_csv`` is a CSV file, ``-`` for standard input, or an open
    :class:`CsvTable` (then ``csv_options`` are not used); ``output_csv`` may
    be ``-`` for standard output. Every row is validated once; then the rows
    go in as many requests as the service's limits require, and the
    predictions are written to one output, in input order, with the
    ``id_columns`` (kept here, never sent) in front; nothing is written
    unless every request succeeded. ``progress`` counts rows answered;
    ``report`` and ``strict`` are as for :func:`customer.encrypt_file`.
    Returns the number of predictions.

    With ``spec`` (the feature spec the customer has reviewed and pinned),
    every row is validated before the service is contacted, and the service
    must still serve that spec before anything is sent. Without it, the
    service's spec is fetched and used: a dishonest service could then choose
    bounds or categories and learn, from whether a query follows, whether the
    rows fit them (docs/threat-model.md).
    """
    _check_id_columns(id_columns)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    base = url.rstrip("/")
    try:
        with (
            httpx.Client(base_url=base, headers=headers, timeout=timeout) as client,
            tempfile.TemporaryDirectory(prefix="ppml-query-") as scratch,
        ):
            pinned = spec is not None
            if spec is None:
                spec = fetch_spec(client, base)
            table = _open_table(input_csv, spec, csv_options, id_columns)
            # Every row, once, first.
            total = sum(1 for _ in spec.transform_table(table, report, strict=strict))
            if total == 0:
                raise DataError("no data rows to encrypt", path=table.path)
            if pinned:
                served = fetch_spec(client, base)
                if served.spec_id != spec.spec_id:
                    raise ServiceError(
                        f"{base}: the service serves feature spec {served.spec_id}, "
                        f"not the pinned spec {spec.spec_id}; nothing was sent"
                    )
            limits = fetch_limits(client, base)
            # A service without published limits gets everything at once, as it always did.
            per_request = (
                total
                if limits is None
                else rows_per_request(limits, spec, private_key.public_key, total, base)
            )
            requests = [
                range(start, min(start + per_request, total))
                for start in range(0, total, per_request)
            ]
            exchange = _Exchange(
                client,
                base,
                Path(scratch),
                private_key,
                spec,
                table,
                jobs,
                progress,
                # The compact container where the service takes it (it answers in kind).
                binary=limits is not None and limits.binary,
            )
            if progress is not None:
                progress.start(total)
            try:
                # Closed explicitly, so a failure while writing stops its worker processes now.
                with contextlib.closing(exchange.answers(requests)) as predictions:
                    return customer.write_predictions(
                        output_csv,
                        predictions,
                        columns=spec.output.columns,
                        ids=customer.read_ids(table, id_columns) if id_columns else None,
                        id_columns=id_columns,
                        expected=total,
                    )
            except OSError as error:
                raise _named_for_the_user(error, Path(scratch), output_csv, table.path) from None
    except httpx.HTTPError as error:
        raise ServiceError(f"{base}: {error}") from None


MAX_PAGE_ASSET_BYTES = 4 << 20
"""The largest page or asset fetched when checking a served page against the published hashes."""


@dataclass(frozen=True)
class PageDifference:
    """A file of the served page whose digest differs from this ppml's, or that is missing."""

    path: str
    expected: str
    served: str


def check_served_page(url: str, *, timeout: float = 30.0) -> list[PageDifference]:
    """Fetch the page at ``url`` and every asset this ppml's page pins; the files whose digests
    differ from this installed version's (an empty list: the service serves exactly this page).

    The comparison uses the same digests the page carries: SHA-256 of the HTML, the
    Subresource Integrity value (sha384) of each asset. A 404 counts as a difference.
    """
    from ppml.web import page_hashes, sri

    published = page_hashes()
    base = url.rstrip("/")
    try:
        parts = urlsplit(base)
    except ValueError:  # an unclosed IPv6 bracket, say
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise SettingError(f"{url}: give the service's address, such as https://host:port/")
    differences: list[PageDifference] = []
    try:
        with httpx.Client(base_url=base, timeout=timeout, follow_redirects=False) as client:
            html = _fetch_page_file(client, "/", base)
            served = "missing" if html is None else hashlib.sha256(html).hexdigest()
            if served != published.html_sha256:
                differences.append(PageDifference("/", published.html_sha256, served))
            for path, expected in published.assets.items():
                body = _fetch_page_file(client, f"/{path}", base)
                served = "missing" if body is None else sri(body)
                if served != expected:
                    differences.append(PageDifference(f"/{path}", expected, served))
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        raise ServiceError(f"{base}: {error}") from None
    return differences


def _fetch_page_file(client: httpx.Client, path: str, url: str) -> bytes | None:
    """The bytes served at ``path``, or None for a 404."""
    try:
        return _send(client, "GET", path, url, MAX_PAGE_ASSET_BYTES)
    except ServiceRefusedError as refused:
        if refused.status == 404:
            return None
        raise

"""The HTTP service: the server role behind FastAPI, hardened for an open network.

Endpoints (see docs/service.md): ``GET /healthz``, ``GET /v1/features`` (the
public feature spec), ``GET /v1/limits`` (what one query may hold, and how the
service prices it), ``POST /v1/predict`` (a query file's bytes in, a result
file's bytes out), and the OpenAPI document at ``/openapi.json`` and ``/docs``
(an HTML reference generated from it). ``GET /`` is a page where a person
prices a laptop: the browser encrypts the specs and decrypts the price, and
the page's assets come from ``/static/`` (ppml.web); every response carries
strict security headers, so the page loads nothing from another origin.

A prediction is priced before any big-integer work: the handler reads the
query's first line only, computes its cost (costs.py), and refuses it at
once if it is too costly (413), if the client's quotas are used up (429) or
if the service already holds too much pending work (503 + Retry-After).
Otherwise the body is streamed to a private scratch file under a deadline,
and the query waits for a worker of its lane (lanes.py): *interactive* for
cheap queries, *bulk* (fewer processes, lower OS priority) for the others,
so small queries never queue behind big ones. Each computation has a
deadline the worker checks between blocks. Every refusal is JSON,
``{"error": {"code", "message"}}``; an unexpected exception is a bug,
logged and answered with a generic 500.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from concurrent.futures.process import BrokenProcessPool
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ppml import __version__
from ppml.crypto import SERVER_KEY_POLICY
from ppml.errors import InsecureKeyError
from ppml.features.spec import FeatureSpec
from ppml.service import compute
from ppml.service.costs import (
    KEY_UNITS,
    MASK_UNITS,
    MAX_HEADER_BYTES,
    REFERENCE_KEY_BITS,
    QueryShape,
    QueryShapeError,
    read_query_shape,
)
from ppml.service.lanes import Lane, LaneFullError, QueueTimeoutError, Ticket
from ppml.service.quota import Quota, QuotaTable
from ppml.web import PageAssets, SecurityHeaders, api_reference_html, page_html
from ppml.web.page import PAGE_CACHE_CONTROL
from ppml.wire.messages import BINARY_MAGIC

log = logging.getLogger("ppml.service")

QUERY_MEDIA_TYPE = "application/x-ndjson"
BINARY_MEDIA_TYPE = "application/octet-stream"
"""Results in the binary container (docs/wire-format.md) go out as this; queries may too."""
CONTAINERS = ("jsonl", "binary")
DEFAULT_MAX_BODY_BYTES = 64 << 20
DEFAULT_MAX_ROWS = 20_000
DEFAULT_RATE_LIMIT = "100000/hour"
DEFAULT_COMPUTE_BUDGET = "2000000/hour"

DEFAULT_MAX_REFUSALS = "30/minute"
REFUSAL_PAUSE_S = 1.0
"""How long a refusal waits once a client is over --max-refusals: the connection is held, idle."""

LINGER_BYTES = 1 << 20
"""After an early refusal, up to this much unread body is drained so the client reads the answer;
with more left, the connection is closed instead (reading it would cost more than the answer)."""


@dataclass(frozen=True)
class ServiceSettings:
    """How the service is run and what it accepts (docs/service.md, "Settings")."""

    model_dir: Path
    workers: int = 1
    """Processes of the interactive lane."""
    bulk_workers: int = 1
    bulk_niceness: int = 10
    mask_pool: int = 64
    dask: str | None = None
    """A Dask scheduler address: the workers send every query's blocks to that cluster."""
    """Re-randomisation masks each worker computes ahead, while idle, per recent key."""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_rows: int = DEFAULT_MAX_ROWS
    rate_limit: str = DEFAULT_RATE_LIMIT
    """Predictions (rows, not requests) per client, e.g. "10000/hour"."""
    compute_budget: str = DEFAULT_COMPUTE_BUDGET
    """Cost units per client, e.g. "2000000/hour"."""
    max_refusals: str = DEFAULT_MAX_REFUSALS
    """Refusals per client answered at once; beyond, each waits REFUSAL_PAUSE_S first."""
    max_request_cost: int = 250_000
    interactive_cost: int = 2_000
    """Queries costing at most this go to the interactive lane, the others to the bulk lane."""
    max_pending_interactive: int = 100_000
    max_pending_bulk: int = 500_000
    client_share: float = 0.25
    """Fraction of a lane's pending cost one client may hold (beyond its first request)."""
    max_pending_bytes: int = 256 << 20
    compute_timeout: float = 180.0
    body_timeout: float = 10.0
    min_upload_rate: int = 64 << 10
    max_clients: int = 20_000
    """Client identities whose quota usage is remembered."""
    header_timeout: float = 10.0
    keep_alive_timeout: int = 5
    max_header_bytes: int = 16 << 10
    max_connections: int = 512
    max_connections_per_client: int = 64
    backlog: int = 256
    forwarded_allow_ips: tuple[str, ...] = ()
    """Proxies whose X-Forwarded-For is believed; none by default."""
    token: str | None = None
    """When set, every /v1 request needs ``Authorization: Bearer <token>``."""


class CostTerms(BaseModel):
    """The constants of the cost formula (docs/service.md, "Costs").

    With ``b = key_bits / reference_key_bits``, a query of B blocks and F
    features costs ``ceil(B * scores * (F * b**2 + mask_units * b**3) + key_units * b**3)``.
    """

    scores: int = Field(description="Scores per row of the served model (k); each costs apart.")

    reference_key_bits: int = Field(description="The key size b is measured against.")
    mask_units: int = Field(description="Units of one block's re-randomising mask, times b^3.")
    key_units: int = Field(description="Units of reading and checking the key, times b^3.")


class BodyTerms(BaseModel):
    """The constants of the largest body a query header allows, checked against max_body_bytes.

    With C the length of one ciphertext's base64 text, ``4 * ceil(ceil(2 *
    key_bits / 8) / 3)``, a query of B blocks, F features and a header line of
    H bytes may take ``H + B * (F * (C + ciphertext_overhead_bytes) +
    block_overhead_bytes) + query_overhead_bytes``.
    """

    ciphertext_overhead_bytes: int = Field(description="Quotes and separator of a ciphertext.")
    block_overhead_bytes: int = Field(description="A block line's own members and whitespace.")
    query_overhead_bytes: int = Field(description="The trailer line and line ends.")


class ServiceLimits(BaseModel):
    """What one query may hold; a client sizes its requests from this (``GET /v1/limits``)."""

    max_rows: int = Field(description="Most rows in one query.")
    max_request_cost: int = Field(description="Most cost units one query may take.")
    max_body_bytes: int = Field(
        description="Most bytes of a body, and of the largest body a query's header allows."
    )
    max_header_bytes: int = Field(description="Longest query header line.")
    min_key_bits: int = Field(description="Smallest key modulus accepted, in bits.")
    max_key_bits: int = Field(description="Largest key modulus accepted, in bits.")
    cost: CostTerms
    body: BodyTerms
    containers: list[str] = Field(
        default_factory=lambda: list(CONTAINERS),
        description="Query containers accepted (docs/wire-format.md); a result comes in the "
        "query's.",
    )


def service_limits(settings: ServiceSettings, scores: int = 1) -> ServiceLimits:
    """The limits ``settings`` enforce per query, with the formulas' constants from costs.py,
    for a model of ``scores`` scores per row."""
    # The body bound's constants are read off QueryShape rather than copied,
    # so what is published is what _price enforces. The bound is linear in
    # them: a query without blocks leaves the query's overhead, a block
    # without features the block's, one feature the ciphertext's on top.
    bare = QueryShape(rows=0, features=0, slots=1, key_bits=REFERENCE_KEY_BITS, header_bytes=0)
    one = dataclasses.replace(bare, features=1)
    return ServiceLimits(
        max_rows=settings.max_rows,
        max_request_cost=settings.max_request_cost,
        max_body_bytes=settings.max_body_bytes,
        max_header_bytes=MAX_HEADER_BYTES,
        min_key_bits=SERVER_KEY_POLICY.min_bits,
        max_key_bits=SERVER_KEY_POLICY.max_bits,
        cost=CostTerms(
            scores=scores,
            reference_key_bits=REFERENCE_KEY_BITS,
            mask_units=MASK_UNITS,
            key_units=KEY_UNITS,
        ),
        body=BodyTerms(
            ciphertext_overhead_bytes=one.max_block_line_bytes
            - bare.max_block_line_bytes
            - one.ciphertext_text_bytes,
            block_overhead_bytes=bare.max_block_line_bytes,
            query_overhead_bytes=bare.max_body_bytes,
        ),
    )


class ClientError(Exception):
    """A request refused with a 4xx or 503 status.

    ``close`` asks for the connection to be closed after the answer: the
    client is too slow, or the body it is still sending is too big to drain.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        *,
        close: bool = False,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = dict(headers or {})
        if close:
            self.headers["Connection"] = "close"


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status, headers=headers)


def client_identity(host: str | None) -> str:
    """Whose quota a request counts against: its address, or its /64 network for IPv6.

    One IPv6 host commonly holds a whole /64, so counting single addresses
    would hand it 2^64 quotas.
    """
    if host is None:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class _Body:
    """A request body read chunk by chunk, every chunk before a deadline (loop time)."""

    def __init__(self, request: Request, deadline: float, declared: int | None) -> None:
        self._receive = request.receive
        self.deadline = deadline
        self.declared = declared
        self.received = 0
        self.finished = False

    async def chunk(self) -> bytes | None:
        """The next piece of the body, or ``None`` once it has all arrived."""
        while not self.finished:
            try:
                async with asyncio.timeout_at(self.deadline):
                    message = await self._receive()
            except TimeoutError:
                raise ClientError(
                    408,
                    "body_timeout",
                    "the body arrived too slowly; send it at a steady pace",
                    close=True,
                ) from None
            if message["type"] == "http.disconnect":
                raise ClientError(400, "client_disconnected", "the client went away", close=True)
            self.finished = not message.get("more_body", False)
            data: bytes = message.get("body", b"")
            if data:
                self.received += len(data)
                return data
        return None

    def must_close(self) -> bool:
        """Whether refusing now should close the connection rather than drain the rest."""
        if self.finished:
            return False
        return self.declared is None or self.declared - self.received > LINGER_BYTES


@dataclass
class _Service:
    """What the running service holds besides its settings."""

    interactive: Lane
    bulk: Lane
    quotas: QuotaTable
    refusals: QuotaTable
    scratch: Path | None = None
    pending_bytes: int = 0


def create_app(settings: ServiceSettings) -> FastAPI:
    """Build the application for one model directory."""
    spec = FeatureSpec.load(settings.model_dir / compute.FEATURES_FILENAME)
    compute.load_model(str(settings.model_dir))  # fail at start, not at the first request
    prediction_quota = Quota.parse(settings.rate_limit)
    compute_quota = Quota.parse(settings.compute_budget)
    service = _Service(
        interactive=Lane(
            "interactive",
            workers=settings.workers,
            niceness=0,
            max_pending_cost=settings.max_pending_interactive,
            client_share=settings.client_share,
            model_dir=str(settings.model_dir),
            mask_pool=settings.mask_pool,
            dask=settings.dask,
        ),
        bulk=Lane(
            "bulk",
            workers=settings.bulk_workers,
            niceness=settings.bulk_niceness,
            max_pending_cost=settings.max_pending_bulk,
            client_share=settings.client_share,
            model_dir=str(settings.model_dir),
            mask_pool=settings.mask_pool,
            dask=settings.dask,
        ),
        quotas=QuotaTable([prediction_quota, compute_quota], settings.max_clients),
        refusals=QuotaTable([Quota.parse(settings.max_refusals)], settings.max_clients),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        service.scratch = Path(tempfile.mkdtemp(prefix="ppml-serve-"))  # mode 0700
        try:
            for lane in (service.interactive, service.bulk):
                lane.start()
            for lane in (service.interactive, service.bulk):
                await lane.warm_up()
            yield
        finally:
            for lane in (service.interactive, service.bulk):
                lane.stop()
            shutil.rmtree(service.scratch, ignore_errors=True)

    app = FastAPI(
        title="ppml prediction service",
        version=__version__,
        description=(
            "Private predictions: POST a query encrypted under your own Paillier key, "
            "receive predictions encrypted under the same key. The service never sees "
            "your inputs or your predictions."
        ),
        lifespan=lifespan,
        # FastAPI's own pages load Swagger UI and ReDoc from a CDN: /docs is ours instead.
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(SecurityHeaders)
    app.mount("/static", PageAssets(), name="static")

    def authorize(request: Request) -> None:
        if settings.token is None:
            return
        supplied = request.headers.get("authorization", "")
        scheme, _, token = supplied.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(
            token.encode(), settings.token.encode()
        ):
            raise ClientError(
                401,
                "unauthorized",
                "a valid bearer token is required",
                {"WWW-Authenticate": "Bearer"},
            )

    @app.exception_handler(ClientError)
    async def client_error(request: Request, error: ClientError) -> JSONResponse:
        # A client that keeps being refused (a bad token, an oversized query
        # sent again and again, Retry-After ignored) would otherwise cost the
        # event loop a little per refusal as fast as it can send them; past
        # its allowance, each refusal first waits, which costs nothing.
        client = client_identity(request.client.host if request.client else None)
        if service.refusals.refusal(client, [1]) is None:
            service.refusals.charge(client, [1])
        else:
            await asyncio.sleep(REFUSAL_PAUSE_S)
        return _error(error.status, error.code, error.message, error.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        return _error(error.status_code, "http_error", str(error.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        return _error(422, "invalid_request", "the request does not match the API")

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
        # A bug, whatever the client sent: the details go to the log only.
        log.error("unexpected error on %s", request.url.path, exc_info=error)
        return _error(500, "internal_error", "the service failed; the error has been logged")

    @app.get("/", include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(page_html(), headers={"Cache-Control": PAGE_CACHE_CONTROL})

    reference: list[str] = []  # rendered at the first request, once every route exists

    @app.get("/docs", include_in_schema=False)
    async def api_reference() -> HTMLResponse:
        if not reference:
            reference.append(api_reference_html(app.openapi()))
        return HTMLResponse(reference[0])

    @app.get("/healthz", summary="Liveness check")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "spec_id": spec.spec_id}

    @app.get("/v1/features", summary="The public feature spec customers encrypt with")
    async def features(request: Request) -> dict[str, Any]:
        authorize(request)
        return spec.to_document()

    limits = service_limits(settings, spec.output.scores)

    @app.get(
        "/v1/limits",
        summary="What one query may hold, and the constants of its price",
        responses={401: {"description": "missing or wrong bearer token"}},
    )
    async def get_limits(request: Request) -> ServiceLimits:
        authorize(request)
        return limits

    @app.post(
        "/v1/predict",
        summary="Encrypted predictions for an encrypted query",
        response_class=Response,
        responses={
            200: {
                "content": {
                    QUERY_MEDIA_TYPE: {"schema": {"type": "string"}},
                    BINARY_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
                }
            },
            400: {"description": "malformed query, bad ciphertext, weak key, wrong version"},
            401: {"description": "missing or wrong bearer token"},
            408: {"description": "the body arrived too slowly"},
            413: {"description": "body, row count or cost over the limits"},
            422: {"description": "query made for another feature spec or layout"},
            429: {"description": "quota of this client used up, or too much of its work pending"},
            503: {"description": "the service is full or the computation ran out of time"},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                # The body is a query file; its media type is not checked, so
                # generic clients may send it as text or bytes.
                "content": {
                    QUERY_MEDIA_TYPE: {"schema": {"type": "string"}},
                    "text/plain": {"schema": {"type": "string"}},
                    BINARY_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
                },
            }
        },
    )
    async def predict(request: Request) -> Response:
        started = time.monotonic()
        arrived = asyncio.get_running_loop().time()  # the clock of the body's deadlines
        client = client_identity(request.client.host if request.client else None)
        declared = _declared_length(request, settings.max_body_bytes)
        body = _Body(
            request,
            # Until the header says how big the body is, the header's own size sets the pace.
            arrived + settings.body_timeout + MAX_HEADER_BYTES / settings.min_upload_rate,
            declared,
        )
        try:
            authorize(request)
            header, received = await _read_header(body)
            shape = _price(header, settings, declared, spec.output.scores)
            lane = service.interactive if shape.cost <= settings.interactive_cost else service.bulk
            reserved = min(declared or shape.max_body_bytes, shape.max_body_bytes)
            ticket = _admit(service, settings, lane, client, shape, reserved)
        except ClientError as error:
            if body.must_close():
                error.headers["Connection"] = "close"
            log.info(
                "predict refused: client=%s status=%d code=%s", client, error.status, error.code
            )
            raise
        service.pending_bytes += reserved
        body.deadline = arrived + settings.body_timeout + reserved / settings.min_upload_rate
        assert service.scratch is not None
        name = secrets.token_hex(16)
        query_path, result_path = (
            service.scratch / f"{name}.query",
            service.scratch / f"{name}.result",
        )
        outcome: bytes | compute.Refusal | compute.Failure
        try:
            try:
                await _spool(body, received, shape, query_path)
            except OSError:
                # The scratch disk is full or failing: the service's problem, not the client's.
                log.exception("cannot store a query in %s", service.scratch)
                return _error(
                    503, "overloaded", "the service cannot take a query now; retry later",
                    {"Retry-After": str(lane.retry_after())},
                )  # fmt: skip
            deadline = time.monotonic() + settings.compute_timeout
            outcome = await lane.run(
                ticket, deadline, compute.answer, str(query_path), str(result_path), deadline
            )
        except QueueTimeoutError:
            outcome = compute.Refusal(
                503,
                "deadline_exceeded",
                "the query waited for a worker past the service's time limit; retry later",
            )
        except BrokenProcessPool:
            outcome = compute.Refusal(503, "overloaded", "a worker stopped; retry later")
        except ClientError as error:
            log.info(
                "predict refused: client=%s status=%d code=%s", client, error.status, error.code
            )
            raise
        finally:
            lane.release(ticket)
            service.pending_bytes -= reserved
            query_path.unlink(missing_ok=True)
            result_path.unlink(missing_ok=True)
        elapsed = time.monotonic() - started
        if isinstance(outcome, compute.Failure):
            log.error("predict failed in a worker: client=%s\n%s", client, outcome.traceback)
            return _error(500, "internal_error", "the service failed; the error has been logged")
        if isinstance(outcome, compute.Refusal):
            log.info(
                "predict refused: client=%s lane=%s cost=%d status=%d code=%s",
                client, lane.name, shape.cost, outcome.status, outcome.code,
            )  # fmt: skip
            headers = {"Retry-After": str(lane.retry_after())} if outcome.status == 503 else None
            return _error(outcome.status, outcome.code, outcome.message, headers)
        lane.learn_speed(ticket)
        log.info(
            "predict: client=%s lane=%s rows=%d cost=%d seconds=%.3f",
            client, lane.name, shape.rows, shape.cost, elapsed,
        )  # fmt: skip
        binary = outcome.startswith(BINARY_MAGIC)
        return Response(outcome, media_type=BINARY_MEDIA_TYPE if binary else QUERY_MEDIA_TYPE)

    return app


def _declared_length(request: Request, limit: int) -> int | None:
    declared = request.headers.get("content-length")
    if declared is None:
        return None
    size = int(declared)  # the HTTP layer has already refused a malformed length
    if size > limit:
        raise ClientError(
            413, "body_too_large", f"the body exceeds {limit} bytes", close=size > LINGER_BYTES
        )
    return size


async def _read_header(body: _Body) -> tuple[bytes, bytearray]:
    """The query's header document (its first line, or the binary container's header), and
    every byte read so far (the header included)."""
    buffer = bytearray()
    prefix = len(BINARY_MAGIC) + 4
    while True:
        chunk = await body.chunk()
        if chunk is None:
            if not buffer:
                raise ClientError(400, "invalid_query", "the body is empty; send a query file")
            return bytes(buffer), buffer  # a short body: the parser says what is wrong
        searched = len(buffer)
        buffer += chunk
        if buffer.startswith(BINARY_MAGIC[: len(buffer)]):
            if len(buffer) < prefix:
                continue
            length = int.from_bytes(buffer[len(BINARY_MAGIC) : prefix], "big")
            if length > MAX_HEADER_BYTES:
                raise _header_too_large()
            if len(buffer) >= prefix + length:
                return bytes(buffer[prefix : prefix + length]), buffer
            continue
        newline = buffer.find(b"\n", searched)
        if newline >= 0 and newline <= MAX_HEADER_BYTES:
            return bytes(buffer[:newline]), buffer
        if len(buffer) > MAX_HEADER_BYTES:
            raise _header_too_large()


def _header_too_large() -> ClientError:
    return ClientError(
        413, "header_too_large", f"the query's header exceeds {MAX_HEADER_BYTES} bytes"
    )


def _price(
    header: bytes, settings: ServiceSettings, declared: int | None, scores: int
) -> QueryShape:
    """The query's shape, refused with a 4xx if it is over a per-request limit."""
    try:
        shape = read_query_shape(header, scores)
        # The worker checks the whole key; its size alone already rules out
        # keys no query may use, before one is charged or queued.
        SERVER_KEY_POLICY.check_size(shape.key_bits)
    except (QueryShapeError, InsecureKeyError) as error:
        raise ClientError(400, "invalid_query", str(error)) from None
    if shape.rows > settings.max_rows:
        raise ClientError(
            413,
            "too_many_rows",
            f"{shape.rows} rows; this service takes at most {settings.max_rows}",
        )
    if shape.cost > settings.max_request_cost:
        raise ClientError(
            413,
            "too_costly",
            f"this query would cost {shape.cost} units ({shape.rows} rows, {shape.features} "
            f"features, {shape.scores} score(s) per row, a {shape.key_bits}-bit key); this "
            "service takes at most "
            f"{settings.max_request_cost} per request: send fewer rows or use a smaller key",
        )
    if shape.max_body_bytes > settings.max_body_bytes:
        # Refused now rather than after megabytes of body.
        raise ClientError(
            413,
            "body_too_large",
            f"a query of {shape.rows} rows under a {shape.key_bits}-bit key may take "
            f"{shape.max_body_bytes} bytes; this service takes at most {settings.max_body_bytes}",
        )
    if declared is not None and declared > shape.max_body_bytes:
        raise ClientError(
            413,
            "body_too_large",
            f"the body declares {declared} bytes; a query with this header has at most "
            f"{shape.max_body_bytes}",
        )
    return shape


def _admit(
    service: _Service,
    settings: ServiceSettings,
    lane: Lane,
    client: str,
    shape: QueryShape,
    reserved: int,
) -> Ticket:
    """Take the query into ``lane`` or refuse it; nothing is charged for a refusal."""
    if service.pending_bytes and service.pending_bytes + reserved > settings.max_pending_bytes:
        raise ClientError(
            503,
            "overloaded",
            "the service is receiving too many query bytes; retry later",
            {"Retry-After": str(lane.retry_after())},
        )
    refused = service.quotas.refusal(client, [shape.rows, shape.cost])
    if refused is not None:
        which, wait = refused
        code, what = (
            ("rate_limited", f"prediction quota of {settings.rate_limit}")
            if which == 0
            else ("compute_budget_exhausted", f"compute budget of {settings.compute_budget} units")
        )
        raise ClientError(
            429,
            code,
            f"{what} used up (this query needs {shape.rows} rows, {shape.cost} units)",
            {"Retry-After": str(max(1, int(wait) + 1))},
        )
    try:
        ticket = lane.admit(client, shape.cost)
    except LaneFullError as full:
        raise ClientError(
            full.status,
            full.code,
            full.message,
            {"Retry-After": str(full.retry_after)},
        ) from None
    service.quotas.charge(client, [shape.rows, shape.cost])
    return ticket


async def _spool(body: _Body, head: bytearray, shape: QueryShape, path: Path) -> None:
    """Write the whole body to ``path``, refusing it as soon as it cannot be this query."""
    limit, max_line = shape.max_body_bytes, shape.max_line_bytes
    binary = head.startswith(BINARY_MAGIC)
    size = len(head)
    since_newline = len(head) - head.rfind(b"\n") - 1
    # O_EXCL and 0600: the scratch folder is private, the file is new.
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as spool:
        spool.write(head)
        while (chunk := await body.chunk()) is not None:
            size += len(chunk)
            if size > limit:
                raise ClientError(
                    413,
                    "body_too_large",
                    f"the body exceeds {limit} bytes, the most a query with this header takes",
                    close=body.must_close(),
                )
            if binary:
                spool.write(chunk)  # no lines: a block's size is bounded by the reader
                continue
            first = chunk.find(b"\n")
            if first < 0:
                since_newline += len(chunk)
                longest = since_newline
            else:
                longest = since_newline + first
                since_newline = len(chunk) - chunk.rfind(b"\n") - 1
            # Lines inside one chunk are not measured: a chunk is small, and
            # this check only keeps a worker from parsing one giant line.
            if max(longest, since_newline) > max_line:
                raise ClientError(
                    400,
                    "invalid_query",
                    f"a line of the body exceeds {max_line} bytes, the longest block of this query",
                    close=body.must_close(),
                )
            spool.write(chunk)


def run_service(settings: ServiceSettings, host: str, port: int) -> None:
    """Serve ``settings`` on ``host:port`` with uvicorn and the connection limits of protocol.py."""
    import uvicorn

    from ppml.service.protocol import ConnectionLimits, guarded_h11_protocol

    protocol = guarded_h11_protocol(
        ConnectionLimits(
            header_timeout=settings.header_timeout,
            max_connections=settings.max_connections,
            max_connections_per_client=settings.max_connections_per_client,
            trusted_proxies=settings.forwarded_allow_ips,
        )
    )
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level="info",
        access_log=True,
        http=protocol,
        # uvicorn trusts X-Forwarded-For from 127.0.0.1 unless told otherwise:
        # a local client could then pick its own identity per request.
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=list(settings.forwarded_allow_ips) or None,
        timeout_keep_alive=settings.keep_alive_timeout,
        h11_max_incomplete_event_size=settings.max_header_bytes,
        backlog=settings.backlog,
        timeout_graceful_shutdown=5,
    )

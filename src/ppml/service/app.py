"""The HTTP service: the server role behind FastAPI, hardened for an open network.

Endpoints (see docs/service.md): ``GET /healthz``, ``GET /v1/features`` (the
public feature spec), ``POST /v1/predict`` (a query file's bytes in, a result
file's bytes out), and the OpenAPI document at ``/openapi.json`` and ``/docs``.
The big-integer work runs in a pool of worker processes. Client mistakes get
a JSON error ``{"error": {"code", "message"}}`` with a 4xx status.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import secrets
import time
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.exceptions import HTTPException as StarletteHTTPException

from ppml import __version__
from ppml.features.spec import FeatureSpec
from ppml.service import compute

log = logging.getLogger("ppml.service")

QUERY_MEDIA_TYPE = "application/x-ndjson"
DEFAULT_MAX_BODY_BYTES = 64 << 20
DEFAULT_MAX_ROWS = 20_000
DEFAULT_RATE_LIMIT = "100000/hour"


@dataclass(frozen=True)
class ServiceSettings:
    """How the service is run and what it accepts."""

    model_dir: Path
    workers: int = 1
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_rows: int = DEFAULT_MAX_ROWS
    rate_limit: str = DEFAULT_RATE_LIMIT
    """Predictions (rows, not requests) per client address, e.g. "10000/hour"."""
    token: str | None = None
    """When set, every /v1 request needs ``Authorization: Bearer <token>``."""


class ClientError(Exception):
    """A request refused with a 4xx status."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status, headers=headers)


def create_app(settings: ServiceSettings) -> FastAPI:
    """Build the application for one model directory."""
    spec = FeatureSpec.load(settings.model_dir / compute.FEATURES_FILENAME)
    compute.load_model(str(settings.model_dir))  # fail at start, not at the first request
    limit: RateLimitItem = parse(settings.rate_limit)
    limiter = MovingWindowRateLimiter(MemoryStorage())
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(
            settings.workers, context, compute.load_model, (str(settings.model_dir),)
        )
        state["pool"] = pool
        try:
            yield
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="ppml prediction service",
        version=__version__,
        description=(
            "Private predictions: POST a query encrypted under your own Paillier key, "
            "receive predictions encrypted under the same key. The service never sees "
            "your inputs or your predictions."
        ),
        lifespan=lifespan,
    )

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
    async def client_error(_: Request, error: ClientError) -> JSONResponse:
        return _error(error.status, error.code, error.message, error.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        return _error(error.status_code, "http_error", str(error.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        return _error(422, "invalid_request", "the request does not match the API")

    @app.get("/healthz", summary="Liveness check")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "spec_id": spec.spec_id}

    @app.get("/v1/features", summary="The public feature spec customers encrypt with")
    async def features(request: Request) -> dict[str, Any]:
        authorize(request)
        return spec.to_document()

    @app.post(
        "/v1/predict",
        summary="Encrypted predictions for an encrypted query",
        response_class=Response,
        responses={
            200: {"content": {QUERY_MEDIA_TYPE: {"schema": {"type": "string"}}}},
            400: {"description": "malformed query, bad ciphertext, weak key, wrong version"},
            401: {"description": "missing or wrong bearer token"},
            413: {"description": "body or row count over the limits"},
            422: {"description": "query made for another feature spec or layout"},
            429: {"description": "prediction quota of this client used up"},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                # The body is a query file; its media type is not checked, so
                # generic clients may send it as text or bytes.
                "content": {
                    QUERY_MEDIA_TYPE: {"schema": {"type": "string"}},
                    "text/plain": {"schema": {"type": "string"}},
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                },
            }
        },
    )
    async def predict(request: Request) -> Response:
        authorize(request)
        started = time.perf_counter()
        body = await _read_body(request, settings.max_body_bytes)
        rows = compute.declared_rows(body) or 1
        client = request.client.host if request.client else "unknown"
        if not limiter.hit(limit, client, cost=min(rows, settings.max_rows)):
            reset = int(limiter.get_window_stats(limit, client).reset_time - time.time()) + 1
            raise ClientError(
                429,
                "rate_limited",
                f"prediction quota of {settings.rate_limit} used up",
                {"Retry-After": str(max(reset, 1))},
            )
        loop = asyncio.get_running_loop()
        outcome = await loop.run_in_executor(state["pool"], compute.answer, body, settings.max_rows)
        elapsed = time.perf_counter() - started
        if isinstance(outcome, compute.Refusal):
            log.info(
                "predict refused: client=%s status=%d code=%s", client, outcome.status, outcome.code
            )
            raise ClientError(outcome.status, outcome.code, outcome.message)
        log.info("predict: client=%s rows=%d seconds=%.3f", client, rows, elapsed)
        return Response(outcome, media_type=QUERY_MEDIA_TYPE)

    return app


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ClientError(413, "body_too_large", f"the body exceeds {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ClientError(413, "body_too_large", f"the body exceeds {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body:
        raise ClientError(400, "invalid_query", "the body is empty; send a query file")
    return body

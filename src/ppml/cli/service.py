"""``ppml serve`` (the server as an HTTP service) and ``ppml query`` (the customer's round trip)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from ppml.cli.console import info
from ppml.cli.passphrase import existing_passphrase
from ppml.roles.parallel import default_jobs
from ppml.wire.keyfile import PRIVATE_KEY_FILENAME, load_private_key

TOKEN_ENV = "PPML_SERVICE_TOKEN"  # noqa: S105 (the name of a variable, not a secret)


def serve(
    model: Annotated[
        Path, typer.Option("--model", help="Directory with features.json and model.json.")
    ],
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", min=1, help="Processes for the big-integer work (default: every core)."
        ),
    ] = None,
    max_body_bytes: Annotated[
        int, typer.Option("--max-body-bytes", min=1, help="Largest accepted request body.")
    ] = 64 << 20,
    max_rows: Annotated[
        int, typer.Option("--max-rows", min=1, help="Most rows accepted in one query.")
    ] = 20_000,
    rate_limit: Annotated[
        str,
        typer.Option(
            "--rate-limit",
            help="Predictions per client address, e.g. '10000/hour' (see docs/threat-model.md).",
        ),
    ] = "100000/hour",
) -> None:
    """Server: answer encrypted queries over HTTP.

    Set $PPML_SERVICE_TOKEN to require `Authorization: Bearer <token>` on /v1.
    """
    import uvicorn

    from ppml.service.app import ServiceSettings, create_app

    try:
        from limits import parse

        parse(rate_limit)
    except ValueError:
        raise typer.BadParameter("expected e.g. 1000/hour", param_hint="--rate-limit") from None
    settings = ServiceSettings(
        model_dir=model,
        workers=workers or default_jobs(),
        max_body_bytes=max_body_bytes,
        max_rows=max_rows,
        rate_limit=rate_limit,
        token=os.environ.get(TOKEN_ENV) or None,
    )
    app = create_app(settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    info(f"serving {model} on http://{host}:{port} ({settings.workers} workers"
         f"{', bearer token required' if settings.token else ''})")  # fmt: skip
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=True)


def query(
    url: Annotated[str, typer.Option("--url", help="Base URL of a ppml service.")],
    keys: Annotated[Path, typer.Option("--keys", help="Directory with the customer's key pair.")],
    input_csv: Annotated[Path, typer.Option("--input", help="CSV of raw rows to price.")],
    out: Annotated[Path, typer.Option("--out", help="CSV of predictions to write.")],
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", "-j", min=1, help="Worker processes (default: every core)."),
    ] = None,
) -> None:
    """Customer: price rows privately through a ppml service in one command.

    Fetches the public feature spec, encrypts locally, posts the query,
    decrypts the answer locally. Set $PPML_SERVICE_TOKEN if the service needs one.
    """
    from ppml.service.client import query_service

    private_key = load_private_key(keys / PRIVATE_KEY_FILENAME, passphrase=existing_passphrase)
    count = query_service(
        url, private_key, input_csv, out, token=os.environ.get(TOKEN_ENV) or None, jobs=jobs
    )
    info(f"{count} predictions from {url} -> {out}")

"""``ppml serve`` (the server as an HTTP service) and ``ppml query`` (the customer's round trip)."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from ppml.cli.console import info, stderr, stdout
from ppml.cli.options import (
    DelimiterOption,
    EncodingOption,
    JobsOption,
    StrictOption,
    csv_options,
    output_name,
    progress_bar,
    report_encoding,
)
from ppml.cli.passphrase import existing_passphrase
from ppml.errors import ServiceError
from ppml.roles.cluster import LOCAL_ADDRESS, local_cluster
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
            "--workers",
            min=1,
            help="Processes of the interactive lane (cheap queries; default: every core).",
        ),
    ] = None,
    bulk_workers: Annotated[
        int,
        typer.Option(
            "--bulk-workers",
            min=1,
            help="Processes of the bulk lane (queries over --interactive-cost).",
        ),
    ] = 1,
    bulk_nice: Annotated[
        int,
        typer.Option(
            "--bulk-nice", min=0, max=19, help="How much lower the bulk lane's OS priority is."
        ),
    ] = 10,
    mask_pool: Annotated[
        int,
        typer.Option(
            "--mask-pool",
            min=0,
            help="Re-randomisation masks each worker computes while idle, per recent customer "
            "key (0: none); each is used once.",
        ),
    ] = 64,
    dask: Annotated[
        str | None,
        typer.Option(
            "--dask",
            metavar="ADDRESS",
            help="Send every query's blocks to this Dask scheduler (the encoded model goes to "
            "its workers: use a cluster you control), or 'local' to start one here.",
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
    compute_budget: Annotated[
        str,
        typer.Option(
            "--compute-budget", help="Cost units per client address, e.g. '2000000/hour'."
        ),
    ] = "2000000/hour",
    max_refusals: Annotated[
        str,
        typer.Option(
            "--max-refusals",
            help="Refusals per client answered at once, e.g. '30/minute'; "
            "beyond, each waits a second first.",
        ),
    ] = "30/minute",
    max_request_cost: Annotated[
        int,
        typer.Option("--max-request-cost", min=1, help="Most cost units one query may take."),
    ] = 250_000,
    interactive_cost: Annotated[
        int,
        typer.Option(
            "--interactive-cost",
            min=1,
            help="Queries of at most this many cost units use the interactive lane.",
        ),
    ] = 2_000,
    max_pending_interactive: Annotated[
        int,
        typer.Option(
            "--max-pending-interactive",
            min=1,
            help="Cost units admitted to the interactive lane and not yet answered.",
        ),
    ] = 100_000,
    max_pending_bulk: Annotated[
        int,
        typer.Option(
            "--max-pending-bulk",
            min=1,
            help="Cost units admitted to the bulk lane and not yet answered.",
        ),
    ] = 500_000,
    client_share: Annotated[
        float,
        typer.Option(
            "--client-share",
            min=0.0,
            max=1.0,
            help="Fraction of a lane's pending cost one client may hold beyond its first query.",
        ),
    ] = 0.25,
    max_pending_bytes: Annotated[
        int,
        typer.Option(
            "--max-pending-bytes", min=1, help="Query bytes being received or waiting, in all."
        ),
    ] = 256 << 20,
    compute_timeout: Annotated[
        float,
        typer.Option(
            "--compute-timeout",
            min=0.1,
            help="Seconds from a body's arrival to its answer, queueing included.",
        ),
    ] = 180.0,
    body_timeout: Annotated[
        float,
        typer.Option(
            "--body-timeout",
            min=0.1,
            help="Seconds a body may take, on top of one second per --min-upload-rate bytes.",
        ),
    ] = 10.0,
    min_upload_rate: Annotated[
        int,
        typer.Option("--min-upload-rate", min=1, help="Slowest accepted body upload, in bytes/s."),
    ] = 64 << 10,
    max_clients: Annotated[
        int,
        typer.Option(
            "--max-clients", min=1, help="Client identities whose quota usage is remembered."
        ),
    ] = 20_000,
    header_timeout: Annotated[
        float,
        typer.Option(
            "--header-timeout",
            min=0.1,
            help="Seconds to send a request's headers after connecting or the previous answer.",
        ),
    ] = 10.0,
    keep_alive_timeout: Annotated[
        int,
        typer.Option("--keep-alive-timeout", min=1, help="Seconds an idle connection stays open."),
    ] = 5,
    max_header_bytes: Annotated[
        int,
        typer.Option("--max-header-bytes", min=1024, help="Largest request line and headers."),
    ] = 16 << 10,
    max_connections: Annotated[
        int,
        typer.Option(
            "--max-connections", min=1, help="Open connections before requests get a 503."
        ),
    ] = 512,
    max_connections_per_client: Annotated[
        int,
        typer.Option(
            "--max-connections-per-client",
            min=1,
            help="Open connections one client address may hold (trusted proxies excepted).",
        ),
    ] = 64,
    backlog: Annotated[
        int,
        typer.Option("--backlog", min=1, help="Connections the kernel may queue before accept."),
    ] = 256,
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            "--forwarded-allow-ips",
            help="Comma-separated proxy addresses or networks whose X-Forwarded-For is "
            "believed (default: none, so every client is its connection's address).",
        ),
    ] = "",
) -> None:
    """Server: answer encrypted queries over HTTP.

    Set $PPML_SERVICE_TOKEN to require `Authorization: Bearer <token>` on /v1.
    docs/service.md says what each limit defends against.
    """
    from ppml.service.app import ServiceSettings, run_service
    from ppml.service.quota import Quota

    for value, hint in (
        (rate_limit, "--rate-limit"),
        (compute_budget, "--compute-budget"),
        (max_refusals, "--max-refusals"),
    ):
        try:
            Quota.parse(value)
        except ValueError:
            raise typer.BadParameter("expected e.g. 1000/hour", param_hint=hint) from None
    proxies = tuple(entry.strip() for entry in forwarded_allow_ips.split(",") if entry.strip())
    settings = ServiceSettings(
        model_dir=model,
        workers=workers or default_jobs(),
        bulk_workers=bulk_workers,
        bulk_niceness=bulk_nice,
        mask_pool=mask_pool,
        dask=dask,
        max_body_bytes=max_body_bytes,
        max_rows=max_rows,
        rate_limit=rate_limit,
        compute_budget=compute_budget,
        max_refusals=max_refusals,
        max_request_cost=max_request_cost,
        interactive_cost=interactive_cost,
        max_pending_interactive=max_pending_interactive,
        max_pending_bulk=max_pending_bulk,
        client_share=client_share,
        max_pending_bytes=max_pending_bytes,
        compute_timeout=compute_timeout,
        body_timeout=body_timeout,
        min_upload_rate=min_upload_rate,
        max_clients=max_clients,
        header_timeout=header_timeout,
        keep_alive_timeout=keep_alive_timeout,
        max_header_bytes=max_header_bytes,
        max_connections=max_connections,
        max_connections_per_client=max_connections_per_client,
        backlog=backlog,
        forwarded_allow_ips=proxies,
        token=os.environ.get(TOKEN_ENV) or None,
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    info(f"serving {model} on http://{host}:{port} ({settings.workers} interactive + "
         f"{settings.bulk_workers} bulk workers"
         f"{', bearer token required' if settings.token else ''})")  # fmt: skip
    if dask != LOCAL_ADDRESS:
        run_service(settings, host, port)
        return
    with local_cluster() as scheduler:
        run_service(dataclasses.replace(settings, dask=scheduler), host, port)


def query(
    url: Annotated[str, typer.Option("--url", help="Base URL of a ppml service.")],
    keys: Annotated[Path, typer.Option("--keys", help="Directory with the customer's key pair.")],
    input_csv: Annotated[
        Path, typer.Option("--input", help="CSV of raw rows to price ('-': standard input).")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="CSV of predictions to write ('-': standard output).")
    ],
    features: Annotated[
        Path | None,
        typer.Option(
            "--features",
            help="Pin this feature spec: every row is checked before the service is contacted, "
            "and a service serving another spec is refused before anything is sent "
            "(recommended).",
        ),
    ] = None,
    id_column: Annotated[
        list[str] | None,
        typer.Option(
            "--id-column",
            help="Copy this input column onto each prediction (repeatable); it is never sent.",
        ),
    ] = None,
    strict: StrictOption = False,
    delimiter: DelimiterOption = None,
    encoding: EncodingOption = None,
    jobs: JobsOption = None,
) -> None:
    """Customer: price rows privately through a ppml service in one command.

    Encrypts locally with the pinned spec (--features) or the one the service
    serves, posts the rows in as many queries as the service's limits require,
    decrypts the answers locally into one CSV, in input order. Set
    $PPML_SERVICE_TOKEN if the service needs one.
    """
    from ppml.features.spec import EncodingReport, FeatureSpec
    from ppml.service.client import query_service

    options = csv_options(delimiter, encoding)
    private_key = load_private_key(keys / PRIVATE_KEY_FILENAME, passphrase=existing_passphrase)
    pinned = FeatureSpec.load(features) if features is not None else None
    if pinned is None:
        info("using the spec the service serves; pin a reviewed spec with --features")
    report = EncodingReport()
    with progress_bar("querying") as progress:
        count = query_service(
            url,
            private_key,
            input_csv,
            out,
            token=os.environ.get(TOKEN_ENV) or None,
            jobs=jobs,
            progress=progress,
            spec=pinned,
            csv_options=options,
            id_columns=tuple(id_column or ()),
            report=report,
            strict=strict,
        )
    report_encoding(report)
    info(f"{count} predictions from {url} -> {output_name(out)}")


def page_hashes(
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="Check the page a service serves: fetch it and every asset it pins, and compare "
            "them with this ppml's.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the hashes as JSON.")] = False,
) -> None:
    """The published hashes of this ppml's pricing page, or a check of a served one.

    The SHA-256 of the page's HTML and the Subresource Integrity of every asset
    are fixed for an installed ppml version; the HTML pins the page's modules
    by them. Run from a ppml you installed yourself, --url says whether a
    service serves exactly this page (exit 1 and one line per file if not).
    """
    from ppml.service.client import check_served_page
    from ppml.web import page_hashes as published_hashes

    if url is None:
        hashes = published_hashes()
        if as_json:
            stdout.print_json(data=hashes.to_document())
            return
        stdout.print(f"/  sha256:{hashes.html_sha256}", highlight=False, markup=False)
        for path, integrity in hashes.assets.items():
            stdout.print(f"/{path}  {integrity}", highlight=False, markup=False)
        return
    differences = check_served_page(url)
    for difference in differences:
        stderr.print(
            f"{url.rstrip('/')}{difference.path}: served {difference.served}, "
            f"this ppml's is {difference.expected}",
            highlight=False,
            markup=False,
        )
    if differences:
        raise ServiceError(
            f"{url}: the page differs from this ppml's in {len(differences)} file(s)"
        )
    info(f"{url}: the page and its {len(published_hashes().assets)} assets are this ppml's")

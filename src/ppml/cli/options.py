"""What the CLI's commands share: table and job options, progress bars, the customer's report."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ppml.cli.console import info, stderr
from ppml.errors import SettingError
from ppml.features.spec import EncodingReport
from ppml.features.table import CsvOptions, parse_delimiter
from ppml.fileio import is_standard_stream
from ppml.roles.parallel import Executor

DaskOption = Annotated[
    str | None,
    typer.Option(
        "--dask",
        metavar="ADDRESS",
        help="Run the blocks on a Dask cluster: a scheduler address (tcp://host:8786), or "
        "'local' to start one here with a worker per core. Results are the same.",
    ),
]
AllowRemotePrivateKeyOption = Annotated[
    bool,
    typer.Option(
        "--allow-remote-private-key",
        help="With --dask on another machine: send the private key's factors to its workers "
        "(refused by default).",
    ),
]
JobsOption = Annotated[
    int | None,
    typer.Option("--jobs", "-j", min=1, help="Worker processes (default: every core)."),
]
StrictOption = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="Refuse the input if a row has a category the spec does not list, or an "
        "unusual value (default: warn with counts and encode as the spec says).",
    ),
]
DelimiterOption = Annotated[
    str | None,
    typer.Option(
        "--delimiter",
        help="Field separator: ',', ';', tab (or '\\t'), '|' (default: detected; .tsv is tab).",
    ),
]
EncodingOption = Annotated[
    str | None,
    typer.Option("--encoding", help="Text encoding (default: UTF-8, with or without a BOM)."),
]


def csv_options(delimiter: str | None, encoding: str | None) -> CsvOptions:
    """The CSV reading options of a command line."""
    try:
        return CsvOptions(None if delimiter is None else parse_delimiter(delimiter), encoding)
    except SettingError as error:
        hint = "--delimiter" if "delimiter" in str(error) else "--encoding"
        raise typer.BadParameter(str(error), param_hint=hint) from None


class RichProgress:
    """A progress bar on stderr that learns its total when the job knows it."""

    def __init__(self, bar: Progress, description: str) -> None:
        self._bar = bar
        self._task = bar.add_task(description, total=None)

    def start(self, total: int) -> None:
        self._bar.update(self._task, total=total)

    def advance(self, rows: int) -> None:
        self._bar.advance(self._task, rows)


@contextmanager
def executor_for(
    address: str | None, *, allow_private_key: bool = False
) -> Iterator[Executor | None]:
    """The Dask executor ``--dask`` names (None without it: local processes, ``--jobs``)."""
    if address is None:
        yield None
        return
    from ppml.roles.cluster import dask_executor  # distributed loads slowly: only here

    with dask_executor(address, allow_private_key=allow_private_key) as executor:
        where = "on this machine" if executor.local else "on other machines"
        info(f"the blocks run on the Dask cluster at {address} ({where})")
        yield executor


@contextmanager
def progress_bar(description: str) -> Iterator[RichProgress]:
    """A progress bar on stderr, removed when the step is done."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        # Never stdout: with --out -, stdout holds the output alone.
        console=stderr,
        transient=True,
        # Off a terminal the bar would only leave a blank line before any error message.
        disable=not stderr.is_terminal,
    ) as bar:
        yield RichProgress(bar, description)


def report_encoding(report: EncodingReport) -> None:
    """What happened to the customer's cells, on stderr (the counts never leave this machine)."""
    for note in report.notes():
        info(note)
    for warning in report.warnings():
        info(f"warning: {warning} (--strict refuses such rows)")


def output_name(path: Path) -> str:
    """An output path as messages name it."""
    return "standard output" if is_standard_stream(path) else str(path)

"""Where the CLI writes: data on stdout, messages and progress on stderr."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console
from rich.status import Status
from rich.table import Table
from rich.text import Text

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)


def info(message: str | Text) -> None:
    """Report progress or a result summary to the user (stderr).

    A string is printed as it is: names of columns, classes and files come
    from users and peers, and must never be read as Rich markup. Styled
    messages are :class:`~rich.text.Text`.
    """
    stderr.print(message, highlight=False, markup=False, emoji=False)


def plain_table(title: str, columns: Iterable[tuple[str, str]]) -> Table:
    """A table whose title and ``(heading, justify)`` columns are literal text."""
    table = Table(title=Text(title))
    for heading, justify in columns:
        table.add_column(Text(heading), justify="right" if justify == "right" else "left")
    return table


def add_plain_row(table: Table, cells: Iterable[str]) -> None:
    """A row of literal text (cells may hold names and values from a peer or a file)."""
    table.add_row(*(Text(cell) for cell in cells))


def status(message: str) -> Status:
    """A spinner on stderr while a slow step runs (use as a context manager)."""
    return stderr.status(message + "...")

"""Where the CLI writes: data on stdout, messages and progress on stderr."""

from __future__ import annotations

from rich.console import Console
from rich.status import Status

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)


def info(message: str) -> None:
    """Report progress or a result summary to the user (stderr)."""
    stderr.print(message, highlight=False)


def status(message: str) -> Status:
    """A spinner on stderr while a slow step runs (use as a context manager)."""
    return stderr.status(message + "...")

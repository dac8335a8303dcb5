"""Writing files so that readers never see a partial one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, TextIO

PRIVATE_FILE_MODE = 0o600
PUBLIC_FILE_MODE = 0o644


@contextlib.contextmanager
def _atomic_file(
    path: str | Path, *, mode: int, binary: bool, overwrite: bool = True
) -> Iterator[IO[Any]]:
    """A temporary file beside ``path`` that replaces it only if the block succeeds.

    The temporary file is created with ``mode`` already applied (never wider
    for an instant) and synced to disk before the rename. With
    ``overwrite=False`` an existing ``path`` raises :class:`FileExistsError`.
    On any failure nothing is left behind.
    """
    target = Path(path)
    descriptor, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    try:
        os.fchmod(descriptor, mode)
        opened = (
            os.fdopen(descriptor, "wb")
            if binary
            else os.fdopen(descriptor, "w", encoding="utf-8", newline="")
        )
        with opened as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(temporary, target)
        else:
            # link() fails if the target exists, so two writers cannot race.
            os.link(temporary, target)
            os.unlink(temporary)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def write_atomic(
    path: str | Path, data: bytes, *, mode: int = PUBLIC_FILE_MODE, overwrite: bool = True
) -> None:
    """Write ``data`` to ``path`` in one step: a temporary file beside it, then a rename."""
    with _atomic_file(path, mode=mode, binary=True, overwrite=overwrite) as handle:
        handle.write(data)


@contextlib.contextmanager
def atomic_text_writer(path: str | Path, *, mode: int = PUBLIC_FILE_MODE) -> Iterator[TextIO]:
    """A text file written in pieces that appears at ``path`` only if the block succeeds."""
    with _atomic_file(path, mode=mode, binary=False) as handle:
        yield handle  # type: ignore[misc]

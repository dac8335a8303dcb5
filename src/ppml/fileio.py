"""Writing files so that readers never see a partial one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

PRIVATE_FILE_MODE = 0o600
PUBLIC_FILE_MODE = 0o644


def write_atomic(
    path: str | Path, data: bytes, *, mode: int = PUBLIC_FILE_MODE, overwrite: bool = True
) -> None:
    """Write ``data`` to ``path`` in one step: a temporary file beside it, then a rename.

    The temporary file is created with ``mode`` already applied (never wider
    for an instant), synced to disk, then renamed over ``path``. With
    ``overwrite=False`` an existing ``path`` raises :class:`FileExistsError`.
    On any failure nothing is left behind.
    """
    target = Path(path)
    descriptor, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    try:
        os.fchmod(descriptor, mode)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
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


@contextlib.contextmanager
def atomic_text_writer(path: str | Path, *, mode: int = PUBLIC_FILE_MODE) -> Iterator[TextIO]:
    """A text file written in pieces that appears at ``path`` only if the block succeeds."""
    target = Path(path)
    descriptor, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    try:
        os.fchmod(descriptor, mode)
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise

"""Writing files so that readers never see a partial one, with the modes the user expects.

Public outputs (public keys, feature specs, queries, results, predictions)
get ``0o666`` less the process umask, as any file created with ``open()``
would: a user who runs under ``umask 077`` keeps them private. Secret files
(private keys, the server's model) get ``0o600`` whatever the umask.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, TextIO

PRIVATE_FILE_MODE = 0o600
PUBLIC_FILE_MODE = 0o666
"""Before the umask is applied; see :func:`file_mode`."""

_umask_lock = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the system allows.

    Linux reports it in /proc/self/status. Elsewhere the only way to read it
    is to set it and put it back; the lock keeps two threads of this process
    from interleaving that (and so from restoring the wrong value), and the
    temporary value (077) can only deny the group and others access to a
    file another thread creates meanwhile, never grant it.
    """
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8) & 0o777
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:
        umask = os.umask(0o077)
        os.umask(umask)
    return umask & 0o777


def file_mode(mode: int) -> int:
    """The mode a file written with ``mode`` gets: secret files exactly, others less the umask."""
    return mode if mode == PRIVATE_FILE_MODE else mode & ~current_umask()


STANDARD_STREAM = "-"
"""The file name that stands for standard input (when read) or standard output (when written)."""


def is_standard_stream(path: str | Path) -> bool:
    """Whether ``path`` names standard input or output."""
    return str(path) == STANDARD_STREAM


def spool_stdin() -> IO[bytes]:
    """Standard input, read once into an anonymous private file, positioned at its start.

    Standard input cannot be reopened, while readers here validate a file
    before they use it (two passes); the spool can be read any number of times.
    """
    spool = tempfile.TemporaryFile()  # noqa: SIM115 (the caller closes it)
    shutil.copyfileobj(sys.stdin.buffer, spool)
    spool.flush()
    spool.seek(0)
    return spool


@contextlib.contextmanager
def _stdout_on_success(binary: bool) -> Iterator[IO[Any]]:
    with tempfile.TemporaryFile() as spool:
        if binary:
            yield spool
        else:
            text = io.TextIOWrapper(spool, encoding="utf-8", newline="", write_through=True)
            yield text
            text.detach()
        spool.seek(0)
        shutil.copyfileobj(spool, sys.stdout.buffer)
        sys.stdout.buffer.flush()


@contextlib.contextmanager
def _atomic_file(
    path: str | Path, *, mode: int, binary: bool, overwrite: bool = True
) -> Iterator[IO[Any]]:
    """A temporary file beside ``path`` that replaces it only if the block succeeds.

    The temporary file is created with mode 0600 by :func:`tempfile.mkstemp`
    and narrowed or widened to ``file_mode(mode)`` before anything is written
    to it, then synced to disk before the rename. With
    ``overwrite=False`` an existing ``path`` raises :class:`FileExistsError`.
    On any failure nothing is left behind. ``-`` stands for standard output:
    the bytes are held in an anonymous file and copied there only on success,
    so a failed step prints nothing.
    """
    if is_standard_stream(path):
        with _stdout_on_success(binary) as handle:
            yield handle
        return
    target = Path(path)
    descriptor, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    try:
        os.fchmod(descriptor, file_mode(mode))
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
def atomic_binary_writer(path: str | Path, *, mode: int = PUBLIC_FILE_MODE) -> Iterator[IO[bytes]]:
    """A binary file written in pieces that appears at ``path`` only if the block succeeds."""
    with _atomic_file(path, mode=mode, binary=True) as handle:
        yield handle


@contextlib.contextmanager
def atomic_text_writer(path: str | Path, *, mode: int = PUBLIC_FILE_MODE) -> Iterator[TextIO]:
    """A text file written in pieces that appears at ``path`` only if the block succeeds."""
    with _atomic_file(path, mode=mode, binary=False) as handle:
        yield handle  # type: ignore[misc]

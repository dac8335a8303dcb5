"""Every error ppml raises on purpose.

All of them derive from :class:`PpmlError`, and each also derives from the
built-in exception a caller would naturally catch (``ValueError``,
``OverflowError``), so ``except ValueError`` keeps working. The CLI and the
HTTP service map these types to exit codes and status codes; plain
``TypeError``/``ValueError`` raised elsewhere mean a programming mistake.
"""

from __future__ import annotations

from pathlib import Path


class PpmlError(Exception):
    """Base class of every error ppml raises deliberately."""


class SettingError(PpmlError, ValueError):
    """A setting given to ppml is invalid (an unknown estimator, a holdout of 1.5, ...)."""


class InsecureKeyError(PpmlError, ValueError):
    """A key is smaller than the security policy allows."""


class InvalidKeyError(PpmlError, ValueError):
    """Key material is inconsistent (p*q != n, composite factors, ...)."""


class KeyMismatchError(PpmlError, ValueError):
    """Values encrypted under different public keys were combined."""


class InvalidCiphertextError(PpmlError, ValueError):
    """A ciphertext is not a valid element of Z*_{n^2} for its key."""

    index: int | None = None
    """Its position, when it was checked among others (:meth:`Ciphertext.validated`)."""


class EncodingError(PpmlError, ValueError):
    """A value cannot be encoded (not a finite real number, wrong type)."""


class PlaintextOverflowError(PpmlError, OverflowError):
    """A value, or the result of a computation, does not fit the plaintext space.

    Raised before the computation happens whenever the bound can be known in
    advance, so a wrapped-around result is never produced silently.
    """


class FileFormatError(PpmlError, ValueError):
    """A file is damaged, truncated, of an unknown version or of the wrong kind.

    The message always starts with the file's path, so a one-line report is
    enough for the user to know what to fix.
    """

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(problem if path is None else f"{path}: {problem}")


class KeyFileError(FileFormatError):
    """A key file cannot be read."""


class UnsupportedVersionError(FileFormatError):
    """A file declares a format version this release does not read."""


class PassphraseError(KeyFileError):
    """A protected private key needs a passphrase that is missing or wrong."""


class DataError(PpmlError, ValueError):
    """An input row cannot be used: a missing column, an unparsable or out-of-range value.

    The message names the file, the row (1 = first data row), its line in the
    file, the column and the offending value.
    """

    def __init__(
        self,
        problem: str,
        *,
        path: str | Path | None = None,
        row: int | None = None,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.row, self.line, self.column, self.problem = row, line, column, problem
        where = []
        if row is not None:
            where.append(f"row {row}" + (f" (line {line})" if line is not None else ""))
        if column is not None:
            where.append(f"column {column!r}")
        parts = ([] if path is None else [str(path)]) + ([", ".join(where)] if where else [])
        super().__init__(": ".join([*parts, problem]))


class SpecMismatchError(PpmlError, ValueError):
    """A document was made for another feature spec, key or model than the one at hand."""


class ServiceError(PpmlError, RuntimeError):
    """The prediction service refused a request, or could not be reached."""


class ClusterError(PpmlError, RuntimeError):
    """A Dask cluster could not finish a job: its workers kept dying, or it went away."""


class DeadlineExceededError(PpmlError, TimeoutError):
    """A computation ran past the deadline it was given and was abandoned."""


class MalformedJsonError(FileFormatError):
    """JSON text that ppml refuses to parse: invalid syntax or UTF-8, or over a parsing limit.

    The limits (size, nesting depth, integer and string length) keep a hostile
    file or request from exhausting the stack, memory or CPU; the message says
    which one was exceeded.
    """

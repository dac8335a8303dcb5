"""Shared rules of ppml's versioned JSON documents.

Every document is a JSON object whose first two members are ``format`` (a
string naming the kind of document) and ``version`` (an integer). Readers
check both before looking at anything else. Large integers are lowercase
hexadecimal strings without a prefix; binary blobs are base64 (standard
alphabet, padded).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ppml.errors import FileFormatError, UnsupportedVersionError

MAX_DOCUMENT_BYTES = 1 << 20

_Error = TypeVar("_Error", bound=FileFormatError)


class DocumentReader:
    """Typed access to the members of a JSON document, reporting problems with its path."""

    def __init__(
        self,
        members: dict[str, Any],
        path: str | Path | None,
        error: Callable[[str | Path | None, str], FileFormatError] = FileFormatError,
    ) -> None:
        self.members = members
        self.path = path
        self._error = error

    def fail(self, problem: str) -> FileFormatError:
        """Build the error to raise for ``problem``."""
        return self._error(self.path, problem)

    def get(self, name: str, kind: Any) -> Any:
        """Return member ``name``, which must exist and be of type ``kind``."""
        if name not in self.members:
            raise self.fail(f"missing field {name!r}")
        value = self.members[name]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            expected = getattr(kind, "__name__", str(kind))
            raise self.fail(f"field {name!r} must be of type {expected}")
        return value

    def hex_int(self, name: str) -> int:
        """Return member ``name``, a positive integer written in hexadecimal."""
        text = self.get(name, str)
        if not text or len(text) > 4096 or any(c not in "0123456789abcdef" for c in text):
            raise self.fail(f"field {name!r} is not a lowercase hexadecimal integer")
        return int(text, 16)

    def base64_bytes(self, name: str) -> bytes:
        """Return member ``name``, decoded from base64."""
        try:
            return base64.b64decode(self.get(name, str), validate=True)
        except (binascii.Error, ValueError):
            raise self.fail(f"field {name!r} is not valid base64") from None

    def reader(self, name: str) -> DocumentReader:
        """A reader for the nested object ``name``."""
        return DocumentReader(self.get(name, dict), self.path, self._error)


def hex_int(value: int) -> str:
    """Write a non-negative integer the way documents store it."""
    return format(value, "x")


def base64_text(data: bytes) -> str:
    """Write bytes the way documents store them."""
    return base64.b64encode(data).decode("ascii")


def dump_document(members: dict[str, Any]) -> bytes:
    """Serialise a document to UTF-8 JSON with a trailing newline."""
    return (json.dumps(members, indent=2) + "\n").encode("utf-8")


def canonical_json(members: dict[str, Any]) -> bytes:
    """A byte-stable serialisation, for hashing and authenticated data."""
    return json.dumps(members, sort_keys=True, separators=(",", ":")).encode("utf-8")


def parse_document(
    data: bytes,
    path: str | Path | None,
    *,
    expected_format: str,
    supported_versions: frozenset[int],
    error: Callable[[str | Path | None, str], _Error],
) -> DocumentReader:
    """Parse ``data`` as a document of ``expected_format``, checking its version first."""
    try:
        members = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise error(path, "not valid JSON (the file is truncated or damaged)") from None
    if not isinstance(members, dict):
        raise error(path, "not a ppml document (expected a JSON object)")
    document = DocumentReader(members, path, error)
    found_format = members.get("format")
    if found_format != expected_format:
        raise error(path, f"expected a {expected_format!r} document, found {found_format!r}")
    version = document.get("version", int)
    if version not in supported_versions:
        readable = ", ".join(str(v) for v in sorted(supported_versions))
        raise UnsupportedVersionError(
            path, f"format version {version} is not supported (this ppml reads version {readable})"
        )
    return document


def read_document_bytes(
    path: str | Path,
    error: Callable[[str | Path | None, str], FileFormatError],
    max_bytes: int = MAX_DOCUMENT_BYTES,
) -> bytes:
    """Read a document file, refusing one larger than ``max_bytes``."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise error(path, "no such file") from None
    except IsADirectoryError:
        raise error(path, "is a directory, not a file") from None
    except PermissionError:
        raise error(path, "permission denied") from None
    if len(data) > max_bytes:
        raise error(path, f"larger than {max_bytes} bytes; refusing to read it")
    return data

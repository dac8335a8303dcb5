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
import itertools
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from ppml.errors import FileFormatError, MalformedJsonError, UnsupportedVersionError

MAX_DOCUMENT_BYTES = 1 << 20

# Parsing limits (docs/wire-format.md, "Parsing limits"). Every document ppml
# writes nests at most 4 levels deep, writes integers of a few digits (large
# integers are hex or base64 strings) and floats as repr() does (at most 24
# characters), so the limits below leave a wide margin while keeping a hostile
# input from reaching the parser's recursion limit or int()'s quadratic and
# digit-limited conversion.
MAX_JSON_DEPTH = 32
MAX_NUMBER_LENGTH = 64
MAX_STRING_BYTES = MAX_DOCUMENT_BYTES

JsonError = Callable[[str | Path | None, str], FileFormatError]

# A JSON string, escapes skipped; the closing quote is optional so that a
# truncated text is still scanned to its end. Outside strings a quote can only
# open a string, so once strings are removed the brackets left are exactly
# those the parser would nest on, up to the first syntax error it stops at.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
# What is left of a text once strings are removed, as one signed byte per
# bracket: +1 opens, -1 closes. Running sums of these are nesting depths.
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")
_DEPTH_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
# An escape that may encode half of a surrogate pair; rare enough in ppml's
# documents that the full check behind it costs nothing in practice.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")

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


def jcs(members: dict[str, Any]) -> bytes:
    """The RFC 8785 (JSON Canonicalization Scheme) form of ``members``: what ids are hashes of,
    so that any language with a JCS implementation computes the same bytes."""
    import rfc8785

    return rfc8785.dumps(members)


def load_json(
    data: bytes,
    *,
    max_bytes: int,
    path: str | Path | None = None,
    error: JsonError = MalformedJsonError,
    max_depth: int = MAX_JSON_DEPTH,
    max_number_length: int = MAX_NUMBER_LENGTH,
    max_string_bytes: int = MAX_STRING_BYTES,
) -> Any:
    """Parse UTF-8 JSON text from a file or a peer, refusing anything over the limits.

    The one way ppml reads JSON it did not just write. ``data`` is refused,
    as ``error(path, problem)`` with a one-line ``problem``, if it is longer
    than ``max_bytes``, is not strict UTF-8, nests arrays and objects deeper
    than ``max_depth``, holds a string whose JSON text is longer than
    ``max_string_bytes`` or a number literal longer than ``max_number_length``
    characters, NaN, Infinity or a float that overflows to infinity, an
    unpaired surrogate escape, or the same member twice in one object.

    The depth is checked by a linear scan before the parser runs, so a deeply
    nested text never reaches the parser's recursion; numbers are checked
    before they are converted, so a long integer never reaches ``int()``.
    """

    def fail(problem: str) -> FileFormatError:
        return error(path, problem)

    if len(data) > max_bytes:
        raise fail(f"larger than {max_bytes} bytes; refusing to read it")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as bad:
        raise fail(f"not valid JSON (invalid UTF-8 at byte {bad.start})") from None
    _check_nesting(data, max_depth, max_string_bytes, fail)

    def short(literal: str) -> str:
        if len(literal) > max_number_length:
            raise fail(f"a number longer than {max_number_length} characters; refusing to parse it")
        return literal

    def finite_float(literal: str) -> float:
        value = float(short(literal))
        if not math.isfinite(value):
            raise fail(f"the number {literal} does not fit a float")
        return value

    def constant(name: str) -> NoReturn:
        raise fail(f"{name} is not valid JSON; refusing to parse it")

    def members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        found = dict(pairs)
        if len(found) != len(pairs):
            # Two readers could disagree on which value counts; accept neither.
            seen: set[str] = set()
            for name, _ in pairs:
                if name in seen:
                    raise fail(f"the member {_clip(name)} appears twice in one object")
                seen.add(name)
        return found

    try:
        value = json.loads(
            text,
            parse_int=lambda literal: int(short(literal)),
            parse_float=finite_float,
            parse_constant=constant,
            object_pairs_hook=members,
        )
    except json.JSONDecodeError:
        raise fail("not valid JSON (the file is truncated or damaged)") from None
    if _SURROGATE_ESCAPE.search(data) and not _all_strings_encode(value):
        # Such a string cannot be written back as UTF-8: refuse it here rather
        # than fail later in whatever code first prints or saves it.
        raise fail("not valid JSON (a string holds an unpaired UTF-16 surrogate)")
    return value


def _check_nesting(
    data: bytes, max_depth: int, max_string_bytes: int, fail: Callable[[str], FileFormatError]
) -> None:
    """Refuse ``data`` if its brackets nest deeper than ``max_depth`` or a string is too long.

    Linear in ``len(data)``, and each step is a C loop (regular expression,
    translate, accumulate), so even a hostile text at the size limit is
    scanned quickly; the common case, a text with fewer brackets than
    ``max_depth`` or shorter than ``max_string_bytes``, skips the scan.
    """
    if data.count(b"[") + data.count(b"{") > max_depth:
        steps = _STRING.sub(b"", data).translate(_DEPTH_STEPS, _NOT_BRACKETS)
        # Depth moves by one at a time, so it exceeds the limit iff it reaches limit + 1.
        if max_depth + 1 in itertools.accumulate(memoryview(steps).cast("b")):
            raise fail(f"nested deeper than {max_depth} levels; refusing to parse it")
    if len(data) > max_string_bytes + 2:
        longest = max(map(len, _STRING.findall(data)), default=2) - 2
        if longest > max_string_bytes:
            raise fail(f"a string longer than {max_string_bytes} bytes; refusing to parse it")


def _all_strings_encode(value: Any) -> bool:
    """Whether every string in a parsed value (member names too) is encodable as UTF-8."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
    return True


def _clip(name: str, limit: int = 40) -> str:
    """A member name for a one-line message: quoted, escaped, and cut if long."""
    shown = repr(name[:limit])
    return shown if len(name) <= limit else f"{shown}..."


def parse_document(
    data: bytes,
    path: str | Path | None,
    *,
    expected_format: str,
    supported_versions: frozenset[int],
    error: Callable[[str | Path | None, str], _Error],
    max_bytes: int = MAX_DOCUMENT_BYTES,
) -> DocumentReader:
    """Parse ``data`` as a document of ``expected_format``, checking its version first.

    ``data`` is parsed by :func:`load_json` under its limits, ``max_bytes``
    included; every problem is reported as ``error``.
    """
    members = load_json(data, path=path, error=error, max_bytes=max_bytes)
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

"""Query and result documents: what the customer sends and what the server returns.

Specified in ``docs/wire-format.md``. Every ciphertext is the base64 of its
big-endian bytes, zero-padded to the byte length of n^2, so all ciphertexts of
a key look alike. A query carries the customer's public key and the id of the
feature spec it was made for; a result names the key and spec it answers, its
fixed-point scale and a bound that every genuine prediction satisfies.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ppml.crypto import MIN_KEY_BITS, Ciphertext, PublicKey
from ppml.errors import FileFormatError, InvalidCiphertextError, SpecMismatchError
from ppml.fileio import write_atomic
from ppml.wire.document import DocumentReader, dump_document, parse_document, read_document_bytes
from ppml.wire.keyfile import PUBLIC_KEY_FORMAT, parse_public_key, public_key_document

QUERY_FORMAT = "ppml.query"
RESULT_FORMAT = "ppml.result"
MESSAGE_VERSION = 1
MAX_MESSAGE_BYTES = 1 << 30


def ciphertext_width(public_key: PublicKey) -> int:
    """Bytes of every serialised ciphertext of ``public_key``."""
    return (int(public_key.nsquare).bit_length() + 7) // 8


def encode_ciphertext(ciphertext: Ciphertext, width: int) -> str:
    """A ciphertext as fixed-width base64 text."""
    return base64.b64encode(ciphertext.value.to_bytes(width, "big")).decode("ascii")


def decode_ciphertext(
    public_key: PublicKey, text: Any, width: int, document: DocumentReader, where: str
) -> Ciphertext:
    """Read and validate one ciphertext; problems name the file and position."""
    if not isinstance(text, str):
        raise document.fail(f"{where}: a ciphertext must be a base64 string")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise document.fail(f"{where}: not valid base64") from None
    if len(raw) != width:
        raise document.fail(f"{where}: a ciphertext of this key has {width} bytes, not {len(raw)}")
    try:
        return Ciphertext(public_key, int.from_bytes(raw, "big"))
    except InvalidCiphertextError as error:
        raise document.fail(f"{where}: {error}") from None


@dataclass(frozen=True)
class EncryptedQuery:
    """Encrypted model inputs: one row of ciphertexts per example, in spec order."""

    public_key: PublicKey
    spec_id: str
    frac_bits: int
    rows: tuple[tuple[Ciphertext, ...], ...]

    @property
    def feature_count(self) -> int:
        """Ciphertexts per row."""
        return len(self.rows[0]) if self.rows else 0

    def to_document(self) -> dict[str, Any]:
        """The JSON document of the query."""
        width = ciphertext_width(self.public_key)
        return {
            "format": QUERY_FORMAT,
            "version": MESSAGE_VERSION,
            "public_key": public_key_document(self.public_key),
            "spec_id": self.spec_id,
            "frac_bits": self.frac_bits,
            "rows": len(self.rows),
            "features": self.feature_count,
            "ciphertexts": [[encode_ciphertext(c, width) for c in row] for row in self.rows],
        }

    def save(self, path: str | Path) -> None:
        """Write the query file atomically."""
        write_atomic(path, dump_document(self.to_document()))

    @classmethod
    def parse(
        cls, data: bytes, path: str | Path | None = None, *, min_bits: int = MIN_KEY_BITS
    ) -> EncryptedQuery:
        """Parse and validate a query: its key, its shape and every ciphertext."""
        document = parse_document(
            data,
            path,
            expected_format=QUERY_FORMAT,
            supported_versions=frozenset({MESSAGE_VERSION}),
            error=FileFormatError,
        )
        key_members = document.get("public_key", dict)
        if key_members.get("format") != PUBLIC_KEY_FORMAT:
            raise document.fail("field 'public_key' is not a ppml public key")
        try:
            public_key = parse_public_key(dump_document(key_members), None, min_bits=min_bits)
        except FileFormatError as error:
            raise document.fail(f"public_key: {error.problem}") from None
        row_count, feature_count = document.get("rows", int), document.get("features", int)
        frac_bits = document.get("frac_bits", int)
        if not 0 <= frac_bits <= 256:
            raise document.fail("frac_bits must be between 0 and 256")
        rows = document.get("ciphertexts", list)
        if len(rows) != row_count:
            raise document.fail(f"declares {row_count} rows but holds {len(rows)}")
        width = ciphertext_width(public_key)
        parsed = []
        for index, row in enumerate(rows):
            if not isinstance(row, list) or len(row) != feature_count:
                raise document.fail(f"row {index + 1} must hold {feature_count} ciphertexts")
            parsed.append(
                tuple(
                    decode_ciphertext(
                        public_key, text, width, document, f"row {index + 1}, feature {j + 1}"
                    )
                    for j, text in enumerate(row)
                )
            )
        return cls(public_key, document.get("spec_id", str), frac_bits, tuple(parsed))

    @classmethod
    def load(cls, path: str | Path, *, min_bits: int = MIN_KEY_BITS) -> EncryptedQuery:
        """Load a query file."""
        data = read_document_bytes(path, FileFormatError, MAX_MESSAGE_BYTES)
        return cls.parse(data, path, min_bits=min_bits)


@dataclass(frozen=True)
class EncryptedResult:
    """Encrypted predictions, one per query row, on the model's scale.

    ``frac_bits`` is the fixed-point scale of the predictions; every genuine
    prediction X satisfies ``|X| < 2^bound_bits``, so a decrypted value outside
    that range reveals an altered ciphertext. ``target_name`` and
    ``target_transform`` say how to turn predictions into target units.
    """

    public_key: PublicKey
    spec_id: str
    frac_bits: int
    bound_bits: int
    target_name: str
    target_transform: str
    predictions: tuple[Ciphertext, ...]

    def to_document(self) -> dict[str, Any]:
        """The JSON document of the result."""
        width = ciphertext_width(self.public_key)
        return {
            "format": RESULT_FORMAT,
            "version": MESSAGE_VERSION,
            "key_id": self.public_key.key_id,
            "spec_id": self.spec_id,
            "frac_bits": self.frac_bits,
            "bound_bits": self.bound_bits,
            "target": {"name": self.target_name, "transform": self.target_transform},
            "rows": len(self.predictions),
            "ciphertexts": [encode_ciphertext(c, width) for c in self.predictions],
        }

    def save(self, path: str | Path) -> None:
        """Write the result file atomically."""
        write_atomic(path, dump_document(self.to_document()))

    @classmethod
    def parse(
        cls, data: bytes, public_key: PublicKey, path: str | Path | None = None
    ) -> EncryptedResult:
        """Parse a result addressed to ``public_key``; one for another key is refused."""
        document = parse_document(
            data,
            path,
            expected_format=RESULT_FORMAT,
            supported_versions=frozenset({MESSAGE_VERSION}),
            error=FileFormatError,
        )
        key_id = document.get("key_id", str)
        if key_id != public_key.key_id:
            where = f"{path}: " if path is not None else ""
            raise SpecMismatchError(
                f"{where}the result was made for key {key_id}, "
                f"not for this private key ({public_key.key_id})"
            )
        frac_bits, bound_bits = document.get("frac_bits", int), document.get("bound_bits", int)
        if not 0 <= frac_bits <= 1024 or not 0 < bound_bits < public_key.bits - 1:
            raise document.fail("frac_bits or bound_bits out of range")
        target = document.reader("target")
        transform = target.get("transform", str)
        if transform not in ("none", "log"):
            raise document.fail(f"unknown target transform {transform!r}")
        texts = document.get("ciphertexts", list)
        if len(texts) != document.get("rows", int):
            raise document.fail("the number of ciphertexts does not match 'rows'")
        width = ciphertext_width(public_key)
        predictions = tuple(
            decode_ciphertext(public_key, text, width, document, f"prediction {i + 1}")
            for i, text in enumerate(texts)
        )
        return cls(
            public_key,
            document.get("spec_id", str),
            frac_bits,
            bound_bits,
            target.get("name", str),
            transform,
            predictions,
        )

    @classmethod
    def load(cls, path: str | Path, public_key: PublicKey) -> EncryptedResult:
        """Load a result file addressed to ``public_key``."""
        data = read_document_bytes(path, FileFormatError, MAX_MESSAGE_BYTES)
        return cls.parse(data, public_key, path)


def check_same_spec(expected: str, found: str, what: str, path: str | Path | None = None) -> None:
    """Refuse a document made for another feature spec."""
    if expected != found:
        where = f"{path}: " if path is not None else ""
        raise SpecMismatchError(
            f"{where}{what} was made for feature spec {found}, but this model uses spec {expected}"
        )


def rows_of(items: Sequence[Sequence[Ciphertext]]) -> tuple[tuple[Ciphertext, ...], ...]:
    """Freeze a list of ciphertext rows."""
    return tuple(tuple(row) for row in items)

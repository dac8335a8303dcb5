"""Query and result files: what the customer sends and what the server returns.

Specified in ``docs/wire-format.md``. Both are written and read block by
block, in memory that does not grow with the number of rows: a header
(``format``, ``version``, keys, spec, layout), one record per block of rows,
and a trailer whose absence reveals a truncated file. Each comes in one of
two containers with the same header document and the same blocks:

- JSON Lines: a line per record; every ciphertext is the base64 of its
  big-endian bytes, zero-padded to the byte length of n^2, so all
  ciphertexts of a key look alike;
- binary (:data:`BINARY_MAGIC`): the header's JSON after a length, then the
  ciphertexts' raw bytes, a quarter smaller and read without base64.

Readers recognise the container by its first bytes; a server answers in the
container of the query.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import secrets
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any

from ppml.crypto import (
    DEFAULT_KEY_POLICY,
    SERVER_KEY_POLICY,
    Ciphertext,
    KeyPolicy,
    PublicKey,
)
from ppml.encoding.packing import PackingLayout
from ppml.errors import (
    FileFormatError,
    InvalidCiphertextError,
    SpecMismatchError,
    UnsupportedVersionError,
)
from ppml.fileio import (
    atomic_binary_writer,
    is_standard_stream,
    spool_stdin,
)
from ppml.wire.document import DocumentReader, dump_document, load_json
from ppml.wire.keyfile import PUBLIC_KEY_FORMAT, parse_public_key, public_key_document

QUERY_FORMAT = "ppml.query"
RESULT_FORMAT = "ppml.result"
# Queries are unchanged since version 3. Results are version 4: k ciphertexts per
# block (one per score of the model) where version 3 had one prediction.
QUERY_VERSION = 3
RESULT_VERSION = 4
MAX_SCORES = 1024
MAX_LINE_BYTES = 64 << 20
"""The longest record: a JSON line, or a binary header or block."""
BINARY_MAGIC = b"PPMLBIN\x01"
"""The first bytes of a binary container (version 1 of the container, whatever the message)."""
_LENGTH = struct.Struct(">I")
_BLOCK = struct.Struct(">IH")  # rows (0: the trailer follows), ciphertexts
_TRAILER = struct.Struct(">II")  # blocks, rows
QUERY_ID_HEX_DIGITS = 32


def new_query_id() -> str:
    """A fresh random query id: 128 bits as 32 lowercase hex digits."""
    return secrets.token_hex(QUERY_ID_HEX_DIGITS // 2)


def is_binary_container(path: str | Path) -> bool:
    """Whether a block file (a regular file) is in the binary container."""
    with open(path, "rb") as handle:
        return handle.read(len(BINARY_MAGIC)) == BINARY_MAGIC


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's exact bytes, as lowercase hex (read in pieces)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except FileNotFoundError:
        raise FileFormatError(path, "no such file") from None
    except IsADirectoryError:
        raise FileFormatError(path, "is a directory, not a file") from None
    return digest.hexdigest()


def ciphertext_width(public_key: PublicKey) -> int:
    """Bytes of every serialised ciphertext of ``public_key``."""
    return (int(public_key.nsquare).bit_length() + 7) // 8


def encode_ciphertext_value(value: int, width: int) -> bytes:
    """A ciphertext integer as its fixed-width big-endian bytes (containers encode them)."""
    return int(value).to_bytes(width, "big")


def decode_ciphertext(
    public_key: PublicKey, text: Any, width: int, document: DocumentReader, where: str
) -> Ciphertext:
    """Read and validate one ciphertext (base64 text in JSON Lines, bytes in the binary
    container); problems name the file and position."""
    return decode_ciphertexts(public_key, [text], width, document, lambda _: where)[0]


def decode_ciphertexts(
    public_key: PublicKey,
    texts: Sequence[Any],
    width: int,
    document: DocumentReader,
    where: Callable[[int], str],
) -> list[Ciphertext]:
    """Read and validate a block's ciphertexts (one gcd for all of them); a problem names
    the file and ``where(j)`` of the ciphertext at position j."""
    values = [
        int.from_bytes(_ciphertext_bytes(text, width, document, where(j)), "big")
        for j, text in enumerate(texts)
    ]
    try:
        return Ciphertext.validated(public_key, values)
    except InvalidCiphertextError as error:
        raise document.fail(f"{where(error.index or 0)}: {error}") from None


def _feature_position(rows: str, j: int) -> str:
    return f"{rows}, feature {j + 1}"


def _score_position(block: int, j: int) -> str:
    return f"block {block}, score {j + 1}"


def _ciphertext_bytes(text: Any, width: int, document: DocumentReader, where: str) -> bytes:
    if isinstance(text, bytes):
        raw = text
    elif not isinstance(text, str):
        raise document.fail(f"{where}: a ciphertext must be a base64 string")
    else:
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise document.fail(f"{where}: not valid base64") from None
    if len(raw) != width:
        raise document.fail(f"{where}: a ciphertext of this key has {width} bytes, not {len(raw)}")
    return raw


@dataclass(frozen=True)
class QueryHeader:
    """What a query says about itself before its blocks.

    ``query_id`` is fresh for every query; the result names it, together with
    the SHA-256 of the query file, so a result can only be decrypted against
    the query it answers.
    """

    public_key: PublicKey
    spec_id: str
    frac_bits: int
    features: int
    rows: int
    layout: PackingLayout
    query_id: str = field(default_factory=new_query_id)

    @property
    def blocks(self) -> int:
        """Number of blocks: ``layout.slots`` rows each, the last one possibly shorter."""
        return -(-self.rows // self.layout.slots)

    def block_rows(self, index: int) -> int:
        """Rows of block ``index`` (0-based): full blocks, then the remainder."""
        return min(self.layout.slots, self.rows - index * self.layout.slots)

    def to_document(self) -> dict[str, Any]:
        """The header line's members."""
        return {
            "format": QUERY_FORMAT,
            "version": QUERY_VERSION,
            "query_id": self.query_id,
            "public_key": public_key_document(self.public_key),
            "spec_id": self.spec_id,
            "frac_bits": self.frac_bits,
            "features": self.features,
            "rows": self.rows,
            "layout": {"slots": self.layout.slots, "slot_bits": self.layout.slot_bits},
        }


@dataclass(frozen=True)
class ResultHeader:
    """What a result says about itself before its blocks.

    ``query_id`` and ``query_sha256`` name the query it answers (its id and
    the SHA-256 of its file's bytes). ``frac_bits`` is the fixed-point scale
    of the scores; every genuine score X satisfies ``|X| < 2^bound_bits``.
    Each block holds ``scores`` ciphertexts (k, one per score of the model);
    the feature spec named by ``spec_id`` says what they mean.
    """

    query_id: str
    query_sha256: str
    key_id: str
    spec_id: str
    frac_bits: int
    bound_bits: int
    scores: int
    rows: int
    layout: PackingLayout

    def to_document(self) -> dict[str, Any]:
        """The header line's members."""
        return {
            "format": RESULT_FORMAT,
            "version": RESULT_VERSION,
            "query_id": self.query_id,
            "query_sha256": self.query_sha256,
            "key_id": self.key_id,
            "spec_id": self.spec_id,
            "frac_bits": self.frac_bits,
            "bound_bits": self.bound_bits,
            "scores": self.scores,
            "rows": self.rows,
            "layout": {"slots": self.layout.slots, "slot_bits": self.layout.slot_bits},
        }


class BlockFileWriter:
    """Writes a header, blocks and a trailer to a temporary file, renamed into place on success.

    Use as a context manager: if the block is left by an exception, the
    temporary file is removed and nothing appears at ``path``. ``binary``
    chooses the binary container over JSON Lines.
    """

    def __init__(self, path: str | Path, header: dict[str, Any], *, binary: bool = False) -> None:
        self.path = Path(path)
        self.binary = binary
        self._blocks = 0
        self._rows = 0
        self._header = header
        self._stack = contextlib.ExitStack()

    def _write(self, members: dict[str, Any]) -> None:
        self._handle.write(json.dumps(members, separators=(",", ":")).encode("utf-8") + b"\n")

    def write_block(self, rows: int, ciphertexts: Sequence[bytes]) -> None:
        """Append the next block: ``rows`` rows, and its ciphertexts' fixed-width bytes."""
        if self.binary:
            self._handle.write(_BLOCK.pack(rows, len(ciphertexts)))
            self._handle.write(b"".join(ciphertexts))
        else:
            texts = [base64.b64encode(raw).decode("ascii") for raw in ciphertexts]
            self._write({"block": self._blocks, "rows": rows, "ciphertexts": texts})
        self._blocks += 1
        self._rows += rows

    def __enter__(self) -> BlockFileWriter:
        self._handle = self._stack.enter_context(atomic_binary_writer(self.path))
        if self.binary:
            header = json.dumps(self._header, separators=(",", ":")).encode("utf-8")
            self._handle.write(BINARY_MAGIC + _LENGTH.pack(len(header)) + header)
        else:
            self._write(self._header)
        return self

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        if kind is None:
            if self.binary:
                self._handle.write(_BLOCK.pack(0, 0) + _TRAILER.pack(self._blocks, self._rows))
            else:
                self._write({"end": True, "blocks": self._blocks, "rows": self._rows})
        self._stack.__exit__(kind, error, trace)


class BlockFileReader:
    """Reads a block file record by record, checking framing, order and the trailer.

    The container (JSON Lines or binary) is recognised by the first bytes;
    :attr:`binary` says which it was.
    """

    def __init__(self, path: str | Path, expected_format: str, version: int) -> None:
        self.path: str | Path = Path(path)
        self._handle: IO[bytes]
        try:
            if is_standard_stream(path):
                self.path = "<stdin>"
                self._handle = spool_stdin()  # closed by close()
            else:
                self._handle = open(self.path, "rb")  # noqa: SIM115 (closed by close())
        except FileNotFoundError:
            raise FileFormatError(path, "no such file") from None
        except IsADirectoryError:
            raise FileFormatError(path, "is a directory, not a file") from None
        self._line = 0
        self.binary = self._handle.read(len(BINARY_MAGIC)) == BINARY_MAGIC
        if self.binary:
            length = _LENGTH.unpack(self._read_exact(_LENGTH.size, "header"))[0]
            if length > MAX_LINE_BYTES:
                raise self.fail(f"the header is longer than {MAX_LINE_BYTES} bytes")
            raw = self._read_exact(length, "header")
            if b"\n" in raw:  # the header is what a JSON Lines file's first line would be
                raise self.fail("the header holds a line break")
            first: DocumentReader | None = self._document(raw, "the header")
        else:
            self._handle.seek(0)
            first = self._next_line()
        if first is None:
            raise self.fail("the file is empty")
        found = first.members.get("format")
        if found != expected_format:
            raise self.fail(f"expected a {expected_format!r} document, found {found!r}")
        found_version = first.get("version", int)
        if found_version != version:
            newer = "a newer ppml" if found_version > version else "an older ppml"
            raise UnsupportedVersionError(
                path,
                f"{expected_format} version {found_version} is not supported: this ppml reads "
                f"version {version} (the file was written by {newer}; "
                + (
                    "re-encrypt the rows with this one)"
                    if expected_format == QUERY_FORMAT
                    else "send the query again to a server running this version)"
                ),
            )
        self.header = first

    def fail(self, problem: str) -> FileFormatError:
        """The error to raise for a problem in this file."""
        return FileFormatError(self.path, problem)

    def _read_exact(self, size: int, what: str) -> bytes:
        data = self._handle.read(size)
        if len(data) != size:
            raise self.fail(f"the file ends inside its {what} (truncated)")
        return data

    def _document(self, raw: bytes, where: str) -> DocumentReader:
        members = load_json(
            raw,
            path=self.path,
            max_bytes=MAX_LINE_BYTES,
            error=lambda path, problem: FileFormatError(path, f"{where}: {problem}"),
        )
        if not isinstance(members, dict):
            raise self.fail(f"{where} is not a JSON object")
        return DocumentReader(members, self.path)

    def _next_line(self) -> DocumentReader | None:
        raw = self._handle.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return None
        self._line += 1
        if len(raw) > MAX_LINE_BYTES:
            raise self.fail(f"line {self._line} is longer than {MAX_LINE_BYTES} bytes")
        return self._document(raw, f"line {self._line}")

    def _next_binary_block(self, index: int, width: int, per_block: int | None) -> DocumentReader:
        """A binary block as the members of its JSON Lines twin (ciphertexts as bytes)."""
        rows, count = _BLOCK.unpack(self._read_exact(_BLOCK.size, "blocks"))
        if rows == 0:
            if count != 0:
                raise self.fail("the end marker after the blocks holds ciphertexts")
            blocks, total = _TRAILER.unpack(self._read_exact(_TRAILER.size, "trailer"))
            return DocumentReader({"end": True, "blocks": blocks, "rows": total}, self.path)
        if per_block is not None and count != per_block:
            raise self.fail(f"block {index} holds {count} ciphertexts, not {per_block}")
        if count * width > MAX_LINE_BYTES:
            raise self.fail(f"block {index} is longer than {MAX_LINE_BYTES} bytes")
        data = self._read_exact(count * width, f"block {index}")
        texts = [data[i : i + width] for i in range(0, len(data), width)]
        members = {"block": index, "rows": rows, "ciphertexts": texts}
        return DocumentReader(members, self.path)

    def _next_record(self, index: int, width: int, per_block: int | None) -> DocumentReader | None:
        if self.binary:
            return self._next_binary_block(index, width, per_block)
        return self._next_line()

    def _at_end(self) -> bool:
        return not self._handle.read(1) if self.binary else self._next_line() is None

    def blocks(
        self, expected_rows: int, slots: int, width: int, per_block: int | None = None
    ) -> Iterator[tuple[int, DocumentReader]]:
        """Yield ``(rows, block)`` in order, then check the trailer against the header.

        ``width`` is the byte length of a ciphertext (the binary container's unit);
        ``per_block``, the ciphertexts a block must hold, is checked in the binary
        container before they are read (callers check JSON Lines blocks).
        """
        index = seen_rows = 0
        try:
            while True:
                block = self._next_record(index, width, per_block)
                if block is None:
                    raise self.fail("the file ends before its trailer (truncated)")
                if block.members.get("end") is True:
                    if block.get("blocks", int) != index or block.get("rows", int) != seen_rows:
                        raise self.fail("the trailer does not match the blocks (damaged file)")
                    if seen_rows != expected_rows:
                        raise self.fail(f"declares {expected_rows} rows but holds {seen_rows}")
                    if not self._at_end():
                        raise self.fail("data after the trailer")
                    return
                if block.get("block", int) != index:
                    raise self.fail(f"block {index} is missing or out of order")
                rows = block.get("rows", int)
                if not 1 <= rows <= slots or seen_rows + rows > expected_rows:
                    raise self.fail(f"block {index} declares an impossible number of rows")
                yield rows, block
                index += 1
                seen_rows += rows
        finally:
            self.close()

    def close(self) -> None:
        """Release the file."""
        self._handle.close()


def _layout(document: DocumentReader, key_bits: int) -> PackingLayout:
    members = document.reader("layout")
    try:
        layout = PackingLayout(members.get("slots", int), members.get("slot_bits", int))
    except ValueError as error:
        raise document.fail(f"layout: {error}") from None
    if not layout.fits(key_bits):
        raise document.fail(
            f"layout of {layout.slots} x {layout.slot_bits} bits does not fit a {key_bits}-bit key"
        )
    return layout


def _query_header(reader: BlockFileReader, policy: KeyPolicy) -> QueryHeader:
    document = reader.header
    key_members = document.get("public_key", dict)
    if key_members.get("format") != PUBLIC_KEY_FORMAT:
        raise document.fail("field 'public_key' is not a ppml public key")
    try:
        public_key = parse_public_key(dump_document(key_members), None, policy=policy)
    except FileFormatError as error:
        raise document.fail(f"public_key: {error.problem}") from None
    frac_bits = document.get("frac_bits", int)
    features = document.get("features", int)
    rows = document.get("rows", int)
    if not 0 <= frac_bits <= 256 or features < 1 or rows < 1:
        raise document.fail("frac_bits, features or rows out of range")
    return QueryHeader(
        public_key,
        document.get("spec_id", str),
        frac_bits,
        features,
        rows,
        _layout(document, public_key.bits),
        _hex_id(document, "query_id", QUERY_ID_HEX_DIGITS),
    )


def _hex_id(document: DocumentReader, name: str, digits: int) -> str:
    text: str = document.get(name, str)
    if len(text) != digits or any(c not in "0123456789abcdef" for c in text):
        raise document.fail(f"field {name!r} must be {digits} lowercase hex digits")
    return text


def open_query(
    path: str | Path, *, policy: KeyPolicy = SERVER_KEY_POLICY
) -> tuple[QueryHeader, Iterator[tuple[int, list[Ciphertext]]]]:
    """Open a query file: its header, and an iterator over ``(rows, ciphertexts)`` blocks.

    The query's key must satisfy ``policy``: by default the server's, which
    requires a valid modulus proof (checked once per key id).

    Every ciphertext is validated as it is read, and every block must hold
    exactly the rows the header implies (full blocks, then the remainder).
    """
    reader = BlockFileReader(path, QUERY_FORMAT, QUERY_VERSION)
    try:
        header = _query_header(reader, policy)
    except BaseException:
        reader.close()
        raise
    width = ciphertext_width(header.public_key)

    def blocks() -> Iterator[tuple[int, list[Ciphertext]]]:
        first_row = 1
        blocks = reader.blocks(header.rows, header.layout.slots, width, header.features)
        for index, (count, block) in enumerate(blocks):
            if count != header.block_rows(index):
                raise block.fail(
                    f"block {index} declares {count} rows; a query of {header.rows} rows in "
                    f"blocks of {header.layout.slots} has {header.block_rows(index)} there"
                )
            texts = block.get("ciphertexts", list)
            if len(texts) != header.features:
                raise block.fail(f"block {index} must hold {header.features} ciphertexts")
            where = f"rows {first_row}-{first_row + count - 1}" if count > 1 else f"row {first_row}"
            yield (
                count,
                decode_ciphertexts(
                    header.public_key,
                    texts,
                    width,
                    block,
                    partial(_feature_position, where),
                ),
            )
            first_row += count

    return header, blocks()


@dataclass(frozen=True)
class QueryRecord:
    """The customer's own record of a query it sent: its header and the SHA-256 of its bytes.

    Decryption takes everything it relies on from here and from the feature
    spec, never from the result, whose header must agree.
    """

    header: QueryHeader
    sha256: str
    path: str | None = None


def read_query_header(path: str | Path, *, policy: KeyPolicy = DEFAULT_KEY_POLICY) -> QueryHeader:
    """The header of a query file, read and checked (its blocks are not read)."""
    reader = BlockFileReader(path, QUERY_FORMAT, QUERY_VERSION)
    try:
        return _query_header(reader, policy)
    finally:
        reader.close()


def read_query_record(path: str | Path, *, policy: KeyPolicy = DEFAULT_KEY_POLICY) -> QueryRecord:
    """The record of a query file the customer wrote (its header is read, its bytes hashed)."""
    return QueryRecord(read_query_header(path, policy=policy), file_sha256(path), str(path))


def open_result(
    path: str | Path, record: QueryRecord
) -> tuple[ResultHeader, Iterator[tuple[int, list[Ciphertext]]]]:
    """Open the result of the query in ``record``; a result of any other query is refused at once.

    The result must name the record's query id and query hash, its key, spec,
    rows and layout; its blocks must hold the rows the query's blocks held.
    """
    query = record.header
    public_key = query.public_key
    reader = BlockFileReader(path, RESULT_FORMAT, RESULT_VERSION)
    try:
        header = _result_header(reader, path, record)
    except BaseException:
        reader.close()
        raise
    width = ciphertext_width(public_key)

    def blocks() -> Iterator[tuple[int, list[Ciphertext]]]:
        blocks = reader.blocks(header.rows, header.layout.slots, width, header.scores)
        for index, (count, block) in enumerate(blocks):
            if count != query.block_rows(index):
                raise block.fail(
                    f"block {index} answers {count} rows, but block {index} of the query "
                    f"held {query.block_rows(index)}"
                )
            texts = block.get("ciphertexts", list)
            if len(texts) != header.scores:
                raise block.fail(f"block {index + 1} must hold {header.scores} ciphertexts")
            yield (
                count,
                decode_ciphertexts(
                    public_key,
                    texts,
                    width,
                    block,
                    partial(_score_position, index + 1),
                ),
            )

    return header, blocks()


def _result_header(reader: BlockFileReader, path: str | Path, record: QueryRecord) -> ResultHeader:
    document = reader.header
    query = record.header
    query_name = record.path or "the query"
    query_id = _hex_id(document, "query_id", QUERY_ID_HEX_DIGITS)
    query_sha256 = _hex_id(document, "query_sha256", 64)
    if query_id != query.query_id:
        raise SpecMismatchError(
            f"{path}: this result answers query {query_id}, not {query_name} "
            f"(query {query.query_id})"
        )
    if query_sha256 != record.sha256:
        raise SpecMismatchError(
            f"{path}: this result answers a query whose bytes differ from {query_name} "
            "(SHA-256 mismatch)"
        )
    key_id = document.get("key_id", str)
    if key_id != query.public_key.key_id:
        raise SpecMismatchError(
            f"{path}: the result was made for key {key_id}, "
            f"not for the query's key ({query.public_key.key_id})"
        )
    frac_bits, bound_bits = document.get("frac_bits", int), document.get("bound_bits", int)
    scores = document.get("scores", int)
    if not 1 <= scores <= MAX_SCORES:
        raise document.fail(f"scores must be from 1 to {MAX_SCORES}")
    layout = _layout(document, query.public_key.bits)
    if not 0 <= frac_bits <= 1024 or not 0 < bound_bits < layout.slot_bits:
        raise document.fail("frac_bits or bound_bits out of range")
    rows = document.get("rows", int)
    spec_id = document.get("spec_id", str)
    if (rows, layout, spec_id) != (query.rows, query.layout, query.spec_id):
        raise SpecMismatchError(
            f"{path}: the result's rows, layout or spec disagree with {query_name}"
        )
    return ResultHeader(
        query_id,
        query_sha256,
        key_id,
        spec_id,
        frac_bits,
        bound_bits,
        scores,
        rows,
        layout,
    )


def check_same_spec(expected: str, found: str, what: str, path: str | Path | None = None) -> None:
    """Refuse a document made for another feature spec."""
    if expected != found:
        where = f"{path}: " if path is not None else ""
        raise SpecMismatchError(
            f"{where}{what} was made for feature spec {found}, but this model uses spec {expected}"
        )

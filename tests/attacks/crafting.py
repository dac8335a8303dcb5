"""What a cheating customer does: write a well-formed query around plaintexts of its choice."""

from __future__ import annotations

from pathlib import Path

from ppml.crypto import PrivateKey
from ppml.encoding.masking import result_mask
from ppml.encoding.packing import PackingLayout
from ppml.features import FeatureSpec
from ppml.roles.customer import query_layout
from ppml.wire.messages import (
    BlockFileWriter,
    QueryHeader,
    ResultHeader,
    ciphertext_width,
    encode_ciphertext_value,
    read_query_record,
)


def craft_query(
    private_key: PrivateKey,
    spec: FeatureSpec,
    plaintexts: list[int],
    path: Path,
    *,
    declared_rows: int = 1,
    layout: PackingLayout | None = None,
) -> QueryHeader:
    """A one-block query whose feature j encrypts ``plaintexts[j]`` (any value mod n).

    The header and framing are exactly what an honest customer writes (unless
    ``layout`` replaces the spec's), so nothing but the plaintexts distinguishes it.
    """
    public_key = private_key.public_key
    header = QueryHeader(
        public_key,
        spec.spec_id,
        spec.frac_bits,
        len(spec.feature_names),
        declared_rows,
        layout or query_layout(spec, public_key.bits),
    )
    width = ciphertext_width(public_key)
    texts = [
        encode_ciphertext_value(private_key.raw_encrypt(m % public_key.n).value, width)
        for m in plaintexts
    ]
    with BlockFileWriter(path, header.to_document()) as writer:
        writer.write_block(declared_rows, texts)
    return header


def windows(value: int, offset: int, width: int, count: int) -> list[int]:
    """Signed ``width``-bit digits of ``value`` starting at bit ``offset`` (centred, low first)."""
    digits = []
    remaining = value >> offset
    half, modulus = 1 << (width - 1), 1 << width
    for _ in range(count):
        digit = remaining & (modulus - 1)
        if digit >= half:
            digit -= modulus
        digits.append(digit)
        remaining = (remaining - digit) >> width
    return digits


def craft_result(
    query: Path, spec: FeatureSpec, scores: list[list[int]], path: Path, *, bound_bits: int = 0
) -> None:
    """A result to ``query`` whose row r decrypts to the encoded ``scores[r]``, whatever a model
    would give: what a cheating server writes, header and framing as an honest one's."""
    record = read_query_record(query)
    header = record.header
    public_key, layout = header.public_key, header.layout
    k = len(scores[0])
    result = ResultHeader(
        header.query_id,
        record.sha256,
        public_key.key_id,
        spec.spec_id,
        spec.prediction_fixed_point.frac_bits,
        bound_bits or layout.slot_bits - 1,
        k,
        header.rows,
        layout,
    )
    width = ciphertext_width(public_key)
    with BlockFileWriter(path, result.to_document()) as writer:
        for index in range(header.blocks):
            rows = header.block_rows(index)
            chosen = scores[index * layout.slots : index * layout.slots + rows]
            texts = []
            for j in range(k):
                packed = layout.pack([row[j] for row in chosen])
                masked = (packed + result_mask(layout, rows, public_key.n)) % public_key.n
                value = public_key.raw_encrypt(masked).value  # any valid ciphertext will do
                texts.append(encode_ciphertext_value(value, width))
            writer.write_block(rows, texts)

"""The binary container: the same queries and results as JSON Lines, a quarter smaller, read
with the same checks (docs/wire-format.md, "Containers")."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ppml.cli.main import main
from ppml.crypto import KeyPolicy, PrivateKey, PublicKey
from ppml.datasets import iris_csv
from ppml.errors import FileFormatError
from ppml.model.training import TrainingResult, train
from ppml.roles import customer, server
from ppml.wire.messages import BINARY_MAGIC, MAX_LINE_BYTES, BlockFileReader, BlockFileWriter

VECTORS = Path(__file__).parent / "vectors"
POLICY = KeyPolicy(min_bits=512, require_proof=True)


@pytest.fixture(scope="module")
def iris() -> TrainingResult:
    return train(iris_csv(), "species", folds=3)


def _vector() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((VECTORS / "containers.json").read_text())
    return document


@pytest.mark.parametrize("binary", [False, True])
def test_the_writer_gives_the_known_bytes(tmp_path: Path, binary: bool) -> None:
    vector = _vector()
    path = tmp_path / "file"
    with BlockFileWriter(path, vector["header"], binary=binary) as writer:
        for block in vector["blocks"]:
            writer.write_block(block["rows"], [bytes.fromhex(c) for c in block["ciphertexts"]])
    expected = bytes.fromhex(vector["binary"]) if binary else vector["jsonl"].encode()
    assert path.read_bytes() == expected


@pytest.mark.parametrize("binary", [False, True])
def test_the_reader_reads_the_known_bytes(tmp_path: Path, binary: bool) -> None:
    vector = _vector()
    path = tmp_path / "file"
    path.write_bytes(bytes.fromhex(vector["binary"]) if binary else vector["jsonl"].encode())
    reader = BlockFileReader(path, "ppml.query", 3)
    assert reader.binary is binary and reader.header.members == vector["header"]
    blocks = list(reader.blocks(3, 2, vector["width"]))
    assert [rows for rows, _ in blocks] == [b["rows"] for b in vector["blocks"]]
    for (_, block), expected in zip(blocks, vector["blocks"], strict=True):
        texts = block.get("ciphertexts", list)
        raw = [t if isinstance(t, bytes) else base64.b64decode(t) for t in texts]
        assert [r.hex() for r in raw] == expected["ciphertexts"]


def _damaged(vector: dict[str, Any], cut: int | None = None, extra: bytes = b"") -> bytes:
    data = bytes.fromhex(vector["binary"])
    return (data if cut is None else data[:cut]) + extra


@pytest.mark.parametrize(
    ("name", "change", "problem"),
    [
        ("truncated in the magic", lambda d: d[:5], "empty|JSON|truncated"),
        ("truncated in the length", lambda d: d[:10], "truncated"),
        ("truncated in the header", lambda d: d[:40], "truncated"),
        ("truncated in a block", lambda d: d[:-30], "truncated"),
        ("truncated in the trailer", lambda d: d[:-3], "truncated"),
        ("no trailer", lambda d: d[:-14], "truncated"),
        ("data after the trailer", lambda d: d + b"\x00", "data after the trailer"),
        ("a trailer that lies", lambda d: d[:-1] + b"\x04", "trailer does not match"),
        ("an end marker with ciphertexts", lambda d: d[:-14] + b"\x00\x00\x00\x00\x00\x01", "end marker"),
        ("a header with a line break", lambda d: d[:8] + b"\x00\x00\x00\x03{\n}", "line break"),
        ("a block of more ciphertexts", lambda d: d[:85] + b"\xff\xff" + d[87:], "holds 65535"),
        ("a header longer than allowed", lambda d: d[:8] + (MAX_LINE_BYTES + 1).to_bytes(4, "big"), "longer"),
        ("a header that is not JSON", lambda d: d[:8] + b"\x00\x00\x00\x02{x", "JSON"),
    ],
)  # fmt: skip
def test_a_damaged_binary_file_is_refused(
    tmp_path: Path, name: str, change: Any, problem: str
) -> None:
    path = tmp_path / "file"
    path.write_bytes(change(_damaged(_vector())))
    with pytest.raises(FileFormatError, match=problem):
        reader = BlockFileReader(path, "ppml.query", 3)
        list(reader.blocks(3, 2, 8, 3))


def _flow(
    keypair: tuple[PublicKey, PrivateKey], iris: TrainingResult, folder: Path, binary: bool
) -> tuple[bytes, bytes, bytes]:
    _, private_key = keypair
    spec, model = iris.spec, iris.model
    folder.mkdir()
    query, result, out = folder / "q", folder / "r", folder / "p.csv"
    customer.encrypt_file(private_key, spec, iris_csv(), query, jobs=1, binary=binary)
    server.predict_file(spec, model, query, result, jobs=1, policy=POLICY)
    customer.decrypt_file(private_key, result, out, query=query, spec=spec, jobs=1)
    return query.read_bytes(), result.read_bytes(), out.read_bytes()


def test_both_containers_give_the_same_predictions(
    keypair: tuple[PublicKey, PrivateKey], iris: TrainingResult, tmp_path: Path
) -> None:
    text_query, text_result, text_out = _flow(keypair, iris, tmp_path / "jsonl", False)
    query, result, out = _flow(keypair, iris, tmp_path / "binary", True)
    assert query.startswith(BINARY_MAGIC) and result.startswith(BINARY_MAGIC)  # answered in kind
    assert text_query.startswith(b"{") and text_result.startswith(b"{")
    assert out == text_out
    # Ciphertexts are the bulk of a query: raw bytes instead of base64 save a quarter of them.
    assert 0.70 < len(query) / len(text_query) < 0.80


def test_a_binary_ciphertext_is_validated_with_its_position(
    keypair: tuple[PublicKey, PrivateKey], iris: TrainingResult, tmp_path: Path
) -> None:
    public_key, _ = keypair
    query, _, _ = _flow(keypair, iris, tmp_path / "honest", True)
    length = int.from_bytes(query[8:12], "big")
    width = (public_key.nsquare.bit_length() + 7) // 8
    second = 12 + length + 6 + width  # the first block's second ciphertext
    forged = query[:second] + bytes(width) + query[second + width :]  # 0 is no ciphertext
    (tmp_path / "forged").write_bytes(forged)
    with pytest.raises(FileFormatError, match=r"rows 1-\d+, feature 2: "):
        server.predict_file(
            iris.spec, iris.model, tmp_path / "forged", tmp_path / "r", policy=POLICY
        )
    assert not (tmp_path / "r").exists()
    rows = np.loadtxt(tmp_path / "honest" / "p.csv", delimiter=",", skiprows=1, usecols=1)
    assert rows.shape == (150,)


def test_the_command_line_writes_and_reads_binary(tmp_path: Path) -> None:
    assert (
        main(
            [
                "train",
                "--data",
                str(iris_csv()),
                "--target",
                "species",
                "--out",
                str(tmp_path / "m"),
            ]
        )
        == 0
    )
    assert main(["keygen", "--out", str(tmp_path / "k"), "--bits", "2048"]) == 0
    assert main(["encrypt", "--public-key", str(tmp_path / "k" / "public_key.json"), "--binary",
                 "--features", str(tmp_path / "m" / "features.json"), "--input", str(iris_csv()),
                 "--out", str(tmp_path / "q.bin")]) == 0  # fmt: skip
    assert (tmp_path / "q.bin").read_bytes().startswith(BINARY_MAGIC)
    assert main(["predict", "--model", str(tmp_path / "m"), "--input", str(tmp_path / "q.bin"),
                 "--out", str(tmp_path / "r.bin")]) == 0  # fmt: skip
    assert (tmp_path / "r.bin").read_bytes().startswith(BINARY_MAGIC)
    assert main(["decrypt", "--private-key", str(tmp_path / "k" / "private_key.json"),
                 "--query", str(tmp_path / "q.bin"), "--features", str(tmp_path / "m" / "features.json"),
                 "--input", str(tmp_path / "r.bin"), "--out", str(tmp_path / "p.csv")]) == 0  # fmt: skip
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 151

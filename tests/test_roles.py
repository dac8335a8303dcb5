"""The customer and server stages through the Python API, each role with only its own files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ppml.crypto import generate_keypair
from ppml.datasets import laptops_csv
from ppml.errors import FileFormatError, InvalidCiphertextError, SpecMismatchError
from ppml.features import FeatureSpec
from ppml.model import LinearModel
from ppml.model.training import train
from ppml.roles import customer, server
from ppml.wire.keyfile import load_private_key, load_public_key, save_keypair
from ppml.wire.messages import EncryptedQuery, EncryptedResult

TEST_KEY_BITS = 512  # tests only: keeps 1303 x 54 encryptions to seconds


@pytest.fixture(scope="module")
def parties(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A server folder (spec + model) and a customer folder (keys + spec + rows)."""
    server_dir = tmp_path_factory.mktemp("server")
    customer_dir = tmp_path_factory.mktemp("customer")
    result = train(laptops_csv(), "Price")
    result.spec.save(server_dir / "features.json")
    result.model.save(server_dir / "model.json")
    shutil.copy(server_dir / "features.json", customer_dir / "features.json")
    shutil.copy(laptops_csv(), customer_dir / "laptops.csv")
    _, private_key = generate_keypair(TEST_KEY_BITS, insecure_test_key=True)
    save_keypair(customer_dir / "keys", private_key)
    return server_dir, customer_dir


def customer_encrypts(customer_dir: Path, rows: Path | None = None) -> bytes:
    public_key = load_public_key(customer_dir / "keys" / "public_key.json", min_bits=TEST_KEY_BITS)
    spec = FeatureSpec.load(customer_dir / "features.json")
    query = customer.encrypt_table(public_key, spec, rows or customer_dir / "laptops.csv")
    query.save(customer_dir / "query.json")
    return (customer_dir / "query.json").read_bytes()


def server_predicts(server_dir: Path, query_bytes: bytes) -> bytes:
    spec = FeatureSpec.load(server_dir / "features.json")
    model = LinearModel.load(server_dir / "model.json")
    query = EncryptedQuery.parse(query_bytes, "query.json", min_bits=TEST_KEY_BITS)
    server.predict_encrypted(spec, model, query).save(server_dir / "result.json")
    return (server_dir / "result.json").read_bytes()


def customer_decrypts(customer_dir: Path, result_bytes: bytes) -> np.ndarray:
    private_key = load_private_key(
        customer_dir / "keys" / "private_key.json", min_bits=TEST_KEY_BITS
    )
    result = EncryptedResult.parse(result_bytes, private_key.public_key, "result.json")
    return customer.decrypt_predictions(private_key, result)


def plaintext_prices(server_dir: Path, rows: Path) -> np.ndarray:
    spec = FeatureSpec.load(server_dir / "features.json")
    model = LinearModel.load(server_dir / "model.json")
    return spec.target.inverse(model.predict(customer.read_inputs(spec, rows)))


def test_all_laptops_round_trip(parties: tuple[Path, Path]) -> None:
    server_dir, customer_dir = parties
    prices = customer_decrypts(
        customer_dir, server_predicts(server_dir, customer_encrypts(customer_dir))
    )
    expected = plaintext_prices(server_dir, laptops_csv())
    assert prices.shape == (1303,)
    assert np.max(np.abs(prices - expected) / expected) < 1e-9
    # Neither role needed the other's secrets.
    assert not (server_dir / "keys").exists() and not (customer_dir / "model.json").exists()


def test_query_reveals_only_ciphertexts(parties: tuple[Path, Path], tmp_path: Path) -> None:
    _, customer_dir = parties
    text = customer_encrypts(customer_dir, _first_rows(tmp_path, 5)).decode()
    assert "Apple" not in text and "Ultrabook" not in text
    assert '"p"' not in text and '"q"' not in text


def test_result_is_rerandomised(parties: tuple[Path, Path], tmp_path: Path) -> None:
    server_dir, customer_dir = parties
    one = tmp_path / "one.csv"
    one.write_text("".join(laptops_csv().read_text().splitlines(keepends=True)[:2]))
    query = customer_encrypts(customer_dir, one)
    first, second = server_predicts(server_dir, query), server_predicts(server_dir, query)
    assert first != second
    assert customer_decrypts(customer_dir, first) == customer_decrypts(customer_dir, second)


def test_server_refuses_a_query_for_another_spec(
    parties: tuple[Path, Path], tmp_path: Path
) -> None:
    _, customer_dir = parties
    other = train(laptops_csv(), "Price", frac_bits=30)
    other.spec.save(tmp_path / "features.json")
    other.model.save(tmp_path / "model.json")
    query = customer_encrypts(customer_dir, _first_rows(tmp_path, 2))
    with pytest.raises(SpecMismatchError, match="feature spec"):
        server_predicts(tmp_path, query)


def test_customer_refuses_a_result_for_another_key(
    parties: tuple[Path, Path], tmp_path: Path
) -> None:
    server_dir, customer_dir = parties
    result = server_predicts(server_dir, customer_encrypts(customer_dir, _first_rows(tmp_path, 3)))
    _, stranger = generate_keypair(TEST_KEY_BITS, insecure_test_key=True)
    with pytest.raises(SpecMismatchError, match="made for key"):
        EncryptedResult.parse(result, stranger.public_key, "result.json")


def test_tampered_result_is_detected(parties: tuple[Path, Path], tmp_path: Path) -> None:
    server_dir, customer_dir = parties
    result_bytes = server_predicts(
        server_dir, customer_encrypts(customer_dir, _first_rows(tmp_path, 3))
    )
    private_key = load_private_key(
        customer_dir / "keys" / "private_key.json", min_bits=TEST_KEY_BITS
    )
    result = EncryptedResult.parse(result_bytes, private_key.public_key)
    forged = private_key.public_key.encrypt(12345) * (1 << 300)  # a valid but foreign ciphertext
    altered = EncryptedResult(
        **{**result.__dict__, "predictions": (forged, *result.predictions[1:])}
    )
    with pytest.raises(InvalidCiphertextError, match="prediction 1 decrypts outside"):
        customer.decrypt_predictions(private_key, altered)


def test_malformed_ciphertexts_are_refused(parties: tuple[Path, Path], tmp_path: Path) -> None:
    _, customer_dir = parties
    query = EncryptedQuery.parse(
        customer_encrypts(customer_dir, _first_rows(tmp_path, 2)), min_bits=TEST_KEY_BITS
    )
    document = query.to_document()
    width = (int(query.public_key.nsquare).bit_length() + 7) // 8
    import base64
    import json

    for bad, message in [
        (base64.b64encode(b"\xff" * width).decode(), "out of range"),
        (base64.b64encode(b"\x00" * width).decode(), "out of range"),
        (base64.b64encode(query.public_key.n.to_bytes(width, "big")).decode(), "shares a factor"),
        (base64.b64encode(b"\x01" * (width - 1)).decode(), "bytes"),
        ("not base64!", "base64"),
    ]:
        document["ciphertexts"][1][4] = bad
        with pytest.raises(FileFormatError, match=f"row 2, feature 5: .*{message}"):
            EncryptedQuery.parse(json.dumps(document).encode(), "q.json", min_bits=TEST_KEY_BITS)


def _first_rows(tmp_path: Path, count: int) -> Path:
    path = tmp_path / f"first{count}.csv"
    path.write_text("".join(laptops_csv().read_text().splitlines(keepends=True)[: count + 1]))
    return path

"""The customer and server stages through the Python API, each role with only its own files."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ppml.crypto import KeyPolicy, PrivateKey, PublicKey, generate_keypair
from ppml.crypto.randomness import PublicMasks
from ppml.datasets import laptops_csv
from ppml.errors import (
    FileFormatError,
    InvalidCiphertextError,
    PlaintextOverflowError,
    SpecMismatchError,
)
from ppml.features import FeatureSpec
from ppml.model import LinearModel
from ppml.model.training import train
from ppml.roles import customer, server
from ppml.wire.keyfile import load_private_key, load_public_key, save_keypair

TEST_KEY_BITS = 1024  # tests only
TEST_POLICY = KeyPolicy(min_bits=TEST_KEY_BITS, require_proof=True)


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


def customer_key(customer_dir: Path, private: bool) -> PublicKey | PrivateKey:
    if private:
        return load_private_key(customer_dir / "keys" / "private_key.json", policy=TEST_POLICY)
    return load_public_key(customer_dir / "keys" / "public_key.json", policy=TEST_POLICY)


def customer_encrypts(
    customer_dir: Path, rows: Path | None = None, *, private: bool = True, **options: object
) -> Path:
    spec = FeatureSpec.load(customer_dir / "features.json")
    out = customer_dir / "query.jsonl"
    customer.encrypt_file(
        customer_key(customer_dir, private),
        spec,
        rows or customer_dir / "laptops.csv",
        out,
        **options,  # type: ignore[arg-type]
    )
    return out


def server_predicts(server_dir: Path, query: Path, jobs: int = 1) -> Path:
    spec = FeatureSpec.load(server_dir / "features.json")
    model = LinearModel.load(server_dir / "model.json")
    shutil.copy(query, server_dir / "query.jsonl")  # only bytes cross between the roles
    out = server_dir / "result.jsonl"
    server.predict_file(spec, model, server_dir / "query.jsonl", out, jobs=jobs, policy=TEST_POLICY)
    return out


def decrypt_into(
    customer_dir: Path, private_key: PrivateKey, result: Path, out: Path, jobs: int = 1
) -> None:
    """Decrypt against the customer's own copy of its last query and its spec."""
    customer.decrypt_file(
        private_key,
        result,
        out,
        query=customer_dir / "query.jsonl",
        spec=FeatureSpec.load(customer_dir / "features.json"),
        jobs=jobs,
    )


def customer_decrypts(customer_dir: Path, result: Path, jobs: int = 1) -> np.ndarray:
    shutil.copy(result, customer_dir / "result.jsonl")
    private_key = customer_key(customer_dir, True)
    assert isinstance(private_key, PrivateKey)
    decrypt_into(
        customer_dir, private_key, customer_dir / "result.jsonl", customer_dir / "prices.csv", jobs
    )
    return np.loadtxt(customer_dir / "prices.csv", skiprows=1, ndmin=1)


def plaintext_prices(server_dir: Path, rows: Path) -> np.ndarray:
    spec = FeatureSpec.load(server_dir / "features.json")
    model = LinearModel.load(server_dir / "model.json")
    return spec.output.inverse_link(model.decision_function(customer.read_inputs(spec, rows)))[:, 0]


def first_rows(tmp_path: Path, count: int) -> Path:
    path = tmp_path / f"first{count}.csv"
    path.write_text("".join(laptops_csv().read_text().splitlines(keepends=True)[: count + 1]))
    return path


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


@pytest.mark.parametrize(
    ("private", "options", "jobs"),
    [
        (False, {"pack": True}, 1),
        (True, {"pack": False}, 2),
        (True, {"standard_randomness": True, "jobs": 2}, 1),
        (False, {"standard_randomness": True, "pack": False}, 2),
    ],
)
def test_every_mode_gives_the_same_prices(
    parties: tuple[Path, Path], tmp_path: Path, private: bool, options: dict[str, object], jobs: int
) -> None:
    server_dir, customer_dir = parties
    rows = first_rows(tmp_path, 45)
    query = customer_encrypts(customer_dir, rows, private=private, **options)
    prices = customer_decrypts(customer_dir, server_predicts(server_dir, query, jobs), jobs)
    expected = plaintext_prices(server_dir, rows)
    assert np.max(np.abs(prices - expected) / expected) < 1e-9


def test_packing_layout(parties: tuple[Path, Path], tmp_path: Path) -> None:
    _, customer_dir = parties
    spec = FeatureSpec.load(customer_dir / "features.json")
    lines = customer_encrypts(customer_dir, first_rows(tmp_path, 12)).read_text().splitlines()
    header = json.loads(lines[0])
    slots = header["layout"]["slots"]
    assert header["layout"]["slot_bits"] == spec.slot_bits
    assert slots == (TEST_KEY_BITS - 2) // spec.slot_bits and slots < 12
    blocks = [json.loads(line) for line in lines[1:-1]]
    assert [b["rows"] for b in blocks] == [slots, 12 - slots]  # a short last block
    assert json.loads(lines[-1]) == {"end": True, "blocks": 2, "rows": 12}
    assert all(len(b["ciphertexts"]) == len(spec.feature_names) for b in blocks)


def test_results_are_identical_whatever_the_number_of_jobs(
    parties: tuple[Path, Path], tmp_path: Path
) -> None:
    server_dir, customer_dir = parties
    query = customer_encrypts(customer_dir, first_rows(tmp_path, 200), jobs=2)
    one = customer_decrypts(customer_dir, server_predicts(server_dir, query, 1), 1)
    two = customer_decrypts(customer_dir, server_predicts(server_dir, query, 2), 2)
    np.testing.assert_array_equal(one, two)


def test_query_reveals_only_ciphertexts(parties: tuple[Path, Path], tmp_path: Path) -> None:
    _, customer_dir = parties
    text = customer_encrypts(customer_dir, first_rows(tmp_path, 5)).read_text()
    assert "Apple" not in text and "Ultrabook" not in text
    assert '"p"' not in text and '"q"' not in text


def _structure(path: Path) -> list[object]:
    """A query with every ciphertext (and the query id) replaced by its length."""

    def mask(value: object) -> object:
        if isinstance(value, list):
            return [mask(v) for v in value]
        if isinstance(value, dict):
            return {k: mask(v) for k, v in value.items()}
        return value

    lines = [json.loads(line) for line in path.read_text().splitlines()]
    lines[0]["query_id"] = len(lines[0]["query_id"])  # fresh for every query, by design
    for line in lines[1:-1]:
        line["ciphertexts"] = [len(c) for c in line["ciphertexts"]]
    return [mask(line) for line in lines]


def test_one_hot_choices_leave_no_trace_in_the_structure(
    parties: tuple[Path, Path], tmp_path: Path
) -> None:
    _, customer_dir = parties
    rows = first_rows(tmp_path, 3).read_text()
    apple = tmp_path / "apple.csv"
    apple.write_text(rows)
    other = tmp_path / "other.csv"
    # Same laptops with another manufacturer and operating system: other one-hot bits set.
    other.write_text(rows.replace("Apple", "Dell").replace("macOS", "Linux"))
    first = _structure(customer_encrypts(customer_dir, apple))
    second = _structure(customer_encrypts(customer_dir, other))
    assert first == second


def test_result_is_rerandomised(parties: tuple[Path, Path], tmp_path: Path) -> None:
    server_dir, customer_dir = parties
    query = customer_encrypts(customer_dir, first_rows(tmp_path, 1))
    first = server_predicts(server_dir, query).read_text()
    second = server_predicts(server_dir, query).read_text()
    assert first != second


def test_server_refuses_a_query_for_another_spec(
    parties: tuple[Path, Path], tmp_path: Path
) -> None:
    _, customer_dir = parties
    other = train(laptops_csv(), "Price", frac_bits=30)
    other.spec.save(tmp_path / "features.json")
    other.model.save(tmp_path / "model.json")
    query = customer_encrypts(customer_dir, first_rows(tmp_path, 2))
    with pytest.raises(SpecMismatchError, match="feature spec"):
        server_predicts(tmp_path, query)
    assert not (tmp_path / "result.jsonl").exists()


def test_a_model_that_outgrows_the_layout_is_refused(
    parties: tuple[Path, Path], tmp_path: Path
) -> None:
    server_dir, customer_dir = parties
    query = customer_encrypts(customer_dir, first_rows(tmp_path, 2))
    model = LinearModel.load(server_dir / "model.json")
    heavy = LinearModel.from_arrays(
        model.spec_id,
        model.feature_names,
        np.asarray(model.weights) * 1e6,
        model.intercepts,
        model.estimator,
    )
    heavy.save(tmp_path / "model.json")
    shutil.copy(server_dir / "features.json", tmp_path / "features.json")
    with pytest.raises(PlaintextOverflowError, match=r"need .*-bit slots"):
        server_predicts(tmp_path, query)
    assert not (tmp_path / "result.jsonl").exists()


def test_customer_refuses_a_result_for_another_key(
    parties: tuple[Path, Path], tmp_path: Path
) -> None:
    server_dir, customer_dir = parties
    result = server_predicts(server_dir, customer_encrypts(customer_dir, first_rows(tmp_path, 3)))
    _, stranger = generate_keypair(TEST_KEY_BITS, insecure_test_key=True)
    with pytest.raises(SpecMismatchError, match="not under this private key"):
        decrypt_into(customer_dir, stranger, result, tmp_path / "prices.csv")
    assert not (tmp_path / "prices.csv").exists()


def test_customer_refuses_the_result_of_another_query(
    parties: tuple[Path, Path], tmp_path: Path
) -> None:
    server_dir, customer_dir = parties
    rows = first_rows(tmp_path, 3)
    earlier = tmp_path / "earlier-result.jsonl"
    shutil.copy(server_predicts(server_dir, customer_encrypts(customer_dir, rows)), earlier)
    # The same rows again: a new query id, so the earlier answer does not belong to it.
    customer_encrypts(customer_dir, rows)
    with pytest.raises(SpecMismatchError, match="this result answers query"):
        customer_decrypts(customer_dir, earlier)


@pytest.mark.parametrize(
    ("member", "value", "message"),
    [
        ("frac_bits", 80, "scale or scores disagree"),
        ("bound_bits", 4000, "out of range"),
        ("scores", 3, "scale or scores disagree"),
        ("layout", {"slots": 1, "slot_bits": 94}, "disagree with"),
        ("rows", 2, "disagree with"),
        ("query_sha256", "0" * 64, "SHA-256 mismatch"),
        ("spec_id", "0" * 32, "disagree with"),
    ],
)
def test_an_altered_result_header_is_refused(
    parties: tuple[Path, Path], tmp_path: Path, member: str, value: object, message: str
) -> None:
    """Decryption trusts the customer's query and spec, never the header it is sent."""
    server_dir, customer_dir = parties
    result = server_predicts(server_dir, customer_encrypts(customer_dir, first_rows(tmp_path, 3)))
    lines = result.read_text().splitlines()
    header = json.loads(lines[0])
    header[member] = value
    altered = tmp_path / "altered.jsonl"
    altered.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    private_key = customer_key(customer_dir, True)
    assert isinstance(private_key, PrivateKey)
    with pytest.raises((SpecMismatchError, FileFormatError), match=message):
        decrypt_into(customer_dir, private_key, altered, tmp_path / "prices.csv")
    assert not (tmp_path / "prices.csv").exists()


def test_tampered_result_is_detected(parties: tuple[Path, Path], tmp_path: Path) -> None:
    server_dir, customer_dir = parties
    result = server_predicts(server_dir, customer_encrypts(customer_dir, first_rows(tmp_path, 3)))
    private_key = customer_key(customer_dir, True)
    assert isinstance(private_key, PrivateKey)
    lines = result.read_text().splitlines()
    block = json.loads(lines[1])
    width = len(base64.b64decode(block["ciphertexts"][0]))
    forged = private_key.encrypt(12345) * (1 << 500)  # valid, but not a genuine prediction
    block["ciphertexts"] = [base64.b64encode(forged.value.to_bytes(width, "big")).decode()]
    lines[1] = json.dumps(block)
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("\n".join(lines) + "\n")
    with pytest.raises(InvalidCiphertextError, match="block 1 decrypts outside"):
        decrypt_into(customer_dir, private_key, tampered, tmp_path / "prices.csv")
    assert not (tmp_path / "prices.csv").exists()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda lines: lines[:-1], "truncated"),
        (lambda lines: lines[:1] + lines[2:], "block 0 is missing"),
        (lambda lines: [lines[0].replace('"version":3', '"version":9'), *lines[1:]], "version 9"),
        (lambda lines: [*lines, '{"more": 1}'], "after the trailer"),
        (lambda lines: [lines[0][:50]], "not valid JSON"),
    ],
)
def test_damaged_query_files(
    parties: tuple[Path, Path], tmp_path: Path, edit: object, message: str
) -> None:
    server_dir, customer_dir = parties
    lines = customer_encrypts(customer_dir, first_rows(tmp_path, 25)).read_text().splitlines()
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_text("\n".join(edit(lines)) + "\n")  # type: ignore[operator]
    with pytest.raises(FileFormatError, match=message):
        server_predicts(server_dir, damaged)


def test_answers_hide_the_weights_even_from_a_customer_with_a_forged_djn_base(
    parties: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With h_s = -1 (an n-th residue), DJN masks would be +-1 and leak the weights.

    A key can no longer carry such a base (it is derived from n), but the
    customer still picks its own randomness: here, the masks that base gives.
    """
    server_dir, customer_dir = parties
    private_key = customer_key(customer_dir, True)
    assert isinstance(private_key, PrivateKey)
    n = private_key.public_key.n
    forged = PublicMasks(n, n * n - 1)
    monkeypatch.setattr(customer, "_masks_for", lambda key, standard_randomness: forged)
    query = tmp_path / "forged.jsonl"
    spec = FeatureSpec.load(customer_dir / "features.json")
    customer.encrypt_file(private_key.public_key, spec, first_rows(tmp_path, 1), query, jobs=1)
    result = server_predicts(server_dir, query)
    block = json.loads(result.read_text().splitlines()[1])
    answer = int.from_bytes(base64.b64decode(block["ciphertexts"][0]), "big")
    # The answer's randomness is a fresh uniform n-th residue, not +-(product of known masks).
    plaintext = private_key.raw_decrypt(private_key.public_key.ciphertext(answer))
    randomness = answer * pow(1 + plaintext * n, -1, n * n) % (n * n)
    assert randomness not in (1, n * n - 1)


def test_server_refuses_a_query_under_a_key_without_a_modulus_proof(
    parties: tuple[Path, Path], tmp_path: Path
) -> None:
    """Without the proof, uniform r^n might not wipe randomness the customer planted."""
    server_dir, customer_dir = parties
    lines = customer_encrypts(customer_dir, first_rows(tmp_path, 2)).read_text().splitlines()
    header = json.loads(lines[0])
    del header["public_key"]["proof"]
    unproven = tmp_path / "unproven.jsonl"
    unproven.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    with pytest.raises(FileFormatError, match="no modulus proof"):
        server_predicts(server_dir, unproven)

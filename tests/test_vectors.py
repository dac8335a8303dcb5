"""ppml against the known-answer vectors of tests/vectors (made by an independent script)."""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rfc8785

from ppml.crypto import Ciphertext, KeyPolicy, PrivateKey, PublicKey, verify_modulus
from ppml.crypto.hashing import hash_to_unit
from ppml.crypto.hazmat import encrypt_with_mask
from ppml.crypto.proofs import proof_challenges, prove_modulus
from ppml.crypto.randomness import djn_base, djn_exponent_bits
from ppml.encoding import FixedPoint
from ppml.encoding.masking import result_mask, unmask
from ppml.encoding.packing import PackingLayout
from ppml.errors import InvalidCiphertextError, PlaintextOverflowError
from ppml.features.outputs import Output
from ppml.features.spec import SPEC_FORMAT, SPEC_VERSION, FeatureSpec
from ppml.wire.keyfile import parse_public_key, proof_members, public_key_document
from ppml.wire.messages import ciphertext_width, encode_ciphertext_value

VECTORS = Path(__file__).parent / "vectors"


def cases(name: str) -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = json.loads((VECTORS / name).read_text())["cases"]
    return loaded


def number(text: str) -> int:
    return int(text, 16)


@pytest.mark.parametrize("case", cases("hash_to_unit.json"), ids=lambda case: case["note"])
def test_hash_to_unit(case: dict[str, Any]) -> None:
    assert hash_to_unit(bytes.fromhex(case["tag"]), number(case["n"])) == number(case["value"])


@pytest.mark.parametrize("case", cases("djn_base.json"))
def test_djn_base(case: dict[str, Any]) -> None:
    n = number(case["n"])
    assert djn_base(n) == number(case["h_s"])
    assert PublicKey(n, "djn").h_s == number(case["h_s"])


@pytest.mark.parametrize("case", cases("modulus_proof.json"))
def test_modulus_proof(case: dict[str, Any]) -> None:
    p, q, n = number(case["p"]), number(case["q"]), number(case["n"])
    assert p * q == n
    assert list(proof_challenges(n)) == [number(rho) for rho in case["rho"]]
    proof = prove_modulus(p, q)
    assert proof_members(proof) == case["proof"]
    verify_modulus(n, proof)
    key = PrivateKey.from_factors(p, q)
    assert key.public_key.proof == proof


def test_public_key_file() -> None:
    data = (VECTORS / "public_key_v3.json").read_bytes()
    public_key = parse_public_key(data, policy=KeyPolicy(min_bits=512, require_proof=True))
    assert public_key.randomness == "djn" and public_key.proof is not None
    assert public_key_document(public_key) == json.loads(data)
    (vector,) = cases("modulus_proof.json")
    assert public_key.n == number(vector["n"])


@pytest.mark.parametrize("case", cases("spec_id.json"), ids=lambda case: case["spec_id"])
def test_spec_id(case: dict[str, Any]) -> None:
    content = case["content"]
    assert rfc8785.dumps(content).decode("utf-8") == case["jcs"]
    document = {"format": SPEC_FORMAT, "version": SPEC_VERSION, "spec_id": case["spec_id"]}
    spec = FeatureSpec.parse(json.dumps({**document, **content}).encode("utf-8"))
    assert spec.spec_id == case["spec_id"]
    assert {k: v for k, v in spec.to_document().items() if k in content} == content


@pytest.mark.parametrize("case", cases("outputs.json"), ids=lambda case: case["output"]["function"])
def test_output_functions(case: dict[str, Any]) -> None:
    output = Output.from_document(case["output"])
    assert output.to_document() == case["output"]
    predicted = output.predictions(np.array(case["scores"], dtype=np.float64))
    assert len(predicted) == len(case["predictions"])
    for cells, expected in zip(predicted, case["predictions"], strict=True):
        assert len(cells) == len(output.columns) == len(expected)
        for cell, wanted in zip(cells, expected, strict=True):
            if isinstance(wanted, str):
                assert cell == wanted
            else:
                # Two implementations of the same formulas: equal to the last bits or so.
                assert cell == pytest.approx(wanted, rel=1e-15, abs=1e-300)


@pytest.mark.parametrize("case", cases("names.json"), ids=lambda case: repr(case["name"][:20]))
def test_target_and_class_names(case: dict[str, Any]) -> None:
    name = case["name"]
    if case["allowed"]:
        assert Output.classification(name, [name, "other"], "sigmoid").classes[0] == name
    else:
        with pytest.raises(ValueError):
            Output.classification("y", [name, "other"], "sigmoid")
        with pytest.raises(ValueError):
            Output.regression(name)


# --- paillier.json: docs/encoding.md and docs/wire-format.md ---

PAILLIER = json.loads((VECTORS / "paillier.json").read_text())
VECTOR_KEY = PAILLIER["key"]
VECTOR_N = number(VECTOR_KEY["n"])


def signed(text: str) -> int:
    return -number(text[1:]) if text.startswith("-") else number(text)


def vector_keys() -> tuple[PublicKey, PrivateKey]:
    public_key = PublicKey(VECTOR_N, "djn")
    return public_key, PrivateKey(public_key, number(VECTOR_KEY["p"]), number(VECTOR_KEY["q"]))


@pytest.mark.parametrize(
    "case", PAILLIER["encodings"], ids=lambda c: f"{c['value']!r}@{c['frac_bits']}"
)
def test_fixed_point_encoding(case: dict[str, Any]) -> None:
    assert FixedPoint(case["frac_bits"]).encode(case["value"]) == signed(case["encoded"])


@pytest.mark.parametrize(
    "case", PAILLIER["decodings"], ids=lambda c: f"{c['encoded'][:12]}@{c['frac_bits']}"
)
def test_fixed_point_decoding(case: dict[str, Any]) -> None:
    fmt = FixedPoint(case["frac_bits"])
    if case["value"] is None:
        with pytest.raises(PlaintextOverflowError):
            fmt.decode(signed(case["encoded"]))
        return
    decoded = fmt.decode(signed(case["encoded"]))
    assert decoded == case["value"]
    assert math.copysign(1.0, decoded) == math.copysign(1.0, case["value"])


@pytest.mark.parametrize("case", PAILLIER["packings"], ids=lambda c: f"s={c['slot_bits']}")
def test_packing(case: dict[str, Any]) -> None:
    layout = PackingLayout.for_key(VECTOR_N.bit_length(), case["slot_bits"])
    assert layout == PackingLayout(case["slots"], case["slot_bits"])
    fmt = FixedPoint(case["frac_bits"])
    encoded = [[fmt.encode(value) for value in row] for row in case["rows"]]
    assert encoded == [[signed(x) for x in row] for row in case["encoded_rows"]]
    packed = [layout.pack(list(column)) for column in zip(*encoded, strict=True)]
    assert packed == [signed(value) for value in case["packed"]]
    assert [value % VECTOR_N for value in packed] == [number(p) for p in case["plaintexts"]]


@pytest.mark.parametrize("case", PAILLIER["unpackings"], ids=lambda c: c["packed"][:12])
def test_unpacking(case: dict[str, Any]) -> None:
    layout = PackingLayout(case["count"], case["slot_bits"])
    bound = None if case["bound"] is None else number(case["bound"])
    if case["values"] is None:
        with pytest.raises(PlaintextOverflowError):
            layout.unpack(signed(case["packed"]), case["count"], bound)
    else:
        values = layout.unpack(signed(case["packed"]), case["count"], bound)
        assert values == [signed(v) for v in case["values"]]


@pytest.mark.parametrize("case", PAILLIER["encryptions"], ids=lambda c: c["randomness"])
def test_encryption_and_decryption(case: dict[str, Any]) -> None:
    public_key, private_key = vector_keys()
    assert public_key.h_s == number(VECTOR_KEY["h_s"])
    plaintext = number(case["plaintext"])
    if case["randomness"] == "djn":
        exponent = number(case["exponent"])
        assert exponent.bit_length() <= djn_exponent_bits(VECTOR_N)
        mask = pow(number(VECTOR_KEY["h_s"]), exponent, VECTOR_N**2)
        ciphertext = encrypt_with_mask(public_key, plaintext, mask)
    else:
        ciphertext = public_key.raw_encrypt_with(plaintext, number(case["r"]))
    assert ciphertext.value == number(case["ciphertext"])
    width = ciphertext_width(public_key)
    assert width == VECTOR_KEY["width"]
    raw = encode_ciphertext_value(ciphertext.value, width)
    assert base64.b64encode(raw).decode("ascii") == case["base64"]
    received = public_key.ciphertext(number(case["ciphertext"]))
    assert private_key.raw_decrypt(received) == plaintext


@pytest.mark.parametrize("case", PAILLIER["ciphertext_checks"], ids=lambda c: str(c["problem"]))
def test_ciphertext_checks(case: dict[str, Any]) -> None:
    public_key, _ = vector_keys()
    value = number(case["value"])
    if case["valid"]:
        public_key.ciphertext(value)
        Ciphertext.validated(public_key, [1, value])
        return
    wording = "out of range" if case["problem"] == "range" else "shares a factor"
    with pytest.raises(InvalidCiphertextError, match=wording):
        public_key.ciphertext(value)
    with pytest.raises(InvalidCiphertextError) as raised:
        Ciphertext.validated(public_key, [1, value])
    assert raised.value.index == 1


@pytest.mark.parametrize("case", PAILLIER["results"], ids=lambda c: f"{c['rows']} rows")
def test_masked_results(case: dict[str, Any]) -> None:
    public_key, private_key = vector_keys()
    slot_bits, rows = case["slot_bits"], case["rows"]
    layout = PackingLayout.for_key(VECTOR_N.bit_length(), slot_bits)
    masked = number(case["masked"])
    if "ciphertext" in case:
        assert result_mask(layout, rows, VECTOR_N, lambda _: number(case["u"])) == number(
            case["mask"]
        )
        received = public_key.ciphertext(number(case["ciphertext"]))
        assert private_key.raw_decrypt(received) == masked
    unmasked = unmask(masked, layout, rows)
    assert unmasked == signed(case["unmasked"])
    bound = min(layout.slot_limit, 1 << case["bound_bits"]) - 1
    if case["values"] is None:
        with pytest.raises(PlaintextOverflowError):
            layout.unpack(unmasked, rows, bound)
        return
    values = layout.unpack(unmasked, rows, bound)
    assert values == [signed(v) for v in case["values"]]
    assert [FixedPoint(case["frac_bits"]).decode(v) for v in values] == case["scores"]

"""ppml against the known-answer vectors of tests/vectors (made by an independent script)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rfc8785

from ppml.crypto import KeyPolicy, PrivateKey, PublicKey, verify_modulus
from ppml.crypto.hashing import hash_to_unit
from ppml.crypto.proofs import proof_challenges, prove_modulus
from ppml.crypto.randomness import djn_base
from ppml.features.outputs import Output
from ppml.features.spec import SPEC_FORMAT, SPEC_VERSION, FeatureSpec
from ppml.wire.keyfile import parse_public_key, proof_members, public_key_document

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

"""The offline phase: masks precomputed in one process are used by its workers, each once."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

from ppml.crypto import KeyPolicy, PrivateKey, PublicKey
from ppml.crypto.randomness import owner_masks, public_masks
from ppml.datasets import iris_csv
from ppml.features import FeatureSpec
from ppml.model import LinearModel
from ppml.model.training import TrainingResult, train
from ppml.roles import customer, server

POLICY = KeyPolicy(min_bits=512, require_proof=True)


@pytest.fixture(scope="module")
def iris() -> TrainingResult:
    return train(iris_csv(), "species", folds=3)


def _ciphertexts(path: Path) -> list[bytes]:
    blocks = [json.loads(line) for line in path.read_text().splitlines()[1:]]
    return [base64.b64decode(t) for block in blocks for t in block.get("ciphertexts", [])]


def _round_trip(
    keypair: tuple[PublicKey, PrivateKey], spec: FeatureSpec, model: LinearModel, folder: Path
) -> None:
    _, private_key = keypair
    customer.encrypt_file(private_key, spec, iris_csv(), folder / "q.jsonl", jobs=2)
    server.predict_file(spec, model, folder / "q.jsonl", folder / "r.jsonl", jobs=2, policy=POLICY)
    customer.decrypt_file(
        private_key, folder / "r.jsonl", folder / "p.csv", query=folder / "q.jsonl", spec=spec
    )


@pytest.mark.parametrize("share", [1.0, 0.5])
def test_precomputed_masks_are_used_by_workers_and_never_twice(
    keypair: tuple[PublicKey, PrivateKey], iris: TrainingResult, tmp_path: Path, share: float
) -> None:
    """All of the masks a query needs precomputed, or half of them (the rest computed online)."""
    public_key, private_key = keypair
    spec, model = iris.spec, iris.model
    layout = customer.query_layout(spec, public_key.bits)
    blocks = -(-150 // layout.slots)
    encryptions = blocks * len(spec.feature_names)
    answers = blocks * model.scores
    customer.precompute_randomness(private_key, int(encryptions * share))
    server.precompute_randomness(public_key, int(answers * share))
    owner = owner_masks(private_key.p, private_key.q, public_key.h_s)
    uniform = public_masks(public_key.n, None)
    assert (len(owner), len(uniform)) == (int(encryptions * share), int(answers * share))

    _round_trip(keypair, spec, model, tmp_path)
    # Every precomputed mask was taken (by the workers), and none was used twice.
    assert len(owner) == len(uniform) == 0
    query, result = _ciphertexts(tmp_path / "q.jsonl"), _ciphertexts(tmp_path / "r.jsonl")
    assert len(set(query)) == len(query) == encryptions
    assert len(set(result)) == len(result) == answers
    # And the answers are the model's.
    decrypted = np.loadtxt(tmp_path / "p.csv", delimiter=",", skiprows=1, usecols=(1, 2, 3))
    scores = model.decision_function(customer.read_inputs(spec, iris_csv()))
    np.testing.assert_allclose(decrypted, spec.output.probabilities(scores), rtol=0, atol=1e-9)


def test_a_pool_hands_out_each_mask_once(keypair: tuple[PublicKey, PrivateKey]) -> None:
    public_key, _ = keypair
    pool = public_masks(public_key.n, None)
    pool.discard()
    pool.fill(5)
    taken = pool.take(3)
    assert len(taken) == 3 and len(pool) == 2
    assert pool.take(10) != [] and len(pool) == 0 and pool.take(1) == []
    pool.add(taken)
    assert [pool.mask() for _ in range(3)] == taken
    fresh = pool.mask()  # computed now: the pool is empty
    assert fresh not in taken

"""The offline phase: masks precomputed in one process are used by its workers, each once."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from ppml.crypto import KeyPolicy, PrivateKey, PublicKey, generate_keypair
from ppml.crypto.randomness import owner_masks, public_masks
from ppml.datasets import iris_csv
from ppml.features import FeatureSpec
from ppml.model import LinearModel
from ppml.model.training import TrainingResult, train
from ppml.roles import customer, server
from ppml.service.compute import POOL_KEYS, MaskFiller

POLICY = KeyPolicy(min_bits=512, require_proof=True)


@pytest.fixture(scope="module")
def iris() -> TrainingResult:
    return train(iris_csv(), "species", folds=3)


def _ciphertexts(path: Path) -> list[bytes]:
    blocks = [json.loads(line) for line in path.read_text().splitlines()[1:]]
    return [base64.b64decode(t) for block in blocks for t in block.get("ciphertexts", [])]


def _round_trip(
    keypair: tuple[PublicKey, PrivateKey],
    spec: FeatureSpec,
    model: LinearModel,
    folder: Path,
    jobs: int = 2,
) -> None:
    _, private_key = keypair
    customer.encrypt_file(private_key, spec, iris_csv(), folder / "q.jsonl", jobs=jobs)
    server.predict_file(
        spec, model, folder / "q.jsonl", folder / "r.jsonl", jobs=jobs, policy=POLICY
    )
    customer.decrypt_file(
        private_key,
        folder / "r.jsonl",
        folder / "p.csv",
        query=folder / "q.jsonl",
        spec=spec,
        jobs=jobs,
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


def _wait_for(condition: Callable[[], bool], seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_service_worker_fills_pools_of_recent_keys_while_idle() -> None:
    keys = [generate_keypair(512, insecure_test_key=True)[0].n for _ in range(POOL_KEYS + 1)]
    for n in keys:
        public_masks(n, None).discard()
    filler = MaskFiller(target=3)
    filler.idle(keys[0])
    assert _wait_for(lambda: len(public_masks(keys[0], None)) == 3)
    # Busy: at most the mask being computed is added.
    filler.busy()
    public_masks(keys[0], None).take(3)
    time.sleep(0.2)
    assert len(public_masks(keys[0], None)) <= 1
    # Idle again, with more keys than it keeps: the oldest key's pool is dropped.
    for n in keys[1:]:
        filler.idle(n)
    assert _wait_for(lambda: all(len(public_masks(n, None)) == 3 for n in keys[1:]))
    assert len(public_masks(keys[0], None)) == 0
    time.sleep(0.1)
    assert all(len(public_masks(n, None)) == 3 for n in keys[1:])  # full pools stop it


def test_threads_encrypting_under_different_keys_keep_their_own_state(
    iris: TrainingResult, tmp_path: Path
) -> None:
    """The in-process path keeps each thread's key, masks and layout apart."""
    spec, model = iris.spec, iris.model
    keys = [generate_keypair(512, insecure_test_key=True)[1] for _ in range(4)]
    for key in keys:
        customer.precompute_randomness(key, 40)

    def flow(index: int) -> bytes:
        folder = tmp_path / str(index)
        folder.mkdir()
        _round_trip((keys[index].public_key, keys[index]), spec, model, folder, jobs=1)
        return (folder / "p.csv").read_bytes()

    with ThreadPoolExecutor(4) as pool:
        outputs = list(pool.map(flow, range(4)))
    assert len(set(outputs)) == 1

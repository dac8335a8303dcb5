"""A customer that cheats in its query's plaintexts learns no more than its declared rows.

The original attack: declare one row, but encrypt feature j as 2^(300 + s*j),
far outside the row's slot. The weighted sum then carries every encoded
weight side by side above the slot, and one decrypted answer used to give
them all back while the service charged one prediction.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import numpy as np
import pytest
from crafting import craft_query, windows
from scipy import stats

from ppml.crypto import PrivateKey, PublicKey, generate_keypair
from ppml.crypto.hazmat import trusted_ciphertext, weighted_sum
from ppml.datasets import iris_csv, laptops_csv
from ppml.encoding.masking import unmask
from ppml.encoding.packing import PackingLayout
from ppml.errors import FileFormatError, SpecMismatchError
from ppml.features import FeatureSpec, GenericRecipe, Output
from ppml.features.spec import NumericFeature
from ppml.model import LinearModel
from ppml.model.training import train
from ppml.roles import server
from ppml.roles.customer import query_layout
from ppml.wire.messages import open_query, open_result, read_query_record

OFFSET, SPACING = 300, 64


@pytest.fixture(scope="module")
def laptop_model() -> tuple[FeatureSpec, LinearModel]:
    result = train(laptops_csv(), "Price")
    return result.spec, result.model


def _payload(features: int, key_bits: int) -> list[int]:
    """Feature j as 2^(OFFSET + SPACING*j) while it fits the key, else 0."""
    fits = (key_bits - 2 - OFFSET) // SPACING
    return [1 << (OFFSET + SPACING * j) if j < fits else 0 for j in range(features)]


def _recovered(plaintext: int, encoded: tuple[int, ...], placed: int) -> int:
    # Window j holds W_j plus carries from below; reading centred digits undoes them.
    found = windows(plaintext, OFFSET, SPACING, placed)
    return sum(1 for got, weight in zip(found, encoded, strict=False) if got == weight)


def test_one_row_extraction_recovers_no_weight(
    laptop_model: tuple[FeatureSpec, LinearModel],
    real_keypair: tuple[PublicKey, PrivateKey],
    tmp_path: Path,
) -> None:
    spec, model = laptop_model
    _, private_key = real_keypair
    payload = _payload(len(model.feature_names), private_key.public_key.bits)
    placed = sum(1 for m in payload if m)
    encoded = server.EncodedModel.build(spec, model)

    # The attack is real: the weighted sum itself holds every placed weight.
    craft_query(private_key, spec, payload, tmp_path / "q.jsonl")
    _, blocks = open_query(tmp_path / "q.jsonl")
    ((_, ciphertexts),) = list(blocks)
    bare = weighted_sum(ciphertexts, encoded.weights[0], encoded.exponent_bits)
    assert _recovered(private_key.decrypt(bare), encoded.weights[0], placed) == placed >= 25

    # Through the server, the same query tells the customer nothing of them.
    server.predict_file(spec, model, tmp_path / "q.jsonl", tmp_path / "r.jsonl", jobs=1)
    record = read_query_record(tmp_path / "q.jsonl")
    _, answers = open_result(tmp_path / "r.jsonl", record)
    ((rows, (answer,)),) = list(answers)
    plaintext = private_key.raw_decrypt(answer)
    assert rows == 1
    assert _recovered(plaintext, encoded.weights[0], placed) == 0
    # The declared row still reads exactly what an honest one would: the intercept
    # (every feature of the declared row's slot is 0).
    layout = record.header.layout
    assert layout.unpack(unmask(plaintext, layout, 1), 1) == [encoded.intercepts[0]]


def test_no_score_of_a_classifier_gives_its_weights_away(
    real_keypair: tuple[PublicKey, PrivateKey], tmp_path: Path
) -> None:
    """A model of k scores answers k ciphertexts: each carries its own mask and noise."""
    trained = train(iris_csv(), "species", folds=3)
    spec, model = trained.spec, trained.model
    assert model.scores == 3
    _, private_key = real_keypair
    payload = _payload(len(model.feature_names), private_key.public_key.bits)
    encoded = server.EncodedModel.build(spec, model)
    craft_query(private_key, spec, payload, tmp_path / "q.jsonl")
    _, blocks = open_query(tmp_path / "q.jsonl")
    ((_, ciphertexts),) = list(blocks)
    for row in encoded.weights:  # unanswered, every score's sum holds its row of weights
        bare = weighted_sum(ciphertexts, row, encoded.exponent_bits)
        assert _recovered(private_key.decrypt(bare), row, len(payload)) == len(payload)

    server.predict_file(spec, model, tmp_path / "q.jsonl", tmp_path / "r.jsonl", jobs=1)
    record = read_query_record(tmp_path / "q.jsonl")
    _, answers = open_result(tmp_path / "r.jsonl", record)
    ((rows, scores),) = list(answers)
    assert rows == 1 and len(scores) == 3
    layout = record.header.layout
    for answer, intercept in zip(scores, encoded.intercepts, strict=True):
        plaintext = private_key.raw_decrypt(answer)
        assert not any(_recovered(plaintext, weights, len(payload)) for weights in encoded.weights)
        assert layout.unpack(unmask(plaintext, layout, 1), 1) == [intercept]
    assert len({private_key.raw_decrypt(answer) for answer in scores}) == 3


@pytest.mark.parametrize("layout", ["one wide slot", "more slots than fit"])
def test_a_layout_of_the_customers_choosing_is_refused(
    laptop_model: tuple[FeatureSpec, LinearModel],
    real_keypair: tuple[PublicKey, PrivateKey],
    tmp_path: Path,
    layout: str,
) -> None:
    """A slot of |n| - 2 bits would leave the mask two bits and every weight readable."""
    spec, model = laptop_model
    _, private_key = real_keypair
    bits = private_key.public_key.bits
    declared = (
        PackingLayout(1, bits - 2)
        if layout == "one wide slot"
        else PackingLayout(query_layout(spec, bits).slots + 1, spec.slot_bits or 0)
    )
    payload = [1 << (128 + 52 * j) if 128 + 52 * (j + 1) < bits - 2 else 0 for j in range(54)]
    craft_query(private_key, spec, payload, tmp_path / "q.jsonl", layout=declared)
    with pytest.raises((SpecMismatchError, FileFormatError), match="layout"):
        server.predict_file(spec, model, tmp_path / "q.jsonl", tmp_path / "r.jsonl", jobs=1)
    assert not (tmp_path / "r.jsonl").exists()


def _small_model(weights: list[float]) -> tuple[FeatureSpec, LinearModel]:
    names = tuple(f"x{j}" for j in range(len(weights)))
    spec = FeatureSpec(
        GenericRecipe.of(names, ()),
        tuple(NumericFeature(name, -10.0, 10.0) for name in names),
        (),
        Output.regression("y"),
    )
    spec = dataclasses.replace(spec, slot_bits=spec.required_slot_bits([weights], [1.5]))
    return spec, LinearModel(spec.spec_id, spec.feature_names, (tuple(weights),), (1.5,))


def _answers(
    spec: FeatureSpec,
    model: LinearModel,
    private_key: PrivateKey,
    payload: list[int],
    count: int,
    seed: int,
    *,
    masked: bool = True,
) -> list[int]:
    """``count`` decrypted answers to the crafted one-row block, with seeded server randomness."""
    public_key = private_key.public_key
    layout = query_layout(spec, public_key.bits)
    encoded = server.EncodedModel.build(spec, model)
    ciphertexts = [private_key.raw_encrypt(m) for m in payload]
    draw = random.Random(seed).randrange
    out = []
    for _ in range(count):
        if masked:
            (answer,) = server.answer_block(encoded, layout, ciphertexts, 1, random_below=draw)
        else:
            total = weighted_sum(ciphertexts, encoded.weights[0], encoded.exponent_bits)
            answer = (total + layout.pack([encoded.intercepts[0]])).rerandomize(uniform=True)
        out.append(private_key.raw_decrypt(trusted_ciphertext(public_key, answer.value)))
    return out


def test_two_models_with_the_same_bound_are_indistinguishable_through_a_crafted_query() -> None:
    """200 answers per model to the same crafted query: a two-sample test finds no difference."""
    _, private_key = generate_keypair(1024, insecure_test_key=True)
    weights = [0.75, -2.5, 1.125, 3.0, -0.5, 0.25, -1.0, 2.0]
    first = _small_model(weights)
    # The same weights permuted, signs flipped: another model with exactly the same bound.
    second = _small_model([-w for w in reversed(weights)])
    bound = first[0].prediction_bound(first[1].weights, [1.5])
    assert second[0].prediction_bound(second[1].weights, [1.5]) == bound
    assert first[0].slot_bits == second[0].slot_bits
    payload = _payload(len(weights), private_key.public_key.bits)
    n = private_key.public_key.n

    def spread(answers: list[int]) -> np.ndarray:
        return np.array([z / n for z in answers])

    one = _answers(*first, private_key, payload, 200, seed=1)
    two = _answers(*second, private_key, payload, 200, seed=2)
    layout = query_layout(first[0], private_key.public_key.bits)
    # The declared slot is the same honest value for both (the intercept)...
    assert {unmask(z, layout, 1) for z in one} == {unmask(z, layout, 1) for z in two}
    # ...and everything above it is distributed alike.
    assert stats.ks_2samp(spread(one), spread(two)).pvalue > 0.01

    # Without the mask the same test tells the models apart at once.
    bare_one = _answers(*first, private_key, payload, 200, seed=1, masked=False)
    bare_two = _answers(*second, private_key, payload, 200, seed=2, masked=False)
    assert stats.ks_2samp(spread(bare_one), spread(bare_two)).pvalue < 1e-6

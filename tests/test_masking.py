"""The result mask and the precision cap: exact for honest answers, noise only where declared."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ppml.crypto import KeyPolicy, PrivateKey, PublicKey
from ppml.encoding.masking import precision_noise, result_mask, unmask, used_bits
from ppml.encoding.packing import PackingLayout
from ppml.errors import PlaintextOverflowError
from ppml.features import FeatureSpec, GenericRecipe, Output
from ppml.features.spec import NumericFeature
from ppml.model import LinearModel
from ppml.roles import customer, server

N = (1 << 511) + 187  # any odd modulus of the right size will do for the arithmetic


@given(
    slots=st.integers(1, 5),
    slot_bits=st.integers(2, 90),
    data=st.data(),
)
def test_unmask_returns_every_honest_packed_value(
    slots: int, slot_bits: int, data: st.DataObject
) -> None:
    layout = PackingLayout(slots, slot_bits)
    rows = data.draw(st.integers(1, slots))
    limit = layout.slot_limit - 1
    values = data.draw(st.lists(st.integers(-limit, limit), min_size=rows, max_size=rows))
    packed = layout.pack(values)
    seed = data.draw(st.integers(0, 2**32))
    mask = result_mask(layout, rows, N, random.Random(seed).randrange)
    masked = packed + mask
    assert 0 <= masked < N  # an honest value never wraps around n
    assert layout.unpack(unmask(masked, layout, rows), rows) == values


def test_the_mask_is_a_public_offset_below_and_uniform_above() -> None:
    layout = PackingLayout(4, 20)
    bits = used_bits(layout, 3)
    masks = [result_mask(layout, 3, N, random.Random(seed).randrange) for seed in range(50)]
    assert {m % (1 << bits) for m in masks} == {1 << (bits - 1)}
    assert len({m >> bits for m in masks}) == 50
    assert max(masks) < N


def test_layouts_without_room_for_a_mask_are_refused() -> None:
    with pytest.raises(PlaintextOverflowError, match="no room for the mask"):
        result_mask(PackingLayout(1, 511), 1, N)
    with pytest.raises(ValueError, match="1 to 4 rows"):
        used_bits(PackingLayout(4, 20), 5)


@given(amplitude=st.integers(0, 1000), seed=st.integers(0, 2**32), rows=st.integers(1, 4))
def test_precision_noise_stays_within_its_amplitude(amplitude: int, seed: int, rows: int) -> None:
    layout = PackingLayout(4, 16)
    noise = precision_noise(layout, rows, amplitude, random.Random(seed).randrange)
    assert all(abs(v) <= amplitude for v in layout.unpack(noise, rows))


def _model(precision_digits: int | None) -> tuple[FeatureSpec, LinearModel]:
    names = ("a", "b")
    spec = FeatureSpec(
        GenericRecipe.of(names, ()),
        (NumericFeature("a", 0.0, 100.0), NumericFeature("b", -5.0, 5.0)),
        (),
        Output.regression("y"),
        precision_digits=precision_digits,
    )
    weights, intercept = [0.3125, -2.75], 10.0
    spec = dataclasses.replace(spec, slot_bits=spec.required_slot_bits([weights], [intercept]))
    return spec, LinearModel(spec.spec_id, spec.feature_names, (tuple(weights),), (intercept,))


def _price(
    spec: FeatureSpec, model: LinearModel, keys: tuple[PublicKey, PrivateKey], folder: Path
) -> np.ndarray:
    rows = folder / "rows.csv"
    rows.write_text("a,b\n" + "".join(f"{a},{b}\n" for a, b in [(0, 0), (100, -5), (37.5, 2.25)]))
    public_key, private_key = keys
    customer.encrypt_file(public_key, spec, rows, folder / "q.jsonl", jobs=1)
    server.predict_file(
        spec,
        model,
        folder / "q.jsonl",
        folder / "r.jsonl",
        jobs=1,
        policy=KeyPolicy(min_bits=512, require_proof=True),
    )
    customer.decrypt_file(
        private_key,
        folder / "r.jsonl",
        folder / "p.csv",
        query=folder / "q.jsonl",
        spec=spec,
        jobs=1,
    )
    return np.loadtxt(folder / "p.csv", skiprows=1)


def test_the_precision_cap_adds_bounded_noise_and_is_off_by_default(
    keypair: tuple[PublicKey, PrivateKey], tmp_path: Path
) -> None:
    exact_spec, exact_model = _model(None)
    expected = np.array([10.0, 10.0 + 31.25 + 13.75, 10.0 + 11.71875 - 6.1875])
    assert np.array_equal(_price(exact_spec, exact_model, keypair, tmp_path), expected)

    capped_spec, capped_model = _model(3)
    assert capped_spec.spec_id != exact_spec.spec_id  # the cap is public, part of the spec
    bound = capped_spec.prediction_bound(capped_model.weights, capped_model.intercepts)
    amplitude = capped_spec.prediction_fixed_point.decode(capped_spec.noise_amplitude(bound))
    assert amplitude == pytest.approx(bound / 2**88 / 1000, rel=1e-6)
    noisy = _price(capped_spec, capped_model, keypair, tmp_path)
    assert np.all(np.abs(noisy - expected) <= amplitude)
    assert not np.array_equal(noisy, expected)

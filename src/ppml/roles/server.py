"""The server: computes its linear model on encrypted inputs, never decrypting anything.

Each block of a query holds, for every feature j, one ciphertext packing that
feature for up to K rows. For a block of k declared rows the server computes
``prod_j c_j^W_j`` (a weighted sum in every slot at once), adds as one
plaintext the packed encoded intercept, the optional precision noise and the
result mask R of :mod:`ppml.encoding.masking` (which makes every bit above
the k declared slots uniformly random, so a crafted query reads no more than
k predictions' worth), and re-randomises with a uniformly random ``r^n``
(never the customer's DJN base), so the answer's randomness carries nothing
from the weights either. The key is accepted only with a valid proof that r
-> r^n is a bijection (gcd(n, phi(n)) = 1); otherwise a uniform r^n would not
wipe what a customer planted in its ciphertexts' randomness.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ppml.crypto import SERVER_KEY_POLICY, Ciphertext, KeyPolicy, PublicKey
from ppml.crypto.hazmat import exponent_bits_for, trusted_ciphertext, weighted_sum
from ppml.crypto.randomness import public_masks
from ppml.encoding.masking import RandomBelow, precision_noise, result_mask
from ppml.encoding.packing import PackingLayout
from ppml.errors import DeadlineExceededError, PlaintextOverflowError, SpecMismatchError
from ppml.features.spec import FeatureSpec
from ppml.model.linear import LinearModel
from ppml.roles.parallel import ProgressReporter, batched, default_jobs, ordered_map
from ppml.wire.messages import (
    BlockFileWriter,
    QueryHeader,
    ResultHeader,
    check_same_spec,
    ciphertext_width,
    encode_ciphertext_value,
    file_sha256,
    open_query,
)

BLOCKS_PER_TASK = 4


def check_model(spec: FeatureSpec, model: LinearModel) -> None:
    """Refuse a model that was not trained for ``spec``."""
    if model.spec_id != spec.spec_id or model.feature_names != spec.feature_names:
        raise SpecMismatchError(
            f"the model was trained for feature spec {model.spec_id}, not {spec.spec_id}"
        )


def check_query(spec: FeatureSpec, model: LinearModel, header: QueryHeader) -> int:
    """Refuse, before any work, a query this model cannot answer exactly; return the bound.

    The returned integer bounds every encoded prediction; each slot of the
    query's layout must hold it with its sign, plus the precision cap's
    noise, and must hold every declared input too.
    """
    check_model(spec, model)
    check_same_spec(spec.spec_id, header.spec_id, "the query")
    if header.frac_bits != spec.frac_bits or header.features != len(model.weights):
        raise SpecMismatchError(
            f"the query has {header.features} features at {header.frac_bits} fractional bits; "
            f"the model expects {len(model.weights)} at {spec.frac_bits}"
        )
    bound = spec.prediction_bound(model.weights, model.intercept)
    layout = header.layout
    needed = spec.required_slot_bits(model.weights, model.intercept)
    if spec.slot_bits is None or spec.slot_bits < needed:
        raise PlaintextOverflowError(
            f"inputs and predictions of this model need {needed}-bit slots; its feature spec "
            f"declares {spec.slot_bits} (re-run ppml train)"
        )
    # The layout is the spec's, never the customer's choice: the result mask
    # protects everything above k slots of the spec's width, so wider slots
    # (or more of them than fit the key) would hand the customer extra bits.
    densest = PackingLayout.for_key(header.public_key.bits, spec.slot_bits)
    if layout.slot_bits != spec.slot_bits or layout.slots > densest.slots:
        raise SpecMismatchError(
            f"the query's layout ({layout.slots} slots of {layout.slot_bits} bits) is not the "
            f"spec's: slots of {spec.slot_bits} bits, at most {densest.slots} per ciphertext "
            f"of a {header.public_key.bits}-bit key"
        )
    return bound


def precompute_randomness(public_key: PublicKey, count: int) -> None:
    """Offline phase: compute ``count`` re-randomisation masks (one per result block) now.

    They are uniform n-th residues ``r^n`` for the customer's modulus.
    """
    masks = public_masks(public_key.n, None)
    masks.prepare(count)
    masks.fill(count)


@dataclass(frozen=True)
class EncodedModel:
    """The model as the block computation uses it: encoded integers and public widths."""

    weights: tuple[int, ...]
    intercept: int
    noise_amplitude: int
    exponent_bits: int

    @classmethod
    def build(cls, spec: FeatureSpec, model: LinearModel) -> EncodedModel:
        """Encode ``model``'s weights and intercept in ``spec``'s formats."""
        weights = tuple(spec.weight_fixed_point.encode(w) for w in model.weights)
        bound = spec.prediction_bound(model.weights, model.intercept)
        return cls(
            weights,
            spec.prediction_fixed_point.encode(model.intercept),
            spec.noise_amplitude(bound),
            exponent_bits_for(weights),
        )


def answer_block(
    model: EncodedModel,
    layout: PackingLayout,
    ciphertexts: list[Ciphertext],
    rows: int,
    random_below: RandomBelow = secrets.randbelow,
) -> Ciphertext:
    """The encrypted, masked predictions of one block of ``rows`` declared rows.

    ``random_below`` draws the mask and the noise; only tests replace it.
    """
    public_key = ciphertexts[0].public_key
    total = weighted_sum(ciphertexts, model.weights, model.exponent_bits)
    offset = layout.pack([model.intercept] * rows)
    offset += precision_noise(layout, rows, model.noise_amplitude, random_below)
    offset += result_mask(layout, rows, public_key.n, random_below)
    # A uniform mask: the customer's own DJN base is not trusted to hide the weights.
    return (total + offset).rerandomize(uniform=True)


_state: dict[str, Any] = {}


def _init_predictor(
    public_key: PublicKey, model: EncodedModel, layout: PackingLayout, deadline: float | None
) -> None:
    _state.update(public_key=public_key, model=model, layout=layout, deadline=deadline)


def _predict_blocks(blocks: list[tuple[int, list[int]]]) -> list[tuple[int, str]]:
    public_key: PublicKey = _state["public_key"]
    layout: PackingLayout = _state["layout"]
    deadline: float | None = _state["deadline"]
    width = ciphertext_width(public_key)
    out = []
    for count, values in blocks:
        if deadline is not None and time.monotonic() > deadline:
            raise DeadlineExceededError("the prediction ran past its deadline and was abandoned")
        # The values were validated when the query was read.
        ciphertexts = [trusted_ciphertext(public_key, value) for value in values]
        answer = answer_block(_state["model"], layout, ciphertexts, count)
        out.append((count, encode_ciphertext_value(answer.value, width)))
    return out


def predict_file(
    spec: FeatureSpec,
    model: LinearModel,
    input_path: str | Path,
    output_path: str | Path,
    *,
    jobs: int | None = None,
    progress: ProgressReporter | None = None,
    policy: KeyPolicy = SERVER_KEY_POLICY,
    deadline: float | None = None,
) -> ResultHeader:
    """Answer a query file with a result file, block by block on every core.

    The query's key must satisfy ``policy``: by default 2048 to 4096 bits
    with a valid modulus proof, without which the re-randomisation could not
    be trusted to wipe what a customer planted (see the module docstring). With
    ``deadline`` (a :func:`time.monotonic` value), the work stops with
    :class:`~ppml.errors.DeadlineExceededError` once it is passed, and no
    output is written.
    """
    query_sha256 = file_sha256(input_path)
    header, blocks = open_query(input_path, policy=policy)
    bound = check_query(spec, model, header)
    if progress is not None:
        progress.start(header.rows)
    encoded = EncodedModel.build(spec, model)
    result = ResultHeader(
        header.query_id,
        query_sha256,
        header.public_key.key_id,
        spec.spec_id,
        spec.prediction_fixed_point.frac_bits,
        max((bound + encoded.noise_amplitude).bit_length(), 1),
        spec.target.name,
        spec.target.transform,
        header.rows,
        header.layout,
    )
    tasks = batched(((count, [c.value for c in row]) for count, row in blocks), BLOCKS_PER_TASK)
    with BlockFileWriter(output_path, result.to_document()) as writer:
        for answers in ordered_map(
            _predict_blocks,
            tasks,
            jobs=jobs or default_jobs(),
            initializer=_init_predictor,
            initargs=(header.public_key, encoded, header.layout, deadline),
            task_count=-(-header.blocks // BLOCKS_PER_TASK),
        ):
            for count, text in answers:
                writer.write_block(count, {"ciphertext": text})
                if progress is not None:
                    progress.advance(count)
    return result

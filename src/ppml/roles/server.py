"""The server: computes its linear model on encrypted inputs, never decrypting anything.

Each block of a query holds, for every feature j, one ciphertext packing that
feature for up to K rows. The server computes ``prod_j c_j^W_j`` (a weighted
sum in every slot at once; positive and negative weights in two
multi-exponentiations, one inverse for all the negative ones), adds the
packed encoded intercept as a plaintext, and re-randomises the result with a
uniformly random ``r^n`` (never the customer's DJN base, which the server
cannot check), so it reveals nothing about the weights beyond the predictions,
even to the key owner.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ppml.crypto import MIN_KEY_BITS, Ciphertext, PublicKey
from ppml.crypto.paillier import weighted_sum
from ppml.crypto.randomness import public_masks
from ppml.encoding.packing import PackingLayout
from ppml.errors import PlaintextOverflowError, SpecMismatchError
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
    query's layout must hold it with its sign.
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
    if bound >= layout.slot_limit or not layout.fits(header.public_key.bits):
        raise PlaintextOverflowError(
            f"predictions of this model need {bound.bit_length() + 1}-bit slots; the query's "
            f"layout has {layout.slots} slots of {layout.slot_bits} bits in a "
            f"{header.public_key.bits}-bit key"
        )
    return bound


def precompute_randomness(public_key: PublicKey, count: int) -> None:
    """Offline phase: compute ``count`` re-randomisation masks (one per result block) now.

    They are uniform n-th residues ``r^n`` for the customer's modulus.
    """
    masks = public_masks(public_key.n, None)
    masks.prepare(count)
    masks.fill(count)


_state: dict[str, Any] = {}


def _init_predictor(
    public_key: PublicKey, weights: list[int], intercept: int, layout: PackingLayout
) -> None:
    _state.update(public_key=public_key, weights=weights, intercept=intercept, layout=layout)


def _predict_blocks(blocks: list[tuple[int, list[int]]]) -> list[tuple[int, str]]:
    public_key: PublicKey = _state["public_key"]
    layout: PackingLayout = _state["layout"]
    width = ciphertext_width(public_key)
    out = []
    for count, values in blocks:
        ciphertexts = [Ciphertext._trusted(public_key, value) for value in values]
        total = weighted_sum(ciphertexts, _state["weights"])
        total = total + layout.pack([_state["intercept"]] * count)
        # A uniform mask: the customer's own DJN base is not trusted to hide the weights.
        answer = total.rerandomize(uniform=True)
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
    min_bits: int = MIN_KEY_BITS,
) -> ResultHeader:
    """Answer a query file with a result file, block by block on every core.

    Queries under keys shorter than ``min_bits`` are refused.
    """
    header, blocks = open_query(input_path, min_bits=min_bits)
    bound = check_query(spec, model, header)
    if progress is not None:
        progress.start(header.rows)
    weight_fmt = spec.weight_fixed_point
    weights = [weight_fmt.encode(w) for w in model.weights]
    intercept = spec.prediction_fixed_point.encode(model.intercept)
    result = ResultHeader(
        header.public_key.key_id,
        spec.spec_id,
        spec.prediction_fixed_point.frac_bits,
        max(bound.bit_length(), 1),
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
            initargs=(header.public_key, weights, intercept, header.layout),
            task_count=-(-header.blocks // BLOCKS_PER_TASK),
        ):
            for count, text in answers:
                writer.write_block(count, {"ciphertext": text})
                if progress is not None:
                    progress.advance(count)
    return result

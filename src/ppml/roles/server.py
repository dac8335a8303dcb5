"""The server: computes its linear model on encrypted inputs, never decrypting anything.

Each block of a query holds, for every feature j, one ciphertext packing that
feature for up to K rows. For a block of m declared rows the server computes,
for each of the model's k scores, ``prod_j c_j^W_kj`` (a weighted sum in every
slot at once), adds as one plaintext the packed encoded intercept b_k, the
optional precision noise and a fresh result mask R of
:mod:`ppml.encoding.masking` (which makes every bit above the m declared slots
uniformly random, so a crafted query reads no more than m scores' worth from
each answer ciphertext), and re-randomises with a uniformly random ``r^n``
(never the customer's DJN base), so the answer's randomness carries nothing
from the weights either. A block's answer is k ciphertexts: m rows x k scores.
The key is accepted only with a valid proof that r -> r^n is a bijection
(gcd(n, phi(n)) = 1); otherwise a uniform r^n would not wipe what a customer
planted in its ciphertexts' randomness.
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
from ppml.roles.parallel import (
    Executor,
    ProgressReporter,
    batched,
    default_jobs,
    ordered_map,
)
from ppml.wire.messages import (
    BlockFileWriter,
    QueryHeader,
    ResultHeader,
    check_same_spec,
    ciphertext_width,
    encode_ciphertext_value,
    file_sha256,
    is_binary_container,
    open_query,
)

BLOCKS_PER_TASK = 4


def check_model(spec: FeatureSpec, model: LinearModel) -> None:
    """Refuse a model that was not trained for ``spec``, or whose scores its output does not
    expect."""
    if model.spec_id != spec.spec_id or model.feature_names != spec.feature_names:
        raise SpecMismatchError(
            f"the model was trained for feature spec {model.spec_id}, not {spec.spec_id}"
        )
    if model.scores != spec.output.scores:
        raise SpecMismatchError(
            f"the model computes {model.scores} score(s) per row; its feature spec's output "
            f"expects {spec.output.scores}"
        )


def check_query(spec: FeatureSpec, model: LinearModel, header: QueryHeader) -> int:
    """Refuse, before any work, a query this model cannot answer exactly; return the bound.

    The returned integer bounds every encoded prediction; each slot of the
    query's layout must hold it with its sign, plus the precision cap's
    noise, and must hold every declared input too.
    """
    check_model(spec, model)
    check_same_spec(spec.spec_id, header.spec_id, "the query")
    if header.frac_bits != spec.frac_bits or header.features != len(model.feature_names):
        raise SpecMismatchError(
            f"the query has {header.features} features at {header.frac_bits} fractional bits; "
            f"the model expects {len(model.feature_names)} at {spec.frac_bits}"
        )
    bound = spec.prediction_bound(model.weights, model.intercepts)
    layout = header.layout
    needed = spec.required_slot_bits(model.weights, model.intercepts)
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
    """Offline phase: compute ``count`` re-randomisation masks (one per score per result
    block) now.

    They are uniform n-th residues ``r^n`` for the customer's modulus.
    """
    masks = public_masks(public_key.n, None)
    masks.prepare(count)
    masks.fill(count)


@dataclass(frozen=True)
class EncodedModel:
    """The model as the block computation uses it: encoded integers and public widths."""

    weights: tuple[tuple[int, ...], ...]
    """One row of encoded weights per score."""
    intercepts: tuple[int, ...]
    noise_amplitude: int
    exponent_bits: int

    @classmethod
    def build(cls, spec: FeatureSpec, model: LinearModel) -> EncodedModel:
        """Encode ``model``'s weights and intercepts in ``spec``'s formats."""
        encode = spec.weight_fixed_point.encode
        weights = tuple(tuple(encode(w) for w in row) for row in model.weights)
        bound = spec.prediction_bound(model.weights, model.intercepts)
        return cls(
            weights,
            tuple(spec.prediction_fixed_point.encode(b) for b in model.intercepts),
            spec.noise_amplitude(bound),
            # One width for every score, so the work done reveals nothing of any row.
            max(exponent_bits_for(row) for row in weights),
        )


def answer_block(
    model: EncodedModel,
    layout: PackingLayout,
    ciphertexts: list[Ciphertext],
    rows: int,
    random_below: RandomBelow = secrets.randbelow,
) -> list[Ciphertext]:
    """The encrypted, masked scores of one block of ``rows`` declared rows: one ciphertext per
    score, each with its own mask, noise and re-randomisation.

    ``random_below`` draws the masks and the noise; only tests replace it.
    """
    public_key = ciphertexts[0].public_key
    answers = []
    for weights, intercept in zip(model.weights, model.intercepts, strict=True):
        total = weighted_sum(ciphertexts, weights, model.exponent_bits)
        offset = layout.pack([intercept] * rows)
        offset += precision_noise(layout, rows, model.noise_amplitude, random_below)
        offset += result_mask(layout, rows, public_key.n, random_below)
        # A uniform mask: the customer's own DJN base is not trusted to hide the weights.
        answers.append((total + offset).rerandomize(uniform=True))
    return answers


@dataclass(frozen=True)
class PredictContext:
    """What every task of a prediction shares: the query's key and layout, the encoded
    model (the server's secret: it goes only to the server's own workers) and the
    deadline (a :func:`time.monotonic` value of this machine, or None)."""

    public_key: PublicKey
    model: EncodedModel
    layout: PackingLayout
    deadline: float | None


def _predict_blocks(
    context: PredictContext, task: tuple[list[tuple[int, list[int]]], list[Any]]
) -> list[tuple[int, list[bytes]]]:
    blocks, precomputed = task
    public_key = context.public_key
    # Re-randomisation masks taken from the parent's pool for this task: used here, once.
    public_masks(public_key.n, None).add(precomputed)
    layout, deadline = context.layout, context.deadline
    width = ciphertext_width(public_key)
    out = []
    for count, values in blocks:
        if deadline is not None and time.monotonic() > deadline:
            raise DeadlineExceededError("the prediction ran past its deadline and was abandoned")
        # The values were validated when the query was read.
        ciphertexts = [trusted_ciphertext(public_key, value) for value in values]
        answers = answer_block(context.model, layout, ciphertexts, count)
        out.append((count, [encode_ciphertext_value(a.value, width) for a in answers]))
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
    executor: Executor | None = None,
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
        model.scores,
        header.rows,
        header.layout,
    )
    # Uniform masks precomputed in this process (the offline phase) travel with the tasks:
    # forked workers start with empty pools, so that no mask is ever used twice.
    pool = public_masks(header.public_key.n, None)
    tasks = (
        (task, pool.take(len(task) * model.scores))
        for task in batched(
            ((count, [c.value for c in row]) for count, row in blocks), BLOCKS_PER_TASK
        )
    )
    # The answer comes in the query's container.
    binary = is_binary_container(input_path)
    with BlockFileWriter(output_path, result.to_document(), binary=binary) as writer:
        for answers in ordered_map(
            _predict_blocks,
            # time.monotonic() is one clock per machine: elsewhere, the deadline is kept here.
            PredictContext(
                header.public_key,
                encoded,
                header.layout,
                deadline if getattr(executor, "local", True) else None,
            ),
            tasks,
            jobs=jobs or default_jobs(),
            task_count=-(-header.blocks // BLOCKS_PER_TASK),
            executor=executor,
        ):
            if deadline is not None and time.monotonic() > deadline:
                raise DeadlineExceededError(
                    "the prediction ran past its deadline and was abandoned"
                )
            for count, texts in answers:
                writer.write_block(count, texts)
                if progress is not None:
                    progress.advance(count)
    return result

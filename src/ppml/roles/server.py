"""The server: computes its linear model on encrypted inputs, never decrypting anything.

For each query row it computes ``sum_j w_j * x_j + b`` homomorphically: each
ciphertext is raised to its encoded weight, the products are multiplied, the
encoded intercept is added, and the result is re-randomised so that it
reveals nothing about the weights to the customer beyond the prediction.
"""

from __future__ import annotations

from collections.abc import Callable

from ppml.encoding import EncryptedNumber, FixedPoint, dot
from ppml.errors import SpecMismatchError
from ppml.features.spec import FeatureSpec
from ppml.model.linear import LinearModel
from ppml.wire.messages import EncryptedQuery, EncryptedResult, check_same_spec

WEIGHT_FORMAT = FixedPoint(64)
"""Fixed-point format of the weights: 2^-64 resolution keeps the error far below 1e-9."""

Progress = Callable[[int], None]


def check_model(spec: FeatureSpec, model: LinearModel) -> None:
    """Refuse a model that was not trained for ``spec``."""
    if model.spec_id != spec.spec_id or model.feature_names != spec.feature_names:
        raise SpecMismatchError(
            f"the model was trained for feature spec {model.spec_id}, not {spec.spec_id}"
        )


def predict_encrypted(
    spec: FeatureSpec,
    model: LinearModel,
    query: EncryptedQuery,
    *,
    progress: Progress | None = None,
) -> EncryptedResult:
    """Encrypted predictions for every row of ``query``, under the customer's key."""
    check_model(spec, model)
    check_same_spec(spec.spec_id, query.spec_id, "the query")
    if query.frac_bits != spec.frac_bits or query.feature_count != len(model.weights):
        raise SpecMismatchError(
            f"the query has {query.feature_count} features at {query.frac_bits} fractional bits; "
            f"the model expects {len(model.weights)} at {spec.frac_bits}"
        )
    fmt = spec.fixed_point
    # Bounds come from the public spec, so they are the same for every row and
    # say nothing about the customer's values.
    bounds = [fmt.encode(max(abs(low), abs(high))) for low, high in spec.bounds]
    predictions = []
    bound_bits = 1
    for row in query.rows:
        inputs = [
            EncryptedNumber.from_ciphertext(c, fmt, bound)
            for c, bound in zip(row, bounds, strict=True)
        ]
        total = dot(inputs, model.weights, WEIGHT_FORMAT) + model.intercept
        predictions.append(total.rerandomize().ciphertext)
        bound_bits = max(bound_bits, total.bound.bit_length())
        if progress is not None:
            progress(1)
    return EncryptedResult(
        query.public_key,
        spec.spec_id,
        fmt.frac_bits + WEIGHT_FORMAT.frac_bits,
        bound_bits,
        spec.target.name,
        spec.target.transform,
        tuple(predictions),
    )

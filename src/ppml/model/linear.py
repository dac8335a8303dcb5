"""The server's private model: k rows of weights and k intercepts of a linear model, as JSON."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ppml.errors import FileFormatError
from ppml.fileio import PRIVATE_FILE_MODE, write_atomic
from ppml.wire.document import DocumentReader, dump_document, parse_document, read_document_bytes

MODEL_FORMAT = "ppml.linear-model"
MODEL_VERSION = 2
# Version 1 held one row of weights and one intercept: read as a model of one score.
READABLE_MODEL_VERSIONS = frozenset({1, MODEL_VERSION})
# One weight per model input and score: a one-hot encoding of many categories, or
# many classes, make a large model, so its file may be larger than other documents.
MAX_MODEL_BYTES = 64 << 20


@dataclass(frozen=True)
class LinearModel:
    """``scores = weights @ x + intercepts``: k scores per row on the inputs a spec defines.

    ``weights`` holds one row of d weights per score. Scores are on the
    model's scale (log-odds, log units, ...); the spec's output turns them
    into predictions.
    """

    spec_id: str
    feature_names: tuple[str, ...]
    weights: tuple[tuple[float, ...], ...]
    intercepts: tuple[float, ...]
    estimator: str = "LinearRegression"

    def __post_init__(self) -> None:
        if not self.weights or len(self.weights) != len(self.intercepts):
            raise ValueError("one row of weights and one intercept per score are needed")
        if any(len(row) != len(self.feature_names) for row in self.weights):
            raise ValueError("one weight per feature is needed in every row")
        if not all(math.isfinite(v) for row in self.weights for v in row) or not all(
            math.isfinite(v) for v in self.intercepts
        ):
            raise ValueError("weights and intercepts must be finite")

    @classmethod
    def from_arrays(
        cls,
        spec_id: str,
        feature_names: tuple[str, ...],
        coefficients: ArrayLike,
        intercepts: ArrayLike,
        estimator: str,
    ) -> LinearModel:
        """A model from scikit-learn-shaped ``coef_`` (d,) or (k, d) and ``intercept_``."""
        matrix = np.atleast_2d(np.asarray(coefficients, dtype=np.float64))
        offsets = np.ravel(np.asarray(intercepts, dtype=np.float64))
        if offsets.size == 1 and matrix.shape[0] > 1:
            offsets = np.repeat(offsets, matrix.shape[0])
        return cls(
            spec_id,
            feature_names,
            tuple(tuple(float(w) for w in row) for row in matrix),
            tuple(float(b) for b in offsets),
            estimator,
        )

    @property
    def scores(self) -> int:
        """k, the number of scores per row."""
        return len(self.intercepts)

    def decision_function(self, inputs: ArrayLike) -> NDArray[np.float64]:
        """Plaintext scores (rows x k) for a matrix of model inputs (one row per example)."""
        matrix = np.atleast_2d(np.asarray(inputs, dtype=np.float64))
        weights = np.asarray(self.weights, dtype=np.float64)
        return np.asarray(matrix @ weights.T + np.asarray(self.intercepts, dtype=np.float64))

    def to_document(self) -> dict[str, Any]:
        """The JSON document of the model (floats are written exactly)."""
        return {
            "format": MODEL_FORMAT,
            "version": MODEL_VERSION,
            "spec_id": self.spec_id,
            "estimator": self.estimator,
            "features": list(self.feature_names),
            "weights": [list(row) for row in self.weights],
            "intercepts": list(self.intercepts),
        }

    def save(self, path: str | Path) -> None:
        """Write ``model.json`` with mode 0600: the weights are the server's secret."""
        write_atomic(path, dump_document(self.to_document()), mode=PRIVATE_FILE_MODE)

    @classmethod
    def parse(cls, data: bytes, path: str | Path | None = None) -> LinearModel:
        """Parse a model document (version 2, or version 1 as a model of one score)."""
        document = parse_document(
            data,
            path,
            expected_format=MODEL_FORMAT,
            supported_versions=READABLE_MODEL_VERSIONS,
            error=FileFormatError,
            max_bytes=MAX_MODEL_BYTES,
        )
        names = document.get("features", list)
        if not all(isinstance(name, str) for name in names):
            raise document.fail("features must be strings")
        if document.get("version", int) == 1:
            rows = [_numbers(document, document.get("weights", list), "weights")]
            intercepts = [_numbers(document, [document.get("intercept", float | int)], "intercept")]
        else:
            rows = [_numbers(document, row, "weights") for row in document.get("weights", list)]
            intercepts = [_numbers(document, document.get("intercepts", list), "intercepts")]
        try:
            return cls(
                document.get("spec_id", str),
                tuple(names),
                tuple(rows),
                intercepts[0],
                document.get("estimator", str),
            )
        except ValueError as error:
            raise document.fail(str(error)) from None

    @classmethod
    def load(cls, path: str | Path) -> LinearModel:
        """Load ``model.json``."""
        return cls.parse(read_document_bytes(path, FileFormatError, MAX_MODEL_BYTES), path)


def _numbers(document: DocumentReader, values: Any, name: str) -> tuple[float, ...]:
    if not isinstance(values, list) or not all(
        isinstance(v, float | int) and not isinstance(v, bool) for v in values
    ):
        raise document.fail(f"{name} must be lists of numbers")
    return tuple(float(v) for v in values)

"""The server's private model: weights and intercept of a linear model, stored as JSON."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ppml.errors import FileFormatError
from ppml.fileio import PRIVATE_FILE_MODE, write_atomic
from ppml.wire.document import dump_document, parse_document, read_document_bytes

MODEL_FORMAT = "ppml.linear-model"
MODEL_VERSION = 1
# One weight per model input: a one-hot encoding of many categories makes a
# large model, so its file may be larger than other documents.
MAX_MODEL_BYTES = 64 << 20


@dataclass(frozen=True)
class LinearModel:
    """``prediction = weights . x + intercept`` on the inputs a feature spec defines.

    Predictions are on the model's scale (for a log-target model, log units);
    the spec's target transform maps them back to target units.
    """

    spec_id: str
    feature_names: tuple[str, ...]
    weights: tuple[float, ...]
    intercept: float
    estimator: str = "LinearRegression"

    def __post_init__(self) -> None:
        if len(self.weights) != len(self.feature_names):
            raise ValueError("one weight per feature is needed")
        if not all(math.isfinite(v) for v in (*self.weights, self.intercept)):
            raise ValueError("weights and intercept must be finite")

    def predict(self, inputs: ArrayLike) -> NDArray[np.float64]:
        """Plaintext predictions for a matrix of model inputs (one row per example)."""
        matrix = np.asarray(inputs, dtype=np.float64)
        return matrix @ np.asarray(self.weights, dtype=np.float64) + self.intercept

    def to_document(self) -> dict[str, Any]:
        """The JSON document of the model (floats are written exactly)."""
        return {
            "format": MODEL_FORMAT,
            "version": MODEL_VERSION,
            "spec_id": self.spec_id,
            "estimator": self.estimator,
            "features": list(self.feature_names),
            "weights": list(self.weights),
            "intercept": self.intercept,
        }

    def save(self, path: str | Path) -> None:
        """Write ``model.json`` with mode 0600: the weights are the server's secret."""
        write_atomic(path, dump_document(self.to_document()), mode=PRIVATE_FILE_MODE)

    @classmethod
    def parse(cls, data: bytes, path: str | Path | None = None) -> LinearModel:
        """Parse a model document."""
        document = parse_document(
            data,
            path,
            expected_format=MODEL_FORMAT,
            supported_versions=frozenset({MODEL_VERSION}),
            error=FileFormatError,
            max_bytes=MAX_MODEL_BYTES,
        )
        weights = document.get("weights", list)
        names = document.get("features", list)
        intercept = document.get("intercept", float | int)
        if not all(isinstance(w, float | int) and not isinstance(w, bool) for w in weights):
            raise document.fail("weights must be numbers")
        if not all(isinstance(name, str) for name in names):
            raise document.fail("features must be strings")
        try:
            return cls(
                document.get("spec_id", str),
                tuple(names),
                tuple(float(w) for w in weights),
                float(intercept),
                document.get("estimator", str),
            )
        except ValueError as error:
            raise document.fail(str(error)) from None

    @classmethod
    def load(cls, path: str | Path) -> LinearModel:
        """Load ``model.json``."""
        return cls.parse(read_document_bytes(path, FileFormatError, MAX_MODEL_BYTES), path)

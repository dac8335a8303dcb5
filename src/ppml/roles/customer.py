"""The customer: turns its rows into encrypted model inputs, and decrypts the predictions.

The customer holds the private key and the raw rows; it needs only the
server's public feature spec, never the model.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ppml.crypto import PrivateKey, PublicKey
from ppml.errors import DataError, InvalidCiphertextError
from ppml.features.spec import FeatureSpec, Target
from ppml.fileio import write_atomic
from ppml.wire.messages import EncryptedQuery, EncryptedResult

Progress = Callable[[int], None]


def read_inputs(spec: FeatureSpec, path: str | Path) -> NDArray[np.float64]:
    """Model inputs of every row of a CSV file, all validated before anything is encrypted."""
    table = spec.open_table(path)
    vectors = list(spec.transform_table(table))
    if not vectors:
        raise DataError("no data rows to encrypt", path=path)
    return np.vstack(vectors)


def encrypt_inputs(
    public_key: PublicKey,
    spec: FeatureSpec,
    inputs: ArrayLike,
    *,
    progress: Progress | None = None,
) -> EncryptedQuery:
    """Encrypt a matrix of model inputs (one row per example) in the spec's fixed-point format."""
    matrix = np.asarray(inputs, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] != len(spec.feature_names):
        raise ValueError(f"inputs must have {len(spec.feature_names)} columns")
    encoded = spec.fixed_point.encode_array(matrix)
    rows = []
    for row in encoded:
        rows.append(tuple(public_key.encrypt(int(value)) for value in row))
        if progress is not None:
            progress(1)
    return EncryptedQuery(public_key, spec.spec_id, spec.frac_bits, tuple(rows))


def encrypt_table(
    public_key: PublicKey,
    spec: FeatureSpec,
    path: str | Path,
    *,
    progress: Progress | None = None,
) -> EncryptedQuery:
    """Read, validate, encode and encrypt every row of a CSV file of raw records."""
    return encrypt_inputs(public_key, spec, read_inputs(spec, path), progress=progress)


def decrypt_predictions(
    private_key: PrivateKey, result: EncryptedResult, *, progress: Progress | None = None
) -> NDArray[np.float64]:
    """Decrypt a result into predictions in the target's own units."""
    limit = 1 << result.bound_bits
    scale = 1 << result.frac_bits
    values = []
    for index, ciphertext in enumerate(result.predictions):
        encoded = private_key.decrypt(ciphertext)
        if not -limit < encoded < limit:
            raise InvalidCiphertextError(
                f"prediction {index + 1} decrypts outside the result's declared bound: "
                "a ciphertext was altered, or the query was not made with this key"
            )
        values.append(encoded / scale)
        if progress is not None:
            progress(1)
    target = Target(result.target_name, "log" if result.target_transform == "log" else "none")
    return target.inverse(np.asarray(values, dtype=np.float64))


def write_predictions(path: str | Path, predictions: NDArray[np.float64]) -> None:
    """Write a one-column CSV (``prediction``), one line per input row, atomically."""
    text = io.StringIO()
    text.write("prediction\n")
    for value in predictions:
        text.write(f"{float(value)!r}\n")
    write_atomic(path, text.getvalue().encode("utf-8"))

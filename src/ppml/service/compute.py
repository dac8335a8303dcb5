"""The service's heavy work, run in worker processes so the event loop never blocks.

Each worker loads the feature spec and the model once. A request's query
bytes go in; the result bytes, or a client error to report, come out. Errors
are returned as plain values, never raised across the process boundary.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ppml.errors import (
    FileFormatError,
    PlaintextOverflowError,
    PpmlError,
    SpecMismatchError,
    UnsupportedVersionError,
)
from ppml.features.spec import FeatureSpec
from ppml.model.linear import LinearModel
from ppml.roles import server

FEATURES_FILENAME = "features.json"
MODEL_FILENAME = "model.json"


@dataclass(frozen=True)
class Refusal:
    """A client error: HTTP status, a stable code and a one-line message."""

    status: int
    code: str
    message: str


_loaded: dict[str, object] = {}


def load_model(model_dir: str) -> None:
    """Worker initializer: read the spec and the model once per process."""
    folder = Path(model_dir)
    spec = FeatureSpec.load(folder / FEATURES_FILENAME)
    model = LinearModel.load(folder / MODEL_FILENAME)
    server.check_model(spec, model)
    _loaded.update(spec=spec, model=model)


def declared_rows(query: bytes) -> int | None:
    first_line = query.split(b"\n", 1)[0]
    try:
        rows = json.loads(first_line).get("rows")
    except (ValueError, AttributeError):
        return None
    return rows if isinstance(rows, int) and not isinstance(rows, bool) else None


def answer(query: bytes, max_rows: int) -> bytes | Refusal:
    """Encrypted predictions for a query, or the reason it is refused."""
    spec, model = _loaded["spec"], _loaded["model"]
    assert isinstance(spec, FeatureSpec) and isinstance(model, LinearModel)
    rows = declared_rows(query)
    if rows is not None and rows > max_rows:
        return Refusal(413, "too_many_rows", f"{rows} rows; this service takes at most {max_rows}")
    with tempfile.TemporaryDirectory(prefix="ppml-serve-") as scratch:
        query_path, result_path = Path(scratch) / "query", Path(scratch) / "result"
        query_path.write_bytes(query)
        try:
            server.predict_file(spec, model, query_path, result_path, jobs=1)
        except UnsupportedVersionError as error:
            return Refusal(400, "unsupported_version", error.problem)
        except FileFormatError as error:
            # The problem without the path: the temporary file is nobody's business.
            return Refusal(400, "invalid_query", error.problem)
        except SpecMismatchError as error:
            return Refusal(422, "spec_mismatch", str(error))
        except PlaintextOverflowError as error:
            return Refusal(422, "layout_too_small", str(error))
        except PpmlError as error:
            return Refusal(400, "invalid_query", str(error))
        return result_path.read_bytes()

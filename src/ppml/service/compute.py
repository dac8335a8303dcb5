"""The service's heavy work, run in worker processes so the event loop never blocks.

Each worker loads the feature spec and the model once (and, in the bulk
lane, lowers its own scheduling priority first). A request's query file
goes in; the result bytes, a client error to report, or the description of
a bug come out. Errors are returned as plain values, never raised across
the process boundary, so the event loop decides every status code.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass
from pathlib import Path

from ppml.errors import (
    DeadlineExceededError,
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
    """A refusal the client caused or must wait out: HTTP status, stable code, one-line message."""

    status: int
    code: str
    message: str


@dataclass(frozen=True)
class Failure:
    """An unexpected exception in a worker: a bug. The traceback is for the log only."""

    traceback: str


_loaded: dict[str, object] = {}


def load_model(model_dir: str) -> None:
    """Read the spec and the model, and check they belong together."""
    folder = Path(model_dir)
    spec = FeatureSpec.load(folder / FEATURES_FILENAME)
    model = LinearModel.load(folder / MODEL_FILENAME)
    server.check_model(spec, model)
    _loaded.update(spec=spec, model=model)


def start_worker(model_dir: str, niceness: int) -> None:
    """Worker initializer: lower this process's priority by ``niceness``, then load the model.

    Beside busy normal-priority processes, a process niced by 10 gets about
    a tenth of a core (Linux's weights); alone, a whole one. So bulk queries
    progress without slowing interactive ones much.
    """
    if niceness:
        os.nice(niceness)
    load_model(model_dir)


def ready() -> bool:
    """A no-op task: sent once per worker at start-up so that every process is spawned early."""
    return bool(_loaded)


def answer(query_path: str, result_path: str, deadline: float | None) -> bytes | Refusal | Failure:
    """Encrypted predictions for the query file at ``query_path``, or why there are none.

    ``deadline`` is a :func:`time.monotonic` value; the monotonic clock is the
    same in every process of the machine, so the event loop can set it.
    """
    spec, model = _loaded["spec"], _loaded["model"]
    assert isinstance(spec, FeatureSpec) and isinstance(model, LinearModel)
    try:
        server.predict_file(spec, model, query_path, result_path, jobs=1, deadline=deadline)
        return Path(result_path).read_bytes()
    except PpmlError as error:
        return refusal_for(error, query_path)
    except Exception:  # a bug: reported to the log, never to the client
        return Failure(traceback.format_exc())


def refusal_for(error: PpmlError, query_path: str) -> Refusal:
    """The status, code and message a client gets for ``error``.

    Every deliberate error of ppml maps to a 4xx status (or 503 for a
    deadline); messages never name the service's temporary files.
    """
    if isinstance(error, DeadlineExceededError):
        return Refusal(
            503,
            "deadline_exceeded",
            "the computation did not finish within the service's time limit and was "
            "abandoned; retry later or send fewer rows",
        )
    if isinstance(error, FileFormatError):
        message = error.problem  # the problem without the path
        code = "unsupported_version" if isinstance(error, UnsupportedVersionError) else None
    else:
        message, code = str(error), None
    message = message.replace(query_path, "the query")
    if code is not None:
        return Refusal(400, code, message)
    if isinstance(error, SpecMismatchError):
        return Refusal(422, "spec_mismatch", message)
    if isinstance(error, PlaintextOverflowError):
        return Refusal(422, "layout_too_small", message)
    return Refusal(400, "invalid_query", message)

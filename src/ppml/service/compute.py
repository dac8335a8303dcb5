"""The service's heavy work, run in worker processes so the event loop never blocks.

Each worker loads the feature spec and the model once (and, in the bulk
lane, lowers its own scheduling priority first). A request's query file
goes in; the result bytes, a client error to report, or the description of
a bug come out. Errors are returned as plain values, never raised across
the process boundary, so the event loop decides every status code.
"""

from __future__ import annotations

import importlib
import os
import threading
import traceback
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from ppml.crypto import SERVER_KEY_POLICY
from ppml.crypto.randomness import public_masks
from ppml.errors import (
    ClusterError,
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
from ppml.roles.parallel import Executor
from ppml.wire.messages import read_query_header

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

POOL_KEYS = 4
"""Keys (the most recently answered) whose re-randomisation masks a worker keeps ready."""


class MaskFiller:
    """Computes uniform re-randomisation masks ``r^n`` for recently seen keys while the worker
    is idle, up to ``target`` per key, so that a query's answers cost a multiplication each.

    Masks are computed one at a time and only while no query runs (a query that arrives
    waits for at most the one mask being computed); each is handed out once, as any
    pooled mask (:mod:`ppml.crypto.randomness`). The keys are public; the pools hold
    fresh random values only.
    """

    def __init__(self, target: int) -> None:
        self.target = target
        self._keys: OrderedDict[int, None] = OrderedDict()
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._run, name="mask-filler", daemon=True)
        self._thread.start()

    def busy(self) -> None:
        """A query starts: stop filling after the current mask."""
        self._idle.clear()

    def idle(self, n: int) -> None:
        """The query for modulus ``n`` is answered: keep that key's pool topped up."""
        with self._lock:
            self._keys[n] = None
            self._keys.move_to_end(n)
            while len(self._keys) > POOL_KEYS:
                evicted, _ = self._keys.popitem(last=False)
                public_masks(evicted, None).discard()
            self._idle.set()

    def resume(self) -> None:
        """The query ended (answered or refused): fill again."""
        with self._lock:
            self._idle.set()

    def _next_key(self) -> int | None:
        """The most recent key whose pool is short; with every pool full, stop until the next
        answered query (under the lock, so that a query answered meanwhile is not missed)."""
        with self._lock:
            for n in reversed(self._keys):
                if len(public_masks(n, None)) < self.target:
                    return n
            self._idle.clear()
        return None

    def _run(self) -> None:
        while True:
            self._idle.wait()
            n = self._next_key()
            if n is not None:
                public_masks(n, None).fill(1)


_filler: MaskFiller | None = None
_executor: list[Executor] = []


def load_model(model_dir: str) -> None:
    """Read the spec and the model, and check they belong together."""
    folder = Path(model_dir)
    spec = FeatureSpec.load(folder / FEATURES_FILENAME)
    model = LinearModel.load(folder / MODEL_FILENAME)
    server.check_model(spec, model)
    _loaded.update(spec=spec, model=model)


def start_worker(
    model_dir: str, niceness: int, mask_pool: int = 0, dask: str | None = None
) -> None:
    """Worker initializer: lower this process's priority by ``niceness``, load the model, and
    (with ``mask_pool`` > 0) start computing re-randomisation masks while idle; with ``dask``
    (a scheduler address), send the blocks of every query to that cluster.

    Beside busy normal-priority processes, a process niced by 10 gets about
    a tenth of a core (Linux's weights); alone, a whole one. So bulk queries
    progress without slowing interactive ones much.
    """
    global _filler
    if niceness:
        os.nice(niceness)
    load_model(model_dir)
    if mask_pool > 0:
        _filler = MaskFiller(mask_pool)
    if dask is not None:
        from ppml.roles.cluster import QUIET_CLIENT, DaskExecutor, connect, is_local

        # This process is the service's: its settings may hold for its lifetime (a client
        # opens a new connection, with these settings, when the scheduler comes back).
        importlib.import_module("dask").config.set(QUIET_CLIENT)
        # One connection per worker process, for its lifetime.
        _executor.append(DaskExecutor(connect(dask, timeout="30s"), is_local(dask)))


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
    if _filler is not None:
        _filler.busy()
    try:
        server.predict_file(
            spec,
            model,
            query_path,
            result_path,
            jobs=1,
            deadline=deadline,
            executor=_executor[0] if _executor else None,
        )
        if _filler is not None:
            # The header was verified above (and its key's proof check is cached).
            header = read_query_header(query_path, policy=SERVER_KEY_POLICY)
            _filler.idle(header.public_key.n)
        return Path(result_path).read_bytes()
    except PpmlError as error:
        return refusal_for(error, query_path)
    except Exception:  # a bug: reported to the log, never to the client
        return Failure(traceback.format_exc())
    finally:
        if _filler is not None:
            _filler.resume()


def refusal_for(error: PpmlError, query_path: str) -> Refusal:
    """The status, code and message a client gets for ``error``.

    Every deliberate error of ppml maps to a 4xx status (or 503 for a
    deadline); messages never name the service's temporary files.
    """
    if isinstance(error, ClusterError):
        return Refusal(
            503,
            "cluster_unavailable",
            "the service's compute cluster could not finish the computation; retry later",
        )
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

"""Running a job's tasks on a Dask cluster (``dask.distributed``), as on local processes.

The context of a job (keys, tables, layout, encoded weights) is scattered to
every worker once; each task (a few blocks) is submitted with a reference to
it, at most a few per worker at a time, and results are read back in task
order, so the output is the one the local pool writes and the client's memory
stays flat. A worker lost mid-job is Dask's to handle: the scheduler runs its
tasks again elsewhere (a task is a pure function of its context and blocks,
so a repeat gives the same blocks). A job that cannot finish raises, and the
callers' atomic writers leave no output.

A context that holds a private key (decryption, or encryption with the key
owner's CRT tables) goes only to a cluster on this machine unless the caller
allows more (``allow_private_key``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ppml.errors import ClusterError, SettingError
from ppml.roles.parallel import TASKS_IN_FLIGHT_PER_WORKER, batched, default_jobs

Context = TypeVar("Context")
Task = TypeVar("Task")
Result = TypeVar("Result")

QUIET_CLIENT = {"distributed.admin.low-level-log-length": 0}
"""Dask settings for a ppml client: no developer log of recent messages. Dask keeps the last
thousand messages sent to the scheduler (each up to 1 MB, and ppml's carry blocks), which
would make a job's memory grow with its first thousand submissions."""

LOCAL_ADDRESS = "local"
"""Start a cluster on this machine: one worker process per core."""
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def is_local(address: str) -> bool:
    """Whether a scheduler address is on this machine (``local``, loopback, in-process)."""
    if address == LOCAL_ADDRESS:
        return True
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme in ("inproc", "ipc"):
        return True
    return parts.hostname in _LOCAL_HOSTS


def _run_tasks(
    function: Callable[[Context, Task], Result], context: Context, tasks: list[Task]
) -> list[Result]:
    return [function(context, task) for task in tasks]


@dataclass
class DaskExecutor:
    """Runs ``function(context, task)`` on the workers of a Dask ``Client``.

    ``tasks_per_submit`` tasks travel as one Dask task: a Dask task costs the
    scheduler a few milliseconds, more than one of ppml's (a few blocks).
    """

    client: Any
    local: bool
    allow_private_key: bool = False
    tasks_per_submit: int = 8

    def map(
        self,
        function: Callable[[Context, Task], Result],
        context: Context,
        tasks: Iterable[Task],
        *,
        task_count: int | None = None,
    ) -> Iterator[Result]:
        """``function(context, task)`` of each task, in order."""
        if getattr(context, "holds_private_key", False) and not (
            self.local or self.allow_private_key
        ):
            raise SettingError(
                "this job needs the private key on the workers, and the Dask cluster is not "
                "on this machine: use a local cluster, or allow it explicitly "
                "(--allow-remote-private-key)"
            )
        with _cluster_failures():
            (shared,) = self.client.scatter([context], broadcast=True, hash=False)
            workers = max(1, len(self.client.scheduler_info()["workers"]))
        pending: deque[Any] = deque()
        try:
            for chunk in batched(tasks, self.tasks_per_submit):
                pending.append(self.client.submit(_run_tasks, function, shared, chunk, pure=False))
                if len(pending) >= workers * TASKS_IN_FLIGHT_PER_WORKER:
                    yield from _result(pending.popleft())
            while pending:
                yield from _result(pending.popleft())
        finally:
            for future in pending:
                future.cancel()
            shared.release()


def _result(future: Any) -> list[Any]:
    with _cluster_failures():
        return list(future.result())


@contextlib.contextmanager
def _cluster_failures() -> Iterator[None]:
    """Dask's own failures (a task's workers kept dying, the scheduler went away, a task was
    cancelled) as :class:`ClusterError`; ppml's errors raised in a task pass unchanged."""
    distributed = _distributed()
    try:
        yield
    except (
        distributed.KilledWorker,
        distributed.comm.CommClosedError,
        concurrent.futures.CancelledError,
        asyncio.CancelledError,
        TimeoutError,
    ) as error:
        problem = str(error) or type(error).__name__
        raise ClusterError(f"the Dask cluster could not finish the job: {problem}") from None


def _distributed() -> Any:
    try:
        # Loaded by name: only the commands given --dask need it (the [dask] extra).
        return importlib.import_module("distributed")
    except ImportError:
        raise SettingError(
            "--dask needs the 'distributed' package: pip install 'ppml[dask]'"
        ) from None


@contextlib.contextmanager
def local_cluster(workers: int | None = None) -> Iterator[str]:
    """A Dask cluster on this machine (one single-threaded worker process per core by
    default) for the duration of the block; its scheduler's address."""
    with _distributed().LocalCluster(
        n_workers=workers or default_jobs(),
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    ) as cluster:
        yield cluster.scheduler_address


@contextlib.contextmanager
def dask_executor(address: str, *, allow_private_key: bool = False) -> Iterator[DaskExecutor]:
    """A Dask executor for the scheduler at ``address`` (``tcp://host:8786``), or for a cluster
    started here with one worker process per core (``local``), closed on exit."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(importlib.import_module("dask").config.set(QUIET_CLIENT))
        scheduler = stack.enter_context(local_cluster()) if address == LOCAL_ADDRESS else address
        client = stack.enter_context(connect(scheduler, shown_as=address))
        yield DaskExecutor(client, is_local(address), allow_private_key)


def connect(address: str, *, timeout: str = "10s", shown_as: str | None = None) -> Any:
    """A Dask ``Client`` of the scheduler at ``address``; :class:`SettingError` if it cannot
    be reached in ``timeout``."""
    try:
        return _distributed().Client(address, timeout=timeout)
    except (OSError, TimeoutError) as error:
        where = shown_as or address
        raise SettingError(f"cannot reach the Dask scheduler at {where}: {error}") from None

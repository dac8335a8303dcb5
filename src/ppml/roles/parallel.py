"""Running block-sized tasks in order, with bounded memory, wherever they run.

A job is a plain function of a *context* (what all of its tasks share: keys,
tables, layout, encoded weights; picklable, shipped once per worker) and of
one task (a few blocks). An :class:`Executor` runs it: :class:`InProcess`,
:class:`LocalPool` (processes on this machine, forked or spawned) or, in
:mod:`ppml.roles.cluster`, a Dask cluster. Results come back in task order, so
output is identical whatever runs the tasks; at most a few tasks per worker
are in flight, so memory does not grow with the input.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

Task = TypeVar("Task")
Result = TypeVar("Result")

TASKS_IN_FLIGHT_PER_WORKER = 3


class ProgressReporter(Protocol):
    """Receives the size of a job once it is known, then its progress in rows."""

    def start(self, total: int) -> None:
        """The job has ``total`` rows."""

    def advance(self, rows: int) -> None:
        """``rows`` more rows are done."""


def default_jobs() -> int:
    """Every core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not every platform has affinity
        return max(1, os.cpu_count() or 1)


Context = TypeVar("Context")


class Executor(Protocol):
    """Runs ``function(context, task)`` for every task, results in task order.

    ``context`` (keys, tables, layout, encoded weights: what every task of a job
    shares) is shipped once per worker, never once per task; at most a few tasks
    per worker are in flight, so memory does not grow with the number of tasks.
    """

    def map(
        self,
        function: Callable[[Context, Task], Result],
        context: Context,
        tasks: Iterable[Task],
        *,
        task_count: int | None = None,
    ) -> Iterator[Result]:
        """``function(context, task)`` of each task, in order."""
        ...


class InProcess:
    """The tasks one after the other, in this process (and thread)."""

    def map(
        self,
        function: Callable[[Context, Task], Result],
        context: Context,
        tasks: Iterable[Task],
        *,
        task_count: int | None = None,
    ) -> Iterator[Result]:
        """``function(context, task)`` of each task, in order."""
        for task in tasks:
            yield function(context, task)


# The context of the pool this worker process belongs to (set by its initializer).
_worker_context: list[Any] = []


def _install_context(context: Any) -> None:
    _worker_context[:] = [context]


def _call(function: Callable[[Any, Task], Result], task: Task) -> Result:
    return function(_worker_context[0], task)


@dataclass(frozen=True)
class LocalPool:
    """``jobs`` worker processes on this machine.

    With ``fork`` (the default where it exists) the workers inherit the
    context, precomputed tables included, without copying; with ``spawn`` it
    is pickled to each worker once. Tasks and results are pickled either way.
    """

    jobs: int
    start_method: str = "fork"

    def map(
        self,
        function: Callable[[Context, Task], Result],
        context: Context,
        tasks: Iterable[Task],
        *,
        task_count: int | None = None,
    ) -> Iterator[Result]:
        """``function(context, task)`` of each task, in order."""
        if self.jobs < 1:
            raise ValueError("jobs must be at least 1")
        workers = self.jobs if task_count is None else min(self.jobs, task_count)
        if workers <= 1:
            yield from InProcess().map(function, context, tasks)
            return
        start = multiprocessing.get_context(self.start_method)
        with ProcessPoolExecutor(workers, start, _install_context, (context,)) as pool:
            pending: deque[Future[Result]] = deque()
            for task in tasks:
                pending.append(pool.submit(_call, function, task))
                if len(pending) >= workers * TASKS_IN_FLIGHT_PER_WORKER:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()


def ordered_map(
    function: Callable[[Context, Task], Result],
    context: Context,
    tasks: Iterable[Task],
    *,
    jobs: int,
    task_count: int | None = None,
    executor: Executor | None = None,
) -> Iterator[Result]:
    """``function(context, task)`` of each task, in order: on ``executor`` if given, else on
    ``jobs`` local processes (in this process for one job or one task)."""
    chosen = executor if executor is not None else LocalPool(jobs)
    return chosen.map(function, context, tasks, task_count=task_count)


def batched(items: Iterable[Task], size: int) -> Iterator[list[Task]]:
    """Consecutive lists of ``size`` items (the last may be shorter)."""
    batch: list[Task] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch

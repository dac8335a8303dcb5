"""Running block-sized tasks on every core, in order, with bounded memory.

Workers are forked after the parent has built its precomputed tables, so
they share them instead of rebuilding them; results come back in task order,
so output is identical whatever the number of workers. At most a few tasks
per worker are in flight, so memory does not grow with the input.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
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


class WorkerState(threading.local):
    """What an initializer prepares for the task function: per process in a pool, and per
    thread when the work runs in the calling process, so that concurrent calls from
    several threads (with other keys, say) never see each other's state."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}


def ordered_map(
    function: Callable[[Task], Result],
    tasks: Iterable[Task],
    *,
    jobs: int,
    initializer: Callable[..., None],
    initargs: tuple[Any, ...],
    task_count: int | None = None,
) -> Iterator[Result]:
    """``map(function, tasks)`` on ``jobs`` processes, results in task order.

    ``initializer(*initargs)`` prepares each worker (and this process, when
    the work runs here because ``jobs`` is 1 or there is a single task).
    """
    if jobs < 1:
        raise ValueError("jobs must be at least 1")
    workers = jobs if task_count is None else min(jobs, task_count)
    if workers <= 1:
        initializer(*initargs)
        yield from map(function, tasks)
        return
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, context, initializer, initargs) as pool:
        pending: deque[Future[Result]] = deque()
        for task in tasks:
            pending.append(pool.submit(function, task))
            if len(pending) >= workers * TASKS_IN_FLIGHT_PER_WORKER:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


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

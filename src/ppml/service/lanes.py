"""Lanes of worker processes: admission by cost, and a fair queue in front of each pool.

A lane is a process pool and the accounting in front of it. A request is
*admitted* once its header is priced (costs.py): its cost counts as pending
until its answer is sent, from the first byte of its body to the last
block computed. Admission is refused when the lane's pending cost would
pass its cap (the service is full: 503) or when the client already holds
more than its share of it (the client is asking too much at once: 429).

Admitted requests wait for a worker in start-time fair queueing order: a
client's request is tagged ``max(now, the end of its previous request)``
in virtual time, where time advances by cost, and the smallest tag runs
next. Clients with a backlog are served in turn in proportion to cost, so
one client's many requests never make another's single request wait for
all of them. A running task cannot be interrupted (the pool has no way to
stop it); the compute deadline the worker checks between blocks bounds it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, TypeVar

from ppml.service import compute

log = logging.getLogger("ppml.service")

Result = TypeVar("Result")

INITIAL_SECONDS_PER_UNIT = 0.13e-3
"""The reference machine's speed, until the lane has measured its own."""

MAX_RETRY_AFTER_S = 300


class LaneFullError(Exception):
    """Admission refused: ``status`` 503 (the lane is full) or 429 (the client's share is used)."""

    def __init__(self, status: int, code: str, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


class QueueTimeoutError(Exception):
    """The request's deadline passed while it waited for a worker."""


@dataclass
class Ticket:
    """One admitted request: what it holds of its lane until :meth:`Lane.release`."""

    client: str
    cost: int
    released: bool = False
    seconds: float = 0.0
    """How long its computation took in a worker, queueing excluded."""


class Lane:
    """A pool of ``workers`` processes at ``niceness``, with a cap on pending cost."""

    def __init__(
        self,
        name: str,
        *,
        workers: int,
        niceness: int,
        max_pending_cost: int,
        client_share: float,
        model_dir: str,
        mask_pool: int = 0,
        dask: str | None = None,
    ) -> None:
        self.name, self.workers, self.niceness = name, workers, niceness
        self.max_pending_cost, self.client_share = max_pending_cost, client_share
        self.model_dir, self.mask_pool, self.dask = model_dir, mask_pool, dask
        self.pending_cost = 0
        self.seconds_per_unit = INITIAL_SECONDS_PER_UNIT
        self._pool: Executor | None = None
        # Both dictionaries hold only clients with pending work in this lane.
        self._client_cost: dict[str, int] = {}
        self._finish_tag: dict[str, float] = {}
        self._virtual_time = 0.0
        self._running = 0
        self._waiting: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    # Pool ------------------------------------------------------------------

    def start(self, executor: Executor | None = None) -> None:
        """Start the worker processes (spawned: they share nothing with the event loop).

        Tests may pass an ``executor`` of their own instead.
        """
        self._pool = executor or ProcessPoolExecutor(
            self.workers,
            multiprocessing.get_context("spawn"),
            compute.start_worker,
            (self.model_dir, self.niceness, self.mask_pool, self.dask),
        )

    async def warm_up(self) -> None:
        """Have every worker start and load the model now, not at the first request."""
        loop = asyncio.get_running_loop()
        pool = self._require_pool()
        await asyncio.gather(
            *(loop.run_in_executor(pool, compute.ready) for _ in range(self.workers))
        )

    def stop(self) -> None:
        """Stop the workers; a computation still running is abandoned, not waited for."""
        if self._pool is not None:
            # Waiting for idle workers lets them exit cleanly (no leaked semaphores).
            self._pool.shutdown(wait=not self._running, cancel_futures=True)
            self._pool = None

    def _require_pool(self) -> Executor:
        if self._pool is None:
            raise RuntimeError(f"the {self.name} lane is not started")
        return self._pool

    # Admission -------------------------------------------------------------

    def retry_after(self) -> int:
        """Seconds after which the lane's pending work should be done, as a hint to clients."""
        seconds = self.pending_cost * self.seconds_per_unit / self.workers
        return max(1, min(MAX_RETRY_AFTER_S, math.ceil(seconds)))

    def admit(self, client: str, cost: int) -> Ticket:
        """Count ``cost`` as pending for ``client``, or raise :class:`LaneFullError`."""
        held = self._client_cost.get(client, 0)
        # A client with nothing pending may always send one request the
        # per-request cap allows; beyond that it holds at most its share.
        if held and held + cost > self.client_share * self.max_pending_cost:
            raise LaneFullError(
                429,
                "too_many_pending",
                f"this client already has {held} cost units pending in the {self.name} lane; "
                "wait for its answers before sending more",
                self.retry_after(),
            )
        if self.pending_cost and self.pending_cost + cost > self.max_pending_cost:
            raise LaneFullError(
                503,
                "overloaded",
                f"the service has too much {self.name} work pending; retry later",
                self.retry_after(),
            )
        self.pending_cost += cost
        self._client_cost[client] = held + cost
        return Ticket(client, cost)

    def release(self, ticket: Ticket) -> None:
        """The request is over (answered, refused or abandoned): free what it held."""
        if ticket.released:
            return
        ticket.released = True
        self.pending_cost -= ticket.cost
        left = self._client_cost[ticket.client] - ticket.cost
        if left:
            self._client_cost[ticket.client] = left
        else:
            # Nothing pending: the client's place in the fair queue is forgotten
            # too, so these dictionaries hold only clients with pending work.
            del self._client_cost[ticket.client]
            self._finish_tag.pop(ticket.client, None)

    # Fair queue ------------------------------------------------------------

    async def run(
        self, ticket: Ticket, deadline: float, function: Callable[..., Result], *args: Any
    ) -> Result:
        """Run ``function(*args)`` in a worker when ``ticket``'s turn comes.

        Raises :class:`QueueTimeoutError` if ``deadline`` (``time.monotonic()``)
        passes first, and :class:`BrokenProcessPool` if a worker died (the
        pool is then replaced for the next requests).
        """
        await self._turn(ticket, deadline)
        started = time.monotonic()
        try:
            loop = asyncio.get_running_loop()
            pool = self._require_pool()
            try:
                return await loop.run_in_executor(pool, function, *args)
            except BrokenProcessPool:
                log.error("a %s worker process died; restarting the lane's pool", self.name)
                if self._pool is pool:
                    pool.shutdown(wait=False, cancel_futures=True)
                    self.start()
                raise
        finally:
            ticket.seconds = time.monotonic() - started
            self._next()

    async def _turn(self, ticket: Ticket, deadline: float) -> None:
        start = max(self._virtual_time, self._finish_tag.get(ticket.client, 0.0))
        self._finish_tag[ticket.client] = start + ticket.cost
        if self._running < self.workers and not self._waiting:
            self._running += 1
            self._virtual_time = start
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (start, next(self._order), turn))
        try:
            await asyncio.wait_for(asyncio.shield(turn), max(deadline - time.monotonic(), 0))
        except TimeoutError:
            if turn.done() and not turn.cancelled():
                self._next()  # granted at the last moment: hand the worker on
            turn.cancel()
            raise QueueTimeoutError from None
        except BaseException:
            if turn.done() and not turn.cancelled():
                self._next()
            turn.cancel()
            raise

    def _next(self) -> None:
        """A worker is free: give it to the waiting request with the smallest start tag."""
        self._running -= 1
        while self._waiting:
            start, _, turn = heapq.heappop(self._waiting)
            if turn.done():  # given up while waiting
                continue
            self._running += 1
            self._virtual_time = start
            turn.set_result(None)
            return

    def learn_speed(self, ticket: Ticket) -> None:
        """``ticket``'s query was answered: refine the Retry-After hint with its speed.

        Only answered queries count: a refusal before any work (a bad key, a
        spec mismatch) would make the lane look faster than it is.
        """
        if ticket.cost >= 100 and ticket.seconds > 0.01:
            measured = ticket.seconds / ticket.cost
            self.seconds_per_unit = 0.8 * self.seconds_per_unit + 0.2 * measured

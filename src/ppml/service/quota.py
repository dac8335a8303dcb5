"""Per-client quotas over a moving window, in memory bounded whatever the number of clients.

Each quota ("100000/hour") is counted in :data:`SEGMENTS` segments of its
period: a request is allowed when what the client used in the current
segment and the ``SEGMENTS - 1`` before it, plus the request's own amount,
stays within the quota. A client therefore gets at most the quota in any
span of ``(SEGMENTS - 1) / SEGMENTS`` of the period (55 minutes of an hour),
and what it used stops counting a period later, segment by segment.

Every identity costs the same few hundred bytes whatever it does, and at most
``max_identities`` are kept: a new identity beyond that evicts the one seen
least recently, whose next request starts a fresh quota. Eviction gives a
client nothing it could not get from a fresh identity; the cap is what keeps
a flood of identities from growing the service's memory without end.
"""

from __future__ import annotations

import time
from array import array
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# Only the notation is taken from `limits`: its storages keep every client
# forever (and a moving window keeps one entry per unit counted).
from limits import parse as parse_limit

SEGMENTS = 12


@dataclass(frozen=True)
class Quota:
    """``amount`` per ``period`` seconds."""

    amount: int
    period: float
    text: str

    @classmethod
    def parse(cls, text: str) -> Quota:
        """A quota written like "10000/hour" or "500/30 seconds"; ``ValueError`` if not."""
        item = parse_limit(text)
        if item.amount < 1 or item.get_expiry() <= 0:
            raise ValueError(f"{text!r}: a quota needs a positive amount and period")
        return cls(item.amount, float(item.get_expiry()), text)

    @property
    def segment_seconds(self) -> float:
        """Length of one counting segment."""
        return self.period / SEGMENTS


class QuotaTable:
    """Usage of a fixed list of quotas per client identity; at most ``max_identities`` kept.

    ``clock`` is :func:`time.monotonic` unless a test steps time itself.
    """

    def __init__(
        self,
        quotas: Sequence[Quota],
        max_identities: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_identities < 1:
            raise ValueError("max_identities must be at least 1")
        self.quotas = tuple(quotas)
        self.max_identities = max_identities
        self._clock = clock
        # Per identity one flat array: for each quota, the index of its latest
        # segment then SEGMENTS counts (a ring indexed by segment % SEGMENTS).
        # One small array per identity keeps the cost per client fixed and low.
        self._usage: OrderedDict[str, array[int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._usage)

    def refusal(self, identity: str, amounts: Sequence[int]) -> tuple[int, float] | None:
        """``None`` if ``amounts`` fit every quota now, else (which quota, seconds to wait)."""
        now = self._clock()
        usage = self._usage.get(identity)
        for index, (quota, amount) in enumerate(zip(self.quotas, amounts, strict=True)):
            if usage is None:
                if amount > quota.amount:
                    return index, quota.period
                continue
            counts = self._counts(usage, index, now)
            wait = _wait(quota, counts, amount, now)
            if wait is not None:
                return index, wait
        return None

    def charge(self, identity: str, amounts: Sequence[int]) -> None:
        """Count ``amounts`` against ``identity``'s quotas (call :meth:`refusal` first)."""
        now = self._clock()
        usage = self._record(identity, now)
        for index, (quota, amount) in enumerate(zip(self.quotas, amounts, strict=True)):
            self._counts(usage, index, now)
            segment = int(now // quota.segment_seconds)
            usage[index * (SEGMENTS + 1) + 1 + segment % SEGMENTS] += amount

    def _record(self, identity: str, now: float) -> array[int]:
        usage = self._usage.get(identity)
        if usage is not None:
            self._usage.move_to_end(identity)
            return usage
        while len(self._usage) >= self.max_identities:
            self._usage.popitem(last=False)
        usage = array("q", bytes(8 * (SEGMENTS + 1) * len(self.quotas)))
        for index, quota in enumerate(self.quotas):
            usage[index * (SEGMENTS + 1)] = int(now // quota.segment_seconds)
        self._usage[identity] = usage
        return usage

    def _counts(self, usage: array[int], index: int, now: float) -> list[int]:
        """The quota's counts, oldest segment first, after expiring what has left the window."""
        quota = self.quotas[index]
        base = index * (SEGMENTS + 1)
        segment = int(now // quota.segment_seconds)
        latest = usage[base]
        if segment > latest:
            for passed in range(latest + 1, min(segment, latest + SEGMENTS) + 1):
                usage[base + 1 + passed % SEGMENTS] = 0
            usage[base] = segment
        ring = usage[base + 1 : base + 1 + SEGMENTS]
        start = (segment + 1) % SEGMENTS
        return list(ring[start:]) + list(ring[:start])


def _wait(quota: Quota, counts: list[int], amount: int, now: float) -> float | None:
    """Seconds until ``amount`` fits, given the counts oldest first; ``None`` if it fits now."""
    used = sum(counts)
    if used + amount <= quota.amount:
        return None
    if amount > quota.amount:
        return quota.period
    segment_seconds = quota.segment_seconds
    end_of_segment = (int(now // segment_seconds) + 1) * segment_seconds
    for passed, count in enumerate(counts):
        used -= count
        if used + amount <= quota.amount:
            return end_of_segment + passed * segment_seconds - now
    return quota.period  # not reached: once every segment has passed, used is 0

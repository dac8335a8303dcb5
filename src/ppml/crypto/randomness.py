"""Sources of encryption randomness: the factor ``r^n mod n^2`` that hides a plaintext.

Two modes, each with a fast path for the key owner:

- ``standard``: a fresh ``r^n`` with r uniform in Z*_n (Paillier's original
  scheme; security rests on the decisional composite residuosity assumption,
  DCRA). The key owner computes it modulo p^2 and q^2 and recombines (CRT).
- ``djn``: ``h_s^a`` where ``h_s = h^n mod n^2`` is a fixed n-th residue
  derived from n alone (h = -x^2 mod n with x = H(n) hashed onto Z*_n, see
  :func:`djn_base`) and a is a uniformly random exponent of ceil(|n|/2) bits
  (Damgard, Jurik and Nielsen, "A generalization of Paillier's public-key
  system with applications to electronic voting", 2010). Security rests on
  DCRA plus the assumption that such short exponents of h_s are
  indistinguishable from uniform n-th residues. With a fixed base, ``h_s^a``
  comes from a precomputed table of ``h_s^(d * 256^i)`` in one multiplication
  per byte of a; the key owner keeps one table modulo p^2 and one modulo q^2.
"""

from __future__ import annotations

import os
import secrets
import weakref
from collections import deque
from functools import lru_cache
from typing import Any

import gmpy2

from ppml.crypto.hashing import hash_to_unit
from ppml.crypto.primes import random_unit
from ppml.errors import InvalidKeyError


class FixedBaseTable:
    """``base^e mod modulus`` for exponents of up to ``exponent_bits`` bits, by table lookup.

    Row i holds ``base^(d * 256^i)`` for every byte value d, so a power costs
    one modular multiplication per non-zero byte of the exponent.
    """

    __slots__ = ("_modulus", "_rows", "_width")

    def __init__(self, base: Any, modulus: Any, exponent_bits: int) -> None:
        self._modulus = gmpy2.mpz(modulus)
        self._width = (exponent_bits + 7) // 8
        rows = []
        step = gmpy2.mpz(base) % self._modulus
        for _ in range(self._width):
            row = [gmpy2.mpz(1), step]
            for _ in range(254):
                row.append(row[-1] * step % self._modulus)
            rows.append(row)
            step = row[-1] * step % self._modulus  # base^(256^(i+1))
        self._rows = rows

    @property
    def exponent_bits(self) -> int:
        """The largest exponent length the table serves."""
        return self._width * 8

    def power(self, exponent: int) -> Any:
        """``base^exponent mod modulus`` for ``0 <= exponent < 2^exponent_bits``."""
        modulus, rows = self._modulus, self._rows
        result = gmpy2.mpz(1)
        for row, digit in zip(rows, exponent.to_bytes(self._width, "little"), strict=True):
            if digit:
                result = result * row[digit] % modulus
        return result


def djn_exponent_bits(n: int) -> int:
    """Length of the random exponent in DJN mode: ceil(|n| / 2)."""
    return (int(n).bit_length() + 1) // 2


DJN_BASE_TAG = b"ppml-djn-base-v1\x00"
"""Domain tag of the hash that derives a key's DJN base from its modulus."""


@lru_cache(maxsize=64)
def djn_base(n: int) -> int:
    """The DJN base of modulus ``n``: ``h_s = (-x^2 mod n)^n mod n^2`` with ``x = H(n)``.

    x is :func:`~ppml.crypto.hashing.hash_to_unit` of n under
    :data:`DJN_BASE_TAG`, so the base is a public function of n: nobody
    chooses it, a key's id (a hash of n) covers it, and a key file need not
    (and since version 3 may not) store it. Deterministic and cached.
    """
    mn = gmpy2.mpz(n)
    x = gmpy2.mpz(hash_to_unit(DJN_BASE_TAG, int(n)))
    h = (-x * x) % mn
    h_s = int(gmpy2.powmod(h, mn, mn * mn))
    check_djn_base(n, h_s)
    return h_s


def check_djn_base(n: int, h_s: int) -> None:
    """Raise :class:`InvalidKeyError` unless ``h_s`` is a unit modulo n^2 with h_s^2 != 1.

    A base with h_s^2 = 1 (mod n^2), such as -1, makes every DJN mask h_s^a
    equal to +1 or -1, so every ciphertext under it is readable by anyone.
    Derived bases pass unless n is degenerate; stored bases of old key files
    are checked with this too (and then ignored).
    """
    n, h_s = int(n), int(h_s)
    nsquare = n * n
    if not 1 < h_s < nsquare or gmpy2.gcd(h_s, n) != 1:
        raise InvalidKeyError("the DJN base h_s must be a unit modulo n^2 other than 1")
    if h_s * h_s % nsquare == 1:
        raise InvalidKeyError(
            "the DJN base h_s satisfies h_s^2 = 1 (mod n^2): every encryption under it "
            "could be read by anyone"
        )


# A table costs about as much as this many exponentiations; below it, plain
# exponentiation of the DJN base is faster.
TABLE_BREAK_EVEN = 40


_ALL_POOLS: weakref.WeakSet[MaskPool] = weakref.WeakSet()


def _discard_inherited_masks() -> None:
    # A forked child gets a copy of every pool; using it would reuse the
    # parent's masks, so children start with empty pools.
    for pool in list(_ALL_POOLS):
        pool.discard()


os.register_at_fork(after_in_child=_discard_inherited_masks)


class MaskPool:
    """Masks computed ahead of time (an offline phase), each handed out exactly once.

    A long-running customer or server fills the pool while idle; encryptions
    and re-randomisations then cost one multiplication each. Masks are
    independent and never reused, so the distribution is unchanged.
    """

    def __init__(self) -> None:
        self._pool: deque[Any] = deque()
        _ALL_POOLS.add(self)

    def __getstate__(self) -> dict[str, Any]:
        # A copy sent to another process starts empty: two processes holding the same
        # precomputed masks would use them twice.
        state = self.__dict__.copy()
        state["_pool"] = deque()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        _ALL_POOLS.add(self)

    def discard(self) -> None:
        """Drop every precomputed mask."""
        self._pool.clear()

    def fill(self, count: int) -> None:
        """Precompute ``count`` more masks."""
        self._pool.extend(self._compute() for _ in range(count))

    def __len__(self) -> int:
        return len(self._pool)

    def take(self, count: int) -> list[Any]:
        """Up to ``count`` precomputed masks, removed from the pool (to hand to a worker)."""
        taken: list[Any] = []
        while len(taken) < count:
            try:  # popleft is atomic: threads sharing a pool never take the same mask
                taken.append(self._pool.popleft())
            except IndexError:
                break
        return taken

    def add(self, masks: list[Any]) -> None:
        """Masks another process took from its pool for this one (each used once, here)."""
        self._pool.extend(masks)

    def mask(self) -> Any:
        """A fresh mask: from the pool if one is ready, else computed now."""
        try:
            return self._pool.popleft()
        except IndexError:
            return self._compute()

    def _compute(self) -> Any:
        raise NotImplementedError


class PublicMasks(MaskPool):
    """Randomness for anyone holding the public key (encryption and re-randomisation)."""

    def __init__(self, n: int, h_s: int | None) -> None:
        super().__init__()
        self._n = gmpy2.mpz(n)
        self._nsquare = self._n * self._n
        self._h_s = None if h_s is None else gmpy2.mpz(h_s)
        self._bits = djn_exponent_bits(n)
        self._table: FixedBaseTable | None = None
        self._served = 0

    def prepare(self, expected_masks: int) -> None:
        """Build the DJN table now if that many masks make it pay off."""
        if self._h_s is not None and self._table is None and expected_masks >= TABLE_BREAK_EVEN:
            self._table = FixedBaseTable(self._h_s, self._nsquare, self._bits)

    def _compute(self) -> Any:
        """A fresh ``r^n mod n^2`` (standard) or ``h_s^a mod n^2`` (djn)."""
        if self._h_s is None:
            return gmpy2.powmod(random_unit(self._n), self._n, self._nsquare)
        self._served += 1
        self.prepare(self._served)
        exponent = secrets.randbits(self._bits)
        if self._table is None:
            return gmpy2.powmod(self._h_s, exponent, self._nsquare)
        return self._table.power(exponent)


class OwnerMasks(MaskPool):
    """Randomness computed modulo p^2 and q^2, for the holder of the private key."""

    def __init__(self, p: int, q: int, h_s: int | None) -> None:
        super().__init__()
        mp, mq = gmpy2.mpz(p), gmpy2.mpz(q)
        self._n = mp * mq
        self._psquare, self._qsquare = mp * mp, mq * mq
        self._qsquare_inverse = gmpy2.invert(self._qsquare, self._psquare)
        # Exponent n reduced modulo the group orders p(p-1) and q(q-1).
        self._exp_p = self._n % (mp * (mp - 1))
        self._exp_q = self._n % (mq * (mq - 1))
        self._bits = djn_exponent_bits(int(self._n))
        self._h_s = None if h_s is None else gmpy2.mpz(h_s)
        self._tables: tuple[FixedBaseTable, FixedBaseTable] | None = None
        self._served = 0

    def prepare(self, expected_masks: int) -> None:
        """Build the DJN tables now if that many masks make them pay off."""
        if self._h_s is not None and self._tables is None and expected_masks >= TABLE_BREAK_EVEN:
            self._tables = (
                FixedBaseTable(self._h_s, self._psquare, self._bits),
                FixedBaseTable(self._h_s, self._qsquare, self._bits),
            )

    def _compute(self) -> Any:
        """The same distribution as the public masks, several times faster."""
        if self._h_s is None:
            r = random_unit(self._n)
            mask_p = gmpy2.powmod(r, self._exp_p, self._psquare)
            mask_q = gmpy2.powmod(r, self._exp_q, self._qsquare)
        else:
            self._served += 1
            self.prepare(self._served)
            exponent = secrets.randbits(self._bits)
            if self._tables is None:
                mask_p = gmpy2.powmod(self._h_s, exponent, self._psquare)
                mask_q = gmpy2.powmod(self._h_s, exponent, self._qsquare)
            else:
                mask_p = self._tables[0].power(exponent)
                mask_q = self._tables[1].power(exponent)
        # Chinese remaindering from (mod p^2, mod q^2) to mod n^2.
        return mask_q + self._qsquare * ((mask_p - mask_q) * self._qsquare_inverse % self._psquare)


@lru_cache(maxsize=16)
def public_masks(n: int, h_s: int | None) -> PublicMasks:
    """The (cached) public randomness source of a key; tables are built once per process."""
    return PublicMasks(n, h_s)


@lru_cache(maxsize=16)
def owner_masks(p: int, q: int, h_s: int | None) -> OwnerMasks:
    """The (cached) key owner's randomness source."""
    return OwnerMasks(p, q, h_s)

"""Hashing onto Z*_n: public values that nobody chooses, derived from a modulus.

Two things are derived from n this way: the DJN base of a key
(:func:`ppml.crypto.randomness.djn_base`) and the challenges of its modulus
proof (:mod:`ppml.crypto.proofs`). Each use has its own domain tag, so the
outputs of one can never be replayed as outputs of the other.

The construction, byte for byte (docs/key-files.md gives it too, so that
another implementation can reproduce the known-answer vectors):

    L       = ceil((|n| + 128) / 8)                  bytes of output
    N       = n as ceil(|n| / 8) big-endian bytes    (|n| is n's bit length)
    C       = counter as 4 big-endian bytes, counter = 0, 1, 2, ...
    value   = int.from_bytes(SHAKE-256(tag || N || C), first L bytes, "big") mod n

The first counter whose value is a unit modulo n (gcd(value, n) = 1, so
never 0) gives the result. The 128 extra bits make the result
statistically close to uniform on Z_n (distance below 2^-128), hence close
to uniform on Z*_n once non-units are skipped.

This module deliberately imports nothing from the rest of ppml, so that the
derivations it defines can be reviewed, and reimplemented, on their own.
"""

from __future__ import annotations

import hashlib
import math

COUNTER_BYTES = 4
"""Width of the retry counter, in bytes."""

EXTRA_BITS = 128
"""Output bits beyond |n|, so that reduction modulo n leaves no measurable bias."""


def modulus_bytes(n: int) -> bytes:
    """``n`` as big-endian bytes of the minimal length ``ceil(|n| / 8)``."""
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


def hash_to_unit(tag: bytes, n: int) -> int:
    """Hash ``(tag, n)`` onto an element of Z*_n (a unit modulo n), deterministically.

    ``tag`` separates the uses of this function; a use with several outputs
    (one per round of a proof, say) puts the round number into its tag.
    Raises :class:`ValueError` if n is below 3. For a modulus without small
    prime factors the first counter gives a unit with overwhelming
    probability; running through all 2^32 counters without one cannot happen
    in practice, and would be reported rather than looped on.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 3:
        raise ValueError("hashing onto Z*_n needs an integer modulus n > 2")
    prefix = bytes(tag) + modulus_bytes(n)
    output_bytes = (n.bit_length() + EXTRA_BITS + 7) // 8
    for counter in range(1 << (8 * COUNTER_BYTES)):
        digest = hashlib.shake_256(prefix + counter.to_bytes(COUNTER_BYTES, "big"))
        value = int.from_bytes(digest.digest(output_bytes), "big") % n
        if math.gcd(value, n) == 1:
            return value
    raise ValueError("no counter value hashes onto a unit modulo n")  # pragma: no cover

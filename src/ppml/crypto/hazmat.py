"""Hazardous materials: Paillier operations that skip the checks the safe layer makes.

Everything here trusts its caller. :func:`trusted_ciphertext` wraps an
integer without validating it, :func:`encrypt_with_mask` uses whatever mask
it is handed, and :func:`weighted_sum` computes a raw homomorphic scalar
product with no overflow accounting. The roles use them on values they have
already validated (ciphertexts read through :mod:`ppml.wire`, masks from
:mod:`ppml.crypto.randomness`) and inside bounds they have already proven.
Anything else should use :class:`~ppml.crypto.PublicKey`,
:class:`~ppml.crypto.Ciphertext` and :mod:`ppml.encoding`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gmpy2

from ppml.crypto.paillier import Ciphertext, PublicKey, _encrypt_with_mask
from ppml.crypto.primes import random_unit

WINDOW_BITS = 3
"""Exponent bits consumed per step of the multi-exponentiation."""


def trusted_ciphertext(public_key: PublicKey, value: Any) -> Ciphertext:
    """Wrap ``value`` as a ciphertext of ``public_key`` without checking 0 < c < n^2, gcd(c, n)."""
    return Ciphertext._trusted(public_key, value)


def encrypt_with_mask(public_key: PublicKey, plaintext: int, mask: Any) -> Ciphertext:
    """Encrypt a raw plaintext ``0 <= plaintext < n`` with a precomputed mask.

    The mask must be a fresh random n-th residue from :mod:`ppml.crypto.randomness`,
    used once: a reused or forged mask breaks semantic security. Batch
    encryption calls this with masks from a precomputed pool.
    """
    return _encrypt_with_mask(public_key, plaintext, mask)


def exponent_bits_for(weights: Sequence[int]) -> int:
    """The exponent width :func:`weighted_sum` needs for these weights (at least one window)."""
    return max(WINDOW_BITS, *(abs(w).bit_length() for w in weights))


def weighted_sum(
    ciphertexts: Sequence[Ciphertext], weights: Sequence[int], exponent_bits: int
) -> Ciphertext:
    """The encryption of ``sum_j weights[j] * m_j`` (exact modulo n, unchecked).

    The sequence of big-integer operations depends only on the number of
    ciphertexts and on ``exponent_bits``, never on the weights' values or
    signs: positive and negative terms go to two accumulators that are both
    squared at every step (one inversion at the end, always), and every
    window of every exponent costs one multiplication, a window of zeros
    included (by a dummy product). So the time of a prediction tells an
    observer the number of features, the key size and ``exponent_bits``
    (which the caller fixes per model), and nothing about individual
    weights. Interleaved fixed windows (Straus) share the squarings between
    all terms.
    """
    if len(ciphertexts) != len(weights) or not ciphertexts:
        raise ValueError("weighted_sum needs one weight per ciphertext, and at least one")
    if any(abs(w).bit_length() > exponent_bits for w in weights):
        raise ValueError(f"a weight is longer than the declared {exponent_bits} exponent bits")
    public_key = ciphertexts[0].public_key
    for ciphertext in ciphertexts[1:]:
        ciphertexts[0]._same_key(ciphertext)
    modulus = public_key.nsquare
    size = 1 << WINDOW_BITS
    tables = []
    for ciphertext in ciphertexts:
        # row[d - 1] = c^d; a zero window multiplies the dummy by row[0] instead.
        row = [ciphertext._value]
        for _ in range(size - 2):
            row.append(row[-1] * ciphertext._value % modulus)
        tables.append(row)
    terms = [(row, abs(w), 1 if w < 0 else 0) for row, w in zip(tables, weights, strict=True)]
    windows = -(-exponent_bits // WINDOW_BITS)
    mask = size - 1
    # accumulators[0] gathers the positive terms, accumulators[1] the negative ones.
    # Both start from the same random full-size unit, so neither is ever a cheap
    # 1, whatever ciphertexts the caller chose (c = 1 is a valid ciphertext):
    # otherwise the time would show which sign a lone weight has. Its powers
    # cancel in the final quotient.
    start = random_unit(modulus)
    accumulators = [start, start]
    dummy = start
    for step in range(windows - 1, -1, -1):
        if step != windows - 1:
            for _ in range(WINDOW_BITS):
                accumulators[0] = accumulators[0] * accumulators[0] % modulus
                accumulators[1] = accumulators[1] * accumulators[1] % modulus
        shift = step * WINDOW_BITS
        for row, exponent, sign in terms:
            digit = (exponent >> shift) & mask
            if digit:
                accumulators[sign] = accumulators[sign] * row[digit - 1] % modulus
            else:
                dummy = dummy * row[0] % modulus
    if dummy == 0:  # pragma: no cover - impossible for units; keeps the dummy products live
        raise ArithmeticError("a ciphertext is not a unit")
    total = accumulators[0] * gmpy2.invert(accumulators[1], modulus) % modulus
    return Ciphertext._trusted(public_key, total)

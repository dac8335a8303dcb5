"""Random primes and random units from the operating system's CSPRNG."""

from __future__ import annotations

import secrets

import gmpy2

# GMP runs trial division, a Baillie-PSW test and then (reps - 24) Miller-Rabin
# rounds with random bases: far beyond what key generation needs.
PRIMALITY_REPS = 50


def is_probable_prime(candidate: int) -> bool:
    """Return whether ``candidate`` is prime, with error probability below 2^-100."""
    return bool(gmpy2.is_prime(gmpy2.mpz(candidate), PRIMALITY_REPS))


def random_prime(bits: int) -> gmpy2.mpz:
    """Return a uniformly random prime of exactly ``bits`` bits whose two top bits are set.

    Setting the two top bits makes the product of two such primes exactly
    ``2 * bits`` bits long.
    """
    if bits < 16:
        raise ValueError(f"primes of {bits} bits are too small to be useful")
    top_bits = 3 << (bits - 2)
    while True:
        candidate = gmpy2.mpz(secrets.randbits(bits) | top_bits | 1)
        if gmpy2.is_prime(candidate, PRIMALITY_REPS):
            return candidate


def random_unit(modulus: int | gmpy2.mpz) -> gmpy2.mpz:
    """Return a uniformly random element of Z*_modulus (1 <= r < modulus, gcd(r, modulus) = 1)."""
    m = int(modulus)
    while True:
        r = gmpy2.mpz(secrets.randbelow(m - 1) + 1)
        # For an RSA modulus a non-unit would reveal a factor; it is
        # astronomically unlikely, but cheap to rule out.
        if gmpy2.gcd(r, m) == 1:
            return r

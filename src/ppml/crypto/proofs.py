"""A non-interactive proof that gcd(n, phi(n)) = 1, so that r -> r^n permutes Z*_n.

Why a server needs it: it re-randomises each answer by multiplying with r^n
for a uniform r, which wipes whatever randomness the customer planted only if
r -> r^n is a bijection of Z*_n, that is if gcd(n, phi(n)) = 1. A customer
choosing n = p*Q with a prime dividing both n and phi(n) would break that,
and nothing in n itself shows it. So a key carries this proof, made once by
its owner, and whoever computes for someone else's key checks it.

The proof is the "Paillier-N" protocol of Goldberg, Reyzin, Sagga and
Baldimtsi, *Efficient Noninteractive Certification of RSA Moduli and Beyond*
(2019), section 3.2, with alpha = 6370 and m = 11 rounds:

- challenges: rho_i = H_i(n) for i = 1..m, each hashed onto Z*_n
  (:func:`ppml.crypto.hashing.hash_to_unit`) under its own tag
  ``b"ppml-paillier-n-proof-v1\\x00" || i`` (i as 4 big-endian bytes);
- the key owner publishes sigma_i = rho_i^d mod n with d = n^-1 mod phi(n),
  the unique n-th root of rho_i (computed modulo p and q);
- the verifier checks that n is odd, that no prime below alpha divides n
  (trial division), that each sigma_i lies in [1, n) and that
  sigma_i^n = rho_i (mod n).

Soundness. Suppose n is odd, has no prime factor below alpha, and
gcd(n, phi(n)) != 1. Some prime r divides both n and phi(n); as r divides n,
r >= alpha. Since r divides |Z*_n| = phi(n), Z*_n holds an element of order
r (Cauchy), and as r divides n that element is in the kernel of x -> x^n. So
the kernel has at least r elements and the n-th residues, the image, form a
subgroup of index at least r: a uniform rho is an n-th residue, and thus has
any sigma with sigma^n = rho, with probability at most 1/r <= 1/alpha.
The m challenges are independent random-oracle outputs (each within 2^-128
of uniform), so one attempt passes with probability at most about
alpha^-m = 6370^-11 ~ 2^-139, and a prover who tries Q moduli or hash
inputs succeeds with probability at most Q * 2^-139. m = 11 is the smallest
count with alpha^-m <= 2^-128 (log2 6370 ~ 12.64, and 128 / 12.64 ~ 10.1).

Completeness: when gcd(n, phi(n)) = 1, x -> x^n is a permutation with
inverse x -> x^d, so every sigma_i exists and is unique; the proof is a
deterministic function of n. Zero knowledge (in the random-oracle model):
the sigma_i are n-th roots of random points, which a simulator programming
the oracle produces by choosing sigma first; they reveal nothing about p, q.

What it does not show: that n has exactly two prime factors, nor that it is
composite (a prime n has gcd(n, n - 1) = 1). The key policy
(:mod:`ppml.crypto.policy`) refuses primes and perfect powers separately.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import gmpy2

from ppml.crypto.hashing import hash_to_unit
from ppml.errors import InvalidKeyError

PROOF_SCHEME = "ppml-paillier-n-v1"
"""Name of this proof in key files: the Paillier-N proof with ppml's hashing and tags."""

PROOF_ALPHA = 6370
"""No prime below this bound may divide a proven modulus (checked by trial division)."""

PROOF_ROUNDS = 11
"""Number of challenges: the smallest m with PROOF_ALPHA^-m <= 2^-128."""

PROOF_TAG = b"ppml-paillier-n-proof-v1\x00"
"""Domain tag of the challenges; round i appends i as 4 big-endian bytes."""


def _primes_below(bound: int) -> tuple[int, ...]:
    sieve = bytearray([1]) * bound
    sieve[0:2] = b"\x00\x00"
    for candidate in range(2, int(bound**0.5) + 1):
        if sieve[candidate]:
            sieve[candidate * candidate :: candidate] = bytes(
                len(range(candidate * candidate, bound, candidate))
            )
    return tuple(index for index, flag in enumerate(sieve) if flag)


SMALL_PRIMES = _primes_below(PROOF_ALPHA)
"""Every prime below :data:`PROOF_ALPHA` (830 of them)."""

# One gcd with the product of all small primes replaces 830 trial divisions.
_SMALL_PRIMORIAL = gmpy2.mpz(math.prod(SMALL_PRIMES))


def small_prime_factor(n: int) -> int | None:
    """The smallest prime factor of ``n`` below :data:`PROOF_ALPHA`, or None if it has none."""
    if gmpy2.gcd(n, _SMALL_PRIMORIAL) == 1:
        return None
    return next(prime for prime in SMALL_PRIMES if n % prime == 0)


def check_odd_without_small_factors(n: int) -> None:
    """Raise :class:`InvalidKeyError` unless n is odd, above 2 and has no prime factor below alpha.

    The proof's soundness needs it, and so does any modulus ppml accepts.
    """
    if n < 3 or n % 2 == 0:
        raise InvalidKeyError("a Paillier modulus must be odd (and positive)")
    factor = small_prime_factor(n)
    if factor is not None:
        raise InvalidKeyError(
            f"the modulus has the small prime factor {factor}; "
            f"a Paillier modulus has none below {PROOF_ALPHA}"
        )


@dataclass(frozen=True, slots=True)
class ModulusProof:
    """The sigma values of a Paillier-N proof for one modulus (which it does not store).

    Construction checks only the shape (:data:`PROOF_ROUNDS` positive
    integers); :func:`verify_modulus` checks the proof against a modulus.
    """

    sigma: tuple[int, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.sigma, tuple) or len(self.sigma) != PROOF_ROUNDS:
            raise InvalidKeyError(f"a modulus proof holds exactly {PROOF_ROUNDS} sigma values")
        for value in self.sigma:
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InvalidKeyError("the sigma values of a modulus proof are positive integers")

    def __repr__(self) -> str:
        return f"ModulusProof(scheme={PROOF_SCHEME!r}, rounds={len(self.sigma)})"


def proof_challenge(n: int, round_number: int) -> int:
    """rho_i for round ``round_number`` (1-based) of the proof for modulus ``n``."""
    return hash_to_unit(PROOF_TAG + round_number.to_bytes(4, "big"), n)


def proof_challenges(n: int) -> tuple[int, ...]:
    """rho_1, ..., rho_m: the points whose n-th roots the proof publishes."""
    return tuple(proof_challenge(n, i) for i in range(1, PROOF_ROUNDS + 1))


def prove_modulus(p: int, q: int) -> ModulusProof:
    """The proof for n = p*q, made by the owner of the two primes.

    Each sigma_i = rho_i^(n^-1 mod phi(n)) is computed modulo p and modulo q
    with exponents reduced modulo p - 1 and q - 1, and recombined: two
    half-size exponentiations per round. ``p`` and ``q`` must be the key's
    distinct odd primes (a :class:`~ppml.crypto.PrivateKey` has checked
    them); the result is deterministic.
    """
    p, q = int(p), int(q)
    if p == q or min(p, q) < 3 or p % 2 == 0 or q % 2 == 0:
        raise InvalidKeyError("a modulus proof needs two distinct odd primes")
    n = p * q
    if gmpy2.gcd(n, (p - 1) * (q - 1)) != 1:
        raise InvalidKeyError("gcd(n, (p-1)(q-1)) is not 1: this modulus has no Paillier-N proof")
    mp, mq = gmpy2.mpz(p), gmpy2.mpz(q)
    # n^-1 mod phi(n), reduced modulo p - 1 and q - 1 (Fermat, per prime).
    exponent_p = gmpy2.invert(n, mp - 1)
    exponent_q = gmpy2.invert(n, mq - 1)
    q_inverse = gmpy2.invert(mq, mp)
    sigma = []
    for rho in proof_challenges(n):
        root_p = gmpy2.powmod(rho, exponent_p, mp)
        root_q = gmpy2.powmod(rho, exponent_q, mq)
        sigma.append(int(root_q + mq * ((root_p - root_q) * q_inverse % mp)))
    return ModulusProof(tuple(sigma))


def verify_modulus(n: int, proof: ModulusProof) -> None:
    """Check ``proof`` for modulus ``n``; raise :class:`InvalidKeyError` if it fails.

    About :data:`PROOF_ROUNDS` exponentiations with exponent n. Successful
    verifications are cached per (n, proof), so a server pays once per key;
    failures are not cached, and the cheap checks come first.
    """
    if not isinstance(proof, ModulusProof):
        raise TypeError("verify_modulus needs a ModulusProof")
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError("the modulus must be an int")
    _verify_once(n, proof)


@lru_cache(maxsize=256)
def _verify_once(n: int, proof: ModulusProof) -> None:
    check_odd_without_small_factors(n)
    for index, sigma in enumerate(proof.sigma, start=1):
        if not 1 <= sigma < n:
            raise InvalidKeyError(f"the modulus proof is invalid: sigma {index} is not below n")
    modulus = gmpy2.mpz(n)
    for index, sigma in enumerate(proof.sigma, start=1):
        if gmpy2.powmod(sigma, modulus, modulus) != proof_challenge(n, index):
            raise InvalidKeyError(
                f"the modulus proof is invalid: sigma {index} is not the n-th root of its "
                "challenge (forged, or made for another modulus)"
            )

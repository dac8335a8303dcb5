"""Write the known-answer vectors of this folder from docs/key-files.md alone.

A second implementation on purpose: the Python standard library only, no
ppml and no gmpy2, following the byte-level description in the docs. The
tests then check that ppml gives the same answers. Run from the repository
root:

    python tests/vectors/make_vectors.py

It rewrites the JSON files beside it; their contents never change unless
the specification does.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

HERE = Path(__file__).resolve().parent

DJN_TAG = b"ppml-djn-base-v1\x00"
PROOF_TAG = b"ppml-paillier-n-proof-v1\x00"
PROOF_SCHEME = "ppml-paillier-n-v1"
ALPHA = 6370
ROUNDS = 11
SEARCH_TAG = b"ppml-test-vector\x00"

# Miller-Rabin with the first 40 primes as bases: plenty for fixed inputs here.
BASES = [p for p in range(2, 200) if all(p % d for d in range(2, p))][:40]


def is_prime(candidate: int) -> bool:
    if candidate < 2:
        return False
    for base in BASES:
        if candidate % base == 0:
            return candidate == base
    d, s = candidate - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for base in BASES:
        x = pow(base, d, candidate)
        if x in (1, candidate - 1):
            continue
        for _ in range(s - 1):
            x = x * x % candidate
            if x == candidate - 1:
                break
        else:
            return False
    return True


def hash_to_unit(tag: bytes, n: int) -> tuple[int, int]:
    """The value and the counter that produced it (docs/key-files.md, "Hashing onto Z*_n")."""
    n_bytes = n.to_bytes((n.bit_length() + 7) // 8, "big")
    length = (n.bit_length() + 128 + 7) // 8
    counter = 0
    while True:
        message = tag + n_bytes + counter.to_bytes(4, "big")
        value = int.from_bytes(hashlib.shake_256(message).digest(length), "big") % n
        if math.gcd(value, n) == 1:
            return value, counter
        counter += 1


def round_tag(index: int) -> bytes:
    return PROOF_TAG + index.to_bytes(4, "big")


def fixed_prime(label: bytes, bits: int) -> int:
    """The first prime at or above a SHAKE-256 value of ``label`` with its two top bits set."""
    seed = int.from_bytes(hashlib.shake_256(label).digest(bits // 8), "big")
    candidate = seed | (3 << (bits - 2)) | 1
    while not is_prime(candidate):
        candidate += 2
    return candidate


def key_id(n: int) -> str:
    n_bytes = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return hashlib.sha256(b"ppml-paillier-n\x00" + n_bytes).hexdigest()[:32]


def hexa(value: int) -> str:
    return format(value, "x")


def write(name: str, document: object) -> None:
    (HERE / name).write_text(json.dumps(document, indent=2) + "\n")


def main() -> None:
    p = fixed_prime(b"ppml known-answer vector: p", 256)
    q = fixed_prime(b"ppml known-answer vector: q", 256)
    p, q = sorted((p, q))
    n = p * q
    phi = (p - 1) * (q - 1)
    assert math.gcd(n, phi) == 1 and all(n % prime for prime in range(3, ALPHA, 2))

    # A modulus with many small factors, so that the counter has to move on.
    search_n, search_counter = 0, 0
    for offset in range(1, 10_000, 2):
        candidate = 3 * 5 * 7 * 11 * 13 * ((1 << 64) + offset)
        _, counter = hash_to_unit(SEARCH_TAG, candidate)
        if counter >= 2:
            search_n, search_counter = candidate, counter
            break
    assert search_counter >= 2

    cases = []
    for tag, modulus, note in [
        (DJN_TAG, n, "DJN base tag, the fixed 512-bit key"),
        (round_tag(1), n, "modulus proof, round 1"),
        (round_tag(11), n, "modulus proof, round 11"),
        (DJN_TAG, (1 << 63) + 25, "a 64-bit odd modulus"),
        (SEARCH_TAG, search_n, "a modulus with small factors: the first counters give non-units"),
    ]:
        value, counter = hash_to_unit(tag, modulus)
        cases.append(
            {
                "note": note,
                "tag": tag.hex(),
                "n": hexa(modulus),
                "counter": counter,
                "value": hexa(value),
            }
        )
    write("hash_to_unit.json", {"description": "hash_to_unit(tag, n)", "cases": cases})

    x, _ = hash_to_unit(DJN_TAG, n)
    h_s = pow(-x * x % n, n, n * n)
    write(
        "djn_base.json",
        {
            "description": "h_s = (-x^2 mod n)^n mod n^2, x = H(n)",
            "cases": [
                {"n": hexa(n), "x": hexa(x), "h_s": hexa(h_s)},
            ],
        },
    )

    d = pow(n, -1, phi)
    rho = [hash_to_unit(round_tag(i), n)[0] for i in range(1, ROUNDS + 1)]
    sigma = [pow(r, d, n) for r in rho]
    assert all(pow(s, n, n) == r for s, r in zip(sigma, rho, strict=True))
    proof = {
        "scheme": PROOF_SCHEME,
        "alpha": ALPHA,
        "rounds": ROUNDS,
        "sigma": [hexa(s) for s in sigma],
    }
    write(
        "modulus_proof.json",
        {
            "description": "sigma_i = rho_i^(n^-1 mod phi(n)) mod n, rho_i = H_i(n)",
            "cases": [
                {
                    "p": hexa(p),
                    "q": hexa(q),
                    "n": hexa(n),
                    "rho": [hexa(r) for r in rho],
                    "proof": proof,
                }
            ],
        },
    )

    write(
        "public_key_v3.json",
        {
            "format": "ppml.paillier.public-key",
            "version": 3,
            "key_id": key_id(n),
            "bits": n.bit_length(),
            "n": hexa(n),
            "randomness": "djn",
            "proof": proof,
        },
    )


if __name__ == "__main__":
    main()

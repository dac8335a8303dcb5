"""A customer that forges its own key: each construction that used to work is now refused.

The customer controls every field of the public key it sends. Three attacks
used to get through:

1. a key file whose DJN base is h_s = n^2 - 1 (that is -1, an n-th residue):
   it kept its key id (the id covers n only), and every "random" mask h_s^a
   was +1 or -1, so anyone could decrypt what was encrypted under it;
2. a modulus n = r * Q with primes r dividing both n and phi(n): r -> r^n is
   then not a bijection, so the server's re-randomisation by a uniform
   n-th residue no longer wipes what the customer planted in its randomness;
3. any odd number as a modulus (a prime, 3 * prime, 2^2047 + 1, 16,384
   bits), keys that `ppml keygen` wrote but could not read back, and JWK
   files that crashed (``"key_ops": 5``) or stalled (a huge ``lambda``) the
   importer.

Every modulus here is built from fixed numbers (primes found by a
deterministic search), so no test depends on luck.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path
from typing import Any

import gmpy2
import phe
import pytest

from ppml.cli.main import exit_code, main
from ppml.crypto import (
    DEFAULT_KEY_POLICY,
    SERVER_KEY_POLICY,
    KeyPolicy,
    ModulusProof,
    PrivateKey,
    PublicKey,
    key_fingerprint,
    verify_modulus,
)
from ppml.crypto.proofs import PROOF_ROUNDS, proof_challenges
from ppml.errors import InsecureKeyError, InvalidKeyError, KeyFileError
from ppml.wire.keyfile import (
    parse_private_key,
    parse_public_key,
    private_key_document,
    proof_members,
    public_key_document,
)
from ppml.wire.phe_jwk import parse_jwk, private_key_to_jwk


def seeded(label: str, bits: int) -> int:
    """A fixed ``bits``-bit number with its top bit set, derived from ``label``."""
    value = int.from_bytes(hashlib.shake_256(label.encode()).digest((bits + 7) // 8), "big")
    return (value >> (-bits % 8)) | (1 << (bits - 1))


def fixed_prime(label: str, bits: int) -> int:
    """The first prime at or above a fixed ``bits``-bit number (top two bits set)."""
    return int(gmpy2.next_prime(seeded(label, bits) | (1 << (bits - 2))))


def prime_one_mod(factor: int, start: int) -> int:
    """The first prime Q = k*factor + 1 >= start whose k is not a multiple of ``factor``.

    ``factor`` divides Q - 1, hence phi(factor * Q); for a prime ``factor``,
    its square does not, which the owner's best-effort proof below relies on.
    """
    k = start // factor + 1
    while True:
        candidate = k * factor + 1
        if k % factor and gmpy2.is_prime(candidate, 30):
            return int(candidate)
        k += 1


def public_document(n: int, *, version: int = 3, **members: Any) -> bytes:
    """A public key file for ``n``, well formed in every other respect (right id and size)."""
    document: dict[str, Any] = {
        "format": "ppml.paillier.public-key",
        "version": version,
        "key_id": key_fingerprint(n),
        "bits": n.bit_length(),
        "n": format(n, "x"),
    }
    if version >= 2:
        document["randomness"] = "djn" if "djn_h_s" in members else "standard"
    document.update(
        {
            name: format(value, "x") if isinstance(value, int) else value
            for name, value in members.items()
        }
    )
    return json.dumps(document).encode()


def public_jwk(n: int) -> bytes:
    return json.dumps(
        {"kty": "DAJ", "alg": "PAI-GN1", "key_ops": ["encrypt"], "n": phe.util.int_to_base64(n)}
    ).encode()


@pytest.fixture(scope="module")
def honest() -> PrivateKey:
    """A fixed, honestly made 2048-bit key pair (with its proof)."""
    return PrivateKey.from_factors(
        fixed_prime("forged-keys honest p", 1024),
        fixed_prime("forged-keys honest q", 1024),
        randomness="djn",
    )


# --- 1. A forged DJN base ---------------------------------------------------


def public_decrypt(ciphertext: int, n: int) -> int:
    """What anyone can do with a ciphertext whose randomness is +1 or -1."""
    nsquare = n * n
    for candidate in (ciphertext, nsquare - ciphertext):
        if candidate % n == 1:
            return (candidate - 1) // n
    raise AssertionError("the randomness is not +-1")


def test_the_original_forged_base_made_every_ciphertext_public(honest: PrivateKey) -> None:
    n = honest.public_key.n
    nsquare = n * n
    forged = nsquare - 1
    for plaintext, exponent in [(42, 3), (123456789, 2**1000 + 1), (n - 5, 2**1023)]:
        ciphertext = (1 + plaintext * n) * pow(forged, exponent, nsquare) % nsquare
        assert public_decrypt(ciphertext, n) == plaintext


@pytest.mark.parametrize("version", [2, 3])
def test_a_public_key_file_with_base_minus_one_is_refused(honest: PrivateKey, version: int) -> None:
    n = honest.public_key.n
    data = public_document(n, version=version, djn_h_s=n * n - 1)
    message = r"h_s\^2 = 1 \(mod n\^2\)" if version == 2 else "may not hold 'djn_h_s'"
    for policy in (DEFAULT_KEY_POLICY, SERVER_KEY_POLICY):
        with pytest.raises(KeyFileError, match=message) as caught:
            parse_public_key(data, "public_key.json", policy=policy)
        assert "\n" not in str(caught.value)


@pytest.mark.parametrize("version", [2, 3])
def test_a_private_key_file_with_base_minus_one_is_refused(
    honest: PrivateKey, version: int
) -> None:
    document = private_key_document(honest)
    del document["proof"]
    n = honest.public_key.n
    document.update(version=version, djn_h_s=format(n * n - 1, "x"))
    message = r"h_s\^2 = 1" if version == 2 else "may not hold 'djn_h_s'"
    with pytest.raises(KeyFileError, match=message):
        parse_private_key(json.dumps(document).encode(), "private_key.json")


def test_the_base_is_derived_from_n_and_hides_plaintexts(honest: PrivateKey) -> None:
    """Loaded from any version, a djn key encrypts with the base derived from n."""
    n = honest.public_key.n
    nsquare = n * n
    derived = honest.public_key.h_s
    assert derived is not None and derived * derived % nsquare != 1
    old_file = public_document(n, version=2, djn_h_s=12345)  # a stored base is ignored
    for data in (old_file, json.dumps(public_key_document(honest.public_key)).encode()):
        loaded = parse_public_key(data, policy=DEFAULT_KEY_POLICY)
        assert loaded.h_s == derived and loaded.key_id == honest.key_id
    # The mask of a DJN encryption is derived^a: for these fixed exponents, never +-1,
    # so the public decryption above reads nothing.
    for exponent in (1, 2, 3, 2**1023 + 7):
        assert pow(derived, exponent, nsquare) % n not in (1, n - 1)


# --- 2. A modulus whose r -> r^n is not a bijection ---------------------------

SMALL_FACTORS = 3 * 5 * 7 * 11 * 13
FIRST_PRIME_ABOVE_ALPHA = 6373


@pytest.fixture(scope="module")
def malformed() -> dict[str, tuple[int, int]]:
    """n = r * Q with Q = 1 (mod r), 2048 bits: {name: (r, Q)}."""
    moduli = {}
    for name, r in [
        ("small primes", SMALL_FACTORS),
        ("a prime above alpha", FIRST_PRIME_ABOVE_ALPHA),
    ]:
        q = prime_one_mod(r, seeded(f"forged-keys malformed {name}", 2048) // r)
        assert (r * q).bit_length() == 2048 and (q - 1) % r == 0
        moduli[name] = (r, q)
    return moduli


def kernel_element(order: int, r: int, q: int) -> int:
    """z = 1 (mod r) of prime ``order`` (dividing r) modulo Q: then z != 1 but z^n = 1 (mod n)."""
    base = 2
    while pow(base, (q - 1) // order, q) == 1:
        base += 1
    z_q = pow(base, (q - 1) // order, q)
    return 1 + r * ((z_q - 1) * pow(r, -1, q) % q)


@pytest.mark.parametrize(("name", "order"), [("small primes", 13), ("a prime above alpha", 6373)])
def test_the_malformed_modulus_breaks_re_randomisation(
    malformed: dict[str, tuple[int, int]], name: str, order: int
) -> None:
    """r and r*z have the same n-th power: r -> r^n is not injective.

    Its image, the masks the server can multiply an answer by, is then a
    proper subgroup of Z*_n: multiplying by one keeps each answer in its
    coset, so whatever coset the customer planted its randomness in survives
    the re-randomisation.
    """
    r, q = malformed[name]
    n = r * q
    z = kernel_element(order, r, q)
    assert z != 1 and pow(z, n, n) == 1
    for randomness in (2, 3, 12345):
        assert pow(randomness, n, n) == pow(randomness * z % n, n, n)


def test_small_shared_primes_are_refused_by_every_policy(
    malformed: dict[str, tuple[int, int]], honest: PrivateKey
) -> None:
    r, q = malformed["small primes"]
    n = r * q
    copied = honest.public_key.proof
    assert copied is not None
    for policy in (DEFAULT_KEY_POLICY, SERVER_KEY_POLICY):
        for proof in (None, copied):  # trial division comes first: no proof helps
            with pytest.raises(
                InvalidKeyError,
                match="small prime factor 3; a Paillier modulus has none below 6370",
            ):
                policy.check(n, proof=proof)
        with pytest.raises(KeyFileError, match="small prime factor 3"):
            parse_public_key(public_document(n), policy=policy)
        with pytest.raises(KeyFileError, match="small prime factor 3"):
            parse_public_key(public_document(n, proof=proof_members(copied)), policy=policy)
    with pytest.raises(InvalidKeyError, match="has the small prime factor 3"):
        verify_modulus(n, copied)


def owners_best_effort(r: int, q: int) -> ModulusProof:
    """What the owner of the malformed modulus can do: n-th roots of the challenges that have one.

    x -> x^d with d = n^-1 mod lcm(r - 1, (Q - 1)/r) inverts x -> x^n on the
    n-th residues; the other challenges have no root at all.
    """
    n = r * q
    d = pow(n, -1, (r - 1) * ((q - 1) // r) // math.gcd(r - 1, (q - 1) // r))
    return ModulusProof(tuple(pow(rho, d, n) for rho in proof_challenges(n)))


def test_a_prime_above_alpha_needs_a_proof_it_cannot_have(
    malformed: dict[str, tuple[int, int]], honest: PrivateKey
) -> None:
    r, q = malformed["a prime above alpha"]
    n = r * q
    # Trial division cannot see r: the customer's own policy accepts the number.
    DEFAULT_KEY_POLICY.check(n)
    with pytest.raises(KeyFileError, match="no modulus proof"):
        parse_public_key(public_document(n), policy=SERVER_KEY_POLICY)

    residues = [pow(rho, (q - 1) // r, q) == 1 for rho in proof_challenges(n)]
    assert residues.count(False) >= 1  # fixed numbers: at least one challenge has no n-th root
    honest_proof = honest.public_key.proof
    assert honest_proof is not None
    forgeries = {
        "copied from another key": honest_proof,
        "pseudo-random values": ModulusProof(
            tuple(seeded(f"forged sigma {i}", 2040) for i in range(PROOF_ROUNDS))
        ),
        "the challenges themselves": ModulusProof(proof_challenges(n)),
        "the owner's best effort": owners_best_effort(r, q),
    }
    for forged in forgeries.values():
        with pytest.raises(InvalidKeyError, match="the modulus proof is invalid"):
            verify_modulus(n, forged)
        for policy in (DEFAULT_KEY_POLICY, SERVER_KEY_POLICY):  # a bad proof is never ignored
            with pytest.raises(KeyFileError, match="the modulus proof is invalid"):
                parse_public_key(public_document(n, proof=proof_members(forged)), policy=policy)
        with pytest.raises(InvalidKeyError):
            PublicKey(n, proof=forged)


def test_a_proof_does_not_move_to_another_modulus(honest: PrivateKey) -> None:
    proof = honest.public_key.proof
    assert proof is not None
    verify_modulus(honest.public_key.n, proof)
    other = PrivateKey.from_factors(
        fixed_prime("forged-keys other p", 1024), fixed_prime("forged-keys other q", 1024)
    )
    with pytest.raises(InvalidKeyError, match="the modulus proof is invalid"):
        verify_modulus(other.public_key.n, proof)


# --- 3. Moduli of the wrong size or shape, and hostile JWK files ------------------

P1024 = fixed_prime("forged-keys 1024 p", 512) * fixed_prime("forged-keys 1024 q", 512)
PRIME = int(gmpy2.next_prime(1 << 2047))
SHAPES: dict[str, tuple[int, type[Exception], str]] = {
    "1024 bits": (
        P1024,
        InsecureKeyError,
        "a 1024-bit Paillier modulus is too small; this policy accepts 2048 to 4096 bits",
    ),
    "8200 bits": (
        seeded("forged-keys 8200", 8200) | 1,
        InsecureKeyError,
        "an 8200-bit Paillier modulus is too large; this policy accepts 2048 to 4096 bits",
    ),
    "16384 bits": (
        seeded("forged-keys 16384", 16384) | 1,
        InsecureKeyError,
        "a 16384-bit Paillier modulus is too large; this policy accepts 2048 to 4096 bits",
    ),
    "a prime": (PRIME, InvalidKeyError, "the modulus is prime, so anyone could decrypt under it"),
    "3 * prime": (3 * int(gmpy2.next_prime(1 << 2046)), InvalidKeyError, "small prime factor 3"),
    "2^2047 + 1": ((1 << 2047) + 1, InvalidKeyError, "small prime factor 3"),
    "a square": (fixed_prime("forged-keys square", 1024) ** 2, InvalidKeyError, "perfect power"),
    "even": ((1 << 2047) + 2, InvalidKeyError, "must be odd"),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_moduli_of_the_wrong_size_or_shape_are_refused(shape: str) -> None:
    n, error, message = SHAPES[shape]
    for policy in (DEFAULT_KEY_POLICY, SERVER_KEY_POLICY):
        with pytest.raises(error, match=message) as caught:
            policy.check(n)
        assert "\n" not in str(caught.value)
    # The key file and the JWK readers give the same one-line reasons.
    with pytest.raises(KeyFileError, match=message):
        parse_public_key(public_document(n), "public_key.json")
    with pytest.raises(KeyFileError, match=message):
        parse_jwk(public_jwk(n), "public.jwk")


def test_the_declared_size_must_be_exact(honest: PrivateKey) -> None:
    with pytest.raises(InvalidKeyError, match="2048 bits long, not the 2049 bits declared"):
        DEFAULT_KEY_POLICY.check(honest.public_key.n, 2049)
    document = json.loads(public_document(honest.public_key.n))
    document["bits"] = 4096
    with pytest.raises(KeyFileError, match="not the 4096 bits declared"):
        parse_public_key(json.dumps(document).encode())


def test_a_huge_modulus_is_refused_before_it_is_converted() -> None:
    """The size is read from the text: 1 MiB of hex digits is refused without int()."""
    n_text = "f" * 1_000_000
    document = json.dumps(
        {"format": "ppml.paillier.public-key", "version": 3, "key_id": "0", "bits": 1, "n": n_text}
    )
    start = time.perf_counter()
    with pytest.raises(KeyFileError, match="a 4000000-bit Paillier modulus is too large"):
        parse_public_key(document.encode())
    assert time.perf_counter() - start < 1.0


def test_keygen_refuses_sizes_it_could_not_read_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for bits in ("8200", "16384"):
        assert main(["keygen", "--out", str(tmp_path / "keys"), "--bits", bits]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "-bit Paillier modulus is too large" in err
        assert "this policy accepts 2048 to 4096 bits" in err
        assert not (tmp_path / "keys").exists()


def hostile_private_jwk(honest: PrivateKey, **members: Any) -> bytes:
    document = private_key_to_jwk(honest)
    document.update(members)
    return json.dumps(document).encode()


def test_a_jwk_with_key_ops_5_is_refused_in_one_line(
    honest: PrivateKey, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = hostile_private_jwk(honest, key_ops=5)
    with pytest.raises(KeyFileError, match="field 'key_ops' must be of type list") as caught:
        parse_jwk(data, "private.jwk")
    path = tmp_path / "private.jwk"
    path.write_bytes(data)
    for command in (
        ["keys", "import-phe", str(path), "--out", str(tmp_path / "keys")],
        ["keys", "show", str(path)],
    ):
        assert main(command) == exit_code(caught.value)
        err = capsys.readouterr().err
        assert err == f"error: {path}: field 'key_ops' must be of type list\n"  # no traceback
    assert not (tmp_path / "keys").exists()


def test_a_jwk_with_a_huge_lambda_is_refused_quickly(honest: PrivateKey) -> None:
    document = private_key_to_jwk(honest)
    del document["p"], document["q"]
    document["lambda"] = phe.util.int_to_base64((1 << 4_000_000) - 1)  # about 667 KB of base64
    document["mu"] = phe.util.int_to_base64(3)
    start = time.perf_counter()
    with pytest.raises(KeyFileError, match="field 'lambda' is longer than 8192 bits"):
        parse_jwk(json.dumps(document).encode(), "legacy.jwk")
    # The largest accepted lambda that is not a multiple of lambda(n) costs one exponentiation.
    document["lambda"] = phe.util.int_to_base64((1 << 8192) - 1)
    with pytest.raises(KeyFileError, match="lambda does not belong to the modulus"):
        parse_jwk(json.dumps(document).encode(), "legacy.jwk")
    assert time.perf_counter() - start < 2.0


def test_oversized_factors_in_a_jwk_are_refused_before_decoding(honest: PrivateKey) -> None:
    data = hostile_private_jwk(honest, p="_" * 100_000)
    with pytest.raises(KeyFileError, match="field 'p' is longer than 4096 bits"):
        parse_jwk(data, "private.jwk")


def test_an_honest_key_passes_every_check(honest: PrivateKey) -> None:
    """The refusals above are specific: the honest key, proof included, goes through."""
    public_key = honest.public_key
    SERVER_KEY_POLICY.check(public_key.n, 2048, proof=public_key.proof)
    data = json.dumps(public_key_document(public_key)).encode()
    assert parse_public_key(data, policy=SERVER_KEY_POLICY) == public_key
    assert (
        parse_public_key(data, policy=KeyPolicy(min_bits=2048, max_bits=2048, require_proof=True))
        == public_key
    )

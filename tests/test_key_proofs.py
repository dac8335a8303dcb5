"""Hashing onto Z*_n, the modulus proof and the key policy (attacks: tests/attacks/test_forged_keys.py)."""

from __future__ import annotations

import math

import pytest

from ppml.crypto import (
    DEFAULT_KEY_POLICY,
    MAX_KEY_BITS,
    MIN_KEY_BITS,
    SERVER_KEY_POLICY,
    KeyPolicy,
    ModulusProof,
    PrivateKey,
    PublicKey,
    generate_keypair,
    prove_modulus,
    verify_modulus,
)
from ppml.crypto.hashing import hash_to_unit
from ppml.crypto.proofs import (
    PROOF_ALPHA,
    PROOF_ROUNDS,
    SMALL_PRIMES,
    _verify_once,
    proof_challenges,
    small_prime_factor,
)
from ppml.errors import InsecureKeyError, InvalidKeyError


class TestHashToUnit:
    def test_deterministic_units_below_n(self, public_key: PublicKey) -> None:
        n = public_key.n
        value = hash_to_unit(b"tag\x00", n)
        assert value == hash_to_unit(b"tag\x00", n) and 0 < value < n and math.gcd(value, n) == 1

    def test_tags_and_moduli_separate_the_outputs(
        self, public_key: PublicKey, other_keypair: tuple[PublicKey, PrivateKey]
    ) -> None:
        n = public_key.n
        outputs = {hash_to_unit(tag, n) for tag in (b"a\x00", b"b\x00", b"a\x00\x00")}
        assert len(outputs) == 3
        assert hash_to_unit(b"a\x00", n) != hash_to_unit(b"a\x00", other_keypair[0].n)

    def test_non_units_are_skipped(self) -> None:
        n = 3 * 5 * 7 * 11 * 13 * 17 * 19 * 23 * 29 * 31
        for index in range(50):
            assert math.gcd(hash_to_unit(index.to_bytes(2, "big"), n), n) == 1

    @pytest.mark.parametrize("n", [0, 1, 2, -7])
    def test_degenerate_moduli(self, n: int) -> None:
        with pytest.raises(ValueError, match="n > 2"):
            hash_to_unit(b"t", n)


class TestModulusProof:
    def test_generated_keys_carry_a_valid_proof(
        self, keypair: tuple[PublicKey, PrivateKey]
    ) -> None:
        public_key, private_key = keypair
        assert public_key.proof is not None and len(public_key.proof.sigma) == PROOF_ROUNDS
        verify_modulus(public_key.n, public_key.proof)
        # sigma_i is the unique n-th root of rho_i: the proof is a function of n.
        assert prove_modulus(private_key.q, private_key.p) == public_key.proof
        for sigma, rho in zip(public_key.proof.sigma, proof_challenges(public_key.n), strict=True):
            assert pow(sigma, public_key.n, public_key.n) == rho

    def test_keys_compare_equal_with_or_without_a_proof(
        self, keypair: tuple[PublicKey, PrivateKey]
    ) -> None:
        public_key, private_key = keypair
        bare = PublicKey(public_key.n, "djn")
        assert bare == public_key and hash(bare) == hash(public_key) and bare.proof is None
        assert "proven=False" in repr(bare) and "proven=True" in repr(public_key)
        unproven = PrivateKey(bare, private_key.p, private_key.q)
        proven = unproven.with_proof()
        assert proven.public_key.proof == public_key.proof and proven == private_key
        assert proven.with_proof() is proven
        assert public_key.without_djn_base().proof == public_key.proof
        assert bare.with_proof(prove_modulus(private_key.p, private_key.q)).proof is not None

    def test_from_factors_proves_the_modulus(self, private_key: PrivateKey) -> None:
        for randomness in ("djn", "standard"):
            rebuilt = PrivateKey.from_factors(private_key.p, private_key.q, randomness=randomness)
            assert rebuilt.public_key.proof == private_key.public_key.proof
            assert rebuilt.public_key.randomness == randomness

    def test_a_proof_of_another_key_is_refused(
        self, keypair: tuple[PublicKey, PrivateKey], other_keypair: tuple[PublicKey, PrivateKey]
    ) -> None:
        proof = other_keypair[0].proof
        assert proof is not None
        with pytest.raises(InvalidKeyError, match="the modulus proof is invalid"):
            verify_modulus(keypair[0].n, proof)
        with pytest.raises(InvalidKeyError, match="the modulus proof is invalid"):
            PublicKey(keypair[0].n, proof=proof)

    def test_each_sigma_is_checked(self, keypair: tuple[PublicKey, PrivateKey]) -> None:
        public_key = keypair[0]
        assert public_key.proof is not None
        sigma = list(public_key.proof.sigma)
        for index, bad in [(0, public_key.n), (10, public_key.n + 1), (5, sigma[5] + 1)]:
            forged = sigma.copy()
            forged[index] = bad
            with pytest.raises(InvalidKeyError, match=f"sigma {index + 1} "):
                verify_modulus(public_key.n, ModulusProof(tuple(forged)))

    def test_successes_are_cached_and_failures_are_not(
        self, keypair: tuple[PublicKey, PrivateKey], other_keypair: tuple[PublicKey, PrivateKey]
    ) -> None:
        public_key = keypair[0]
        assert public_key.proof is not None and other_keypair[0].proof is not None
        verify_modulus(public_key.n, public_key.proof)
        hits = _verify_once.cache_info().hits
        verify_modulus(public_key.n, public_key.proof)
        assert _verify_once.cache_info().hits == hits + 1
        for _ in range(2):
            with pytest.raises(InvalidKeyError):
                verify_modulus(public_key.n, other_keypair[0].proof)

    @pytest.mark.parametrize(
        "sigma",
        [(1,) * (PROOF_ROUNDS - 1), (1,) * (PROOF_ROUNDS + 1), (0,) * PROOF_ROUNDS, [1] * 11],
    )
    def test_proof_shape(self, sigma: tuple[int, ...]) -> None:
        with pytest.raises(InvalidKeyError, match=r"sigma values|positive integers"):
            ModulusProof(sigma)

    def test_only_a_sound_modulus_can_be_proven(self) -> None:
        with pytest.raises(InvalidKeyError, match="distinct odd primes"):
            prove_modulus(7919, 7919)
        with pytest.raises(InvalidKeyError, match="distinct odd primes"):
            prove_modulus(2, 7919)
        # 3 divides 7 - 1: gcd(21, phi(21)) = 3, and no proof exists.
        with pytest.raises(InvalidKeyError, match="no Paillier-N proof"):
            prove_modulus(3, 7)

    def test_verification_refuses_small_factors_and_even_moduli(
        self, keypair: tuple[PublicKey, PrivateKey]
    ) -> None:
        proof = keypair[0].proof
        assert proof is not None
        with pytest.raises(InvalidKeyError, match="prime factor 5"):
            verify_modulus(5 * keypair[0].n, proof)
        with pytest.raises(InvalidKeyError, match="must be odd"):
            verify_modulus(2 * keypair[0].n, proof)
        with pytest.raises(TypeError):
            verify_modulus(keypair[0].n, proof.sigma)  # type: ignore[arg-type]

    def test_the_small_primes(self) -> None:
        assert len(SMALL_PRIMES) == 830 and SMALL_PRIMES[:4] == (2, 3, 5, 7)
        assert SMALL_PRIMES[-1] == 6367 < PROOF_ALPHA
        assert small_prime_factor(6367 * 6373) == 6367
        assert small_prime_factor(6373 * 6379) is None
        # 11 rounds are the fewest that reach 128 bits.
        assert PROOF_ALPHA**-PROOF_ROUNDS < 2**-128 < PROOF_ALPHA ** -(PROOF_ROUNDS - 1)


class TestKeyPolicy:
    def test_defaults(self) -> None:
        assert (MIN_KEY_BITS, MAX_KEY_BITS) == (2048, 4096)
        assert (DEFAULT_KEY_POLICY.min_bits, DEFAULT_KEY_POLICY.max_bits) == (2048, 4096)
        assert not DEFAULT_KEY_POLICY.require_proof and SERVER_KEY_POLICY.require_proof
        assert (SERVER_KEY_POLICY.min_bits, SERVER_KEY_POLICY.max_bits) == (2048, 4096)

    @pytest.mark.parametrize(
        ("bits", "message"),
        [
            (2047, "a 2047-bit Paillier modulus is too small"),
            (1024, "a 1024-bit Paillier modulus is too small"),
            (4097, "a 4097-bit Paillier modulus is too large"),
            (8192, "an 8192-bit Paillier modulus is too large"),
            (11000, "an 11000-bit Paillier modulus is too large"),
            (18000, "an 18000-bit Paillier modulus is too large"),
            (16384, "a 16384-bit Paillier modulus is too large"),
        ],
    )
    def test_sizes(self, bits: int, message: str) -> None:
        with pytest.raises(
            InsecureKeyError, match=f"^{message}; this policy accepts 2048 to 4096 bits$"
        ):
            DEFAULT_KEY_POLICY.check_size(bits)

    def test_accepted_sizes(self) -> None:
        for bits in (2048, 3072, 4096):
            DEFAULT_KEY_POLICY.check_size(bits)

    @pytest.mark.parametrize(
        "settings",
        [
            {"min_bits": 4096, "max_bits": 2048},
            {"min_bits": -1},
            {"max_bits": 16385},
        ],
    )
    def test_invalid_policies(self, settings: dict[str, int]) -> None:
        with pytest.raises(ValueError, match="min_bits <= max_bits"):
            KeyPolicy(**settings)  # type: ignore[arg-type]

    def test_invalid_policy_types(self) -> None:
        with pytest.raises(TypeError):
            KeyPolicy(min_bits=2048.0)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            KeyPolicy(require_proof=1)  # type: ignore[arg-type]

    def test_proof_requirement(self, keypair: tuple[PublicKey, PrivateKey]) -> None:
        public_key = keypair[0]
        small = KeyPolicy(min_bits=512, max_bits=512)
        small.check(public_key.n, 512)
        small.check(public_key.n, proof=public_key.proof)
        strict = KeyPolicy(min_bits=512, max_bits=512, require_proof=True)
        strict.check(public_key.n, proof=public_key.proof)
        with pytest.raises(InvalidKeyError, match="no modulus proof"):
            strict.check(public_key.n)

    def test_generate_keypair_follows_the_default_policy(self) -> None:
        for bits in (1024, 4098, 8200):
            with pytest.raises(InsecureKeyError, match=f"{bits}-bit Paillier modulus"):
                generate_keypair(bits)
        with pytest.raises(InsecureKeyError, match="at least 64 bits"):
            generate_keypair(62, insecure_test_key=True)
        public_key, _ = generate_keypair(64, insecure_test_key=True)
        assert public_key.bits == 64 and public_key.proof is not None

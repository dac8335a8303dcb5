"""The Paillier core: key generation, encryption, decryption, homomorphic operations."""

from __future__ import annotations

import pickle

import gmpy2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ppml.crypto import (
    DEFAULT_KEY_BITS,
    MIN_KEY_BITS,
    Ciphertext,
    PrivateKey,
    PublicKey,
    generate_keypair,
)
from ppml.crypto.primes import is_probable_prime
from ppml.errors import (
    InsecureKeyError,
    InvalidCiphertextError,
    InvalidKeyError,
    KeyMismatchError,
    PlaintextOverflowError,
)

# A textbook example small enough to check by hand: p = 7, q = 11 is below the
# library's minimum modulus, so the vector uses two 32-bit primes instead.
P_SMALL, Q_SMALL = 4294967291, 4294967279


def signed(public_key: PublicKey) -> st.SearchStrategy[int]:
    return st.one_of(
        st.integers(-public_key.max_int, public_key.max_int),
        st.sampled_from([0, 1, -1, public_key.max_int, -public_key.max_int]),
    )


class TestKeyGeneration:
    def test_default_size_is_3072(self) -> None:
        assert DEFAULT_KEY_BITS == 3072

    @pytest.mark.parametrize("bits", [512, 1024])
    def test_modulus_has_exactly_the_requested_size(self, bits: int) -> None:
        public_key, private_key = generate_keypair(bits, insecure_test_key=True)
        assert public_key.bits == bits
        assert private_key.p.bit_length() == private_key.q.bit_length() == bits // 2
        assert private_key.p * private_key.q == public_key.n
        assert is_probable_prime(private_key.p) and is_probable_prime(private_key.q)

    def test_real_key_is_2048_bits(self, real_keypair: tuple[PublicKey, PrivateKey]) -> None:
        assert real_keypair[0].bits == MIN_KEY_BITS

    @pytest.mark.parametrize("bits", [1024, 2046, 512])
    def test_small_keys_refused_without_the_test_switch(self, bits: int) -> None:
        with pytest.raises(InsecureKeyError, match="too small"):
            generate_keypair(bits)

    def test_odd_sizes_refused(self) -> None:
        with pytest.raises(ValueError, match="even"):
            generate_keypair(2049)

    def test_keys_differ(self) -> None:
        first, _ = generate_keypair(256, insecure_test_key=True)
        second, _ = generate_keypair(256, insecure_test_key=True)
        assert first != second and first.key_id != second.key_id

    def test_private_key_checks_its_factors(self, private_key: PrivateKey) -> None:
        with pytest.raises(InvalidKeyError, match="do not match"):
            PrivateKey(private_key.public_key, private_key.p, private_key.q + 2)
        with pytest.raises(InvalidKeyError, match="not prime"):
            PrivateKey.from_factors(P_SMALL * 3, Q_SMALL)

    def test_factor_order_does_not_matter(self, private_key: PrivateKey) -> None:
        swapped = PrivateKey(private_key.public_key, private_key.q, private_key.p)
        assert swapped == private_key and swapped.p < swapped.q

    def test_repr_hides_the_factors(self, private_key: PrivateKey) -> None:
        text = repr(private_key) + str(private_key)
        assert str(private_key.p) not in text and str(private_key.q) not in text
        assert private_key.key_id in text

    def test_keys_and_ciphertexts_are_immutable_and_not_picklable(
        self, public_key: PublicKey, private_key: PrivateKey
    ) -> None:
        c = public_key.encrypt(5)
        with pytest.raises(AttributeError):
            c._value = 1  # type: ignore[misc]
        with pytest.raises(AttributeError):
            public_key.n = 3  # type: ignore[misc]
        for item in (c, private_key):
            with pytest.raises(TypeError, match="never pickled"):
                pickle.dumps(item)


class TestKnownAnswers:
    """Fixed p, q, m, r: the ciphertext is fully determined, so it can be computed by hand."""

    def test_encryption_matches_the_definition(self) -> None:
        private_key = PrivateKey.from_factors(P_SMALL, Q_SMALL)
        n = P_SMALL * Q_SMALL
        m, r = 123456789, 987654321
        expected = pow(n + 1, m, n * n) * pow(r, n, n * n) % (n * n)
        c = private_key.public_key.raw_encrypt_with(m, r)
        assert c.value == expected
        assert private_key.raw_decrypt(c) == m

    def test_lambda_mu_decryption_agrees(self) -> None:
        # Decryption by the textbook formula m = L(c^lambda mod n^2) * mu mod n.
        private_key = PrivateKey.from_factors(P_SMALL, Q_SMALL)
        n = P_SMALL * Q_SMALL
        lam = (P_SMALL - 1) * (Q_SMALL - 1)
        mu = pow(lam, -1, n)
        c = private_key.public_key.raw_encrypt(42)
        assert (pow(c.value, lam, n * n) - 1) // n * mu % n == 42


class TestRoundTrips:
    @given(data=st.data())
    def test_signed_round_trip(
        self, keypair: tuple[PublicKey, PrivateKey], data: st.DataObject
    ) -> None:
        public_key, private_key = keypair
        m = data.draw(signed(public_key))
        assert private_key.decrypt(public_key.encrypt(m)) == m

    @given(data=st.data())
    def test_raw_round_trip(
        self, keypair: tuple[PublicKey, PrivateKey], data: st.DataObject
    ) -> None:
        public_key, private_key = keypair
        m = data.draw(st.integers(0, public_key.n - 1))
        assert private_key.raw_decrypt(public_key.raw_encrypt(m)) == m

    def test_edges_of_the_signed_range(
        self, public_key: PublicKey, private_key: PrivateKey
    ) -> None:
        for m in (public_key.max_int, -public_key.max_int, 0):
            assert private_key.decrypt(public_key.encrypt(m)) == m
        for m in (public_key.max_int + 1, -public_key.max_int - 1, public_key.n):
            with pytest.raises(PlaintextOverflowError):
                public_key.encrypt(m)
        with pytest.raises(PlaintextOverflowError):
            public_key.raw_encrypt(public_key.n)
        with pytest.raises(PlaintextOverflowError):
            public_key.raw_encrypt(-1)

    def test_encryption_is_randomised(self, public_key: PublicKey, private_key: PrivateKey) -> None:
        first, second = public_key.encrypt(7), public_key.encrypt(7)
        assert first != second
        again = first.rerandomize()
        assert again != first and private_key.decrypt(again) == 7


class TestHomomorphism:
    @given(data=st.data())
    def test_addition(self, keypair: tuple[PublicKey, PrivateKey], data: st.DataObject) -> None:
        public_key, private_key = keypair
        half = public_key.max_int // 2
        a, b = data.draw(st.integers(-half, half)), data.draw(st.integers(-half, half))
        ca, cb = public_key.encrypt(a), public_key.encrypt(b)
        assert private_key.decrypt(ca + cb) == a + b
        assert private_key.decrypt(ca - cb) == a - b
        assert private_key.decrypt(ca + b) == a + b
        assert private_key.decrypt(b + ca) == a + b
        assert private_key.decrypt(ca - b) == a - b
        assert private_key.decrypt(b - ca) == b - a
        assert private_key.decrypt(-ca) == -a

    @given(data=st.data())
    def test_scalar_multiplication(
        self, keypair: tuple[PublicKey, PrivateKey], data: st.DataObject
    ) -> None:
        public_key, private_key = keypair
        a = data.draw(st.integers(-(2**100), 2**100))
        k = data.draw(st.one_of(st.integers(-(2**100), 2**100), st.sampled_from([0, 1, -1])))
        assert private_key.decrypt(public_key.encrypt(a) * k) == a * k
        assert private_key.decrypt(k * public_key.encrypt(a)) == a * k

    @given(data=st.data())
    def test_operations_are_exact_modulo_n(
        self, keypair: tuple[PublicKey, PrivateKey], data: st.DataObject
    ) -> None:
        public_key, private_key = keypair
        n = public_key.n
        a, b = data.draw(st.integers(0, n - 1)), data.draw(st.integers(0, n - 1))
        k = data.draw(st.integers(-2 * n, 2 * n))
        ca, cb = public_key.raw_encrypt(a), public_key.raw_encrypt(b)
        assert private_key.raw_decrypt(ca + cb) == (a + b) % n
        assert private_key.raw_decrypt(ca * k) == (a * k) % n

    def test_negative_scalar_uses_a_short_exponent(self, public_key: PublicKey) -> None:
        # c * -1 must equal the modular inverse of c, not c^(n-1) computed the long way.
        c = public_key.encrypt(9)
        assert (c * -1).value == int(gmpy2.invert(c.value, public_key.nsquare))


class TestValidation:
    def test_ciphertext_range(self, public_key: PublicKey) -> None:
        nsquare = int(public_key.nsquare)
        for bad in (0, -5, nsquare, nsquare + 1):
            with pytest.raises(InvalidCiphertextError, match="out of range"):
                Ciphertext(public_key, bad)

    def test_ciphertext_sharing_a_factor_with_n(
        self, public_key: PublicKey, private_key: PrivateKey
    ) -> None:
        for bad in (private_key.p, private_key.q * 5, public_key.n):
            with pytest.raises(InvalidCiphertextError, match="shares a factor"):
                public_key.ciphertext(bad)

    def test_ciphertext_type(self, public_key: PublicKey) -> None:
        for bad in ("123", 1.5, True, None):
            with pytest.raises(InvalidCiphertextError):
                Ciphertext(public_key, bad)  # type: ignore[arg-type]

    def test_valid_ciphertext_accepted(
        self, public_key: PublicKey, private_key: PrivateKey
    ) -> None:
        c = public_key.encrypt(-77)
        assert private_key.decrypt(public_key.ciphertext(c.value)) == -77

    def test_different_keys_cannot_be_combined(
        self, keypair: tuple[PublicKey, PrivateKey], other_keypair: tuple[PublicKey, PrivateKey]
    ) -> None:
        mine, theirs = keypair[0].encrypt(1), other_keypair[0].encrypt(2)
        with pytest.raises(KeyMismatchError, match="different keys"):
            mine + theirs
        with pytest.raises(KeyMismatchError):
            mine - theirs
        with pytest.raises(KeyMismatchError, match="cannot be decrypted"):
            keypair[1].decrypt(theirs)

    def test_equal_keys_loaded_twice_combine(self, keypair: tuple[PublicKey, PrivateKey]) -> None:
        public_key, private_key = keypair
        twin = PublicKey(public_key.n)
        assert twin == public_key and twin is not public_key
        total = public_key.encrypt(3) + twin.encrypt(4)
        assert private_key.decrypt(total) == 7

    @pytest.mark.parametrize("n", [2**64, 15, 2**80 + 2])
    def test_structurally_bad_modulus(self, n: int) -> None:
        with pytest.raises(InvalidKeyError):
            PublicKey(n)


class TestRandomness:
    def test_fixed_base_table_matches_pow(self) -> None:
        from ppml.crypto.randomness import FixedBaseTable

        modulus = (2**127 - 1) * (2**89 - 1)
        table = FixedBaseTable(3, modulus, 200)
        for exponent in (0, 1, 255, 256, 2**199 + 12345, 2**200 - 1):
            assert table.power(exponent) == pow(3, exponent, modulus)

    @pytest.mark.parametrize("mode", ["djn", "standard"])
    def test_owner_and_public_masks_are_nth_residues(self, mode: str) -> None:
        public_key, private_key = generate_keypair(
            512,
            randomness=mode,
            insecure_test_key=True,  # type: ignore[arg-type]
        )
        assert public_key.randomness == mode
        phi = (private_key.p - 1) * (private_key.q - 1)
        nsquare = int(public_key.nsquare)
        for mask in (public_key.random_mask(), private_key.random_mask()):
            assert pow(int(mask), phi, nsquare) == 1 and mask != 1
        assert public_key.random_mask() != public_key.random_mask()
        assert private_key.random_mask() != private_key.random_mask()

    def test_djn_base_is_derived_from_n(self, private_key: PrivateKey) -> None:
        from ppml.crypto.hashing import hash_to_unit
        from ppml.crypto.randomness import DJN_BASE_TAG

        n = private_key.public_key.n
        x = hash_to_unit(DJN_BASE_TAG, n)
        expected = pow(-x * x % n, n, n * n)
        for key in (
            PublicKey(n, "djn"),
            PrivateKey.from_factors(private_key.p, private_key.q, randomness="djn").public_key,
        ):
            assert key.h_s == expected and key.randomness == "djn"
        # An n-th residue: its order divides phi(n).
        phi = (private_key.p - 1) * (private_key.q - 1)
        assert pow(expected, phi, n * n) == 1
        assert PublicKey(n).h_s is None and PublicKey(n, "djn").without_djn_base().h_s is None

    def test_degenerate_bases_are_refused(self, public_key: PublicKey) -> None:
        from ppml.crypto.randomness import check_djn_base

        n = public_key.n
        for base, message in [(1, "unit"), (n * n - 1, "h_s\\^2 = 1"), (n, "unit"), (0, "unit")]:
            with pytest.raises(InvalidKeyError, match=message):
                check_djn_base(n, base)
        check_djn_base(n, 12345)  # any other unit passes this check

    def test_unknown_randomness_mode(self, public_key: PublicKey) -> None:
        with pytest.raises(ValueError, match="randomness"):
            PublicKey(public_key.n, "fast")  # type: ignore[arg-type]


def test_precomputed_masks_are_used_once_and_never_inherited() -> None:
    import os

    from ppml.crypto.randomness import owner_masks

    _, private_key = generate_keypair(512, insecure_test_key=True)
    masks = owner_masks(private_key.p, private_key.q, private_key.public_key.h_s)
    masks.fill(4)
    first, second = private_key.random_mask(), private_key.random_mask()
    assert first != second and len(masks) == 2
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.write(write, str(len(masks)).encode())
        os._exit(0)
    os.waitpid(child, 0)
    assert os.read(read, 16) == b"0"
    assert len(masks) == 2


def test_a_block_of_ciphertexts_is_validated_at_once(
    keypair: tuple[PublicKey, PrivateKey],
) -> None:
    """One gcd for a block, and a bad value still named by its position."""
    public_key, private_key = keypair
    values = [int(private_key.raw_encrypt(m).value) for m in range(5)]
    assert Ciphertext.validated(public_key, values) == [Ciphertext(public_key, v) for v in values]
    for bad, problem in ((private_key.p, "shares a factor"), (0, "out of range")):
        for position in (0, 3, 5):
            block = [*values[:position], bad, *values[position:]]
            with pytest.raises(InvalidCiphertextError, match=problem) as refused:
                Ciphertext.validated(public_key, block)
            assert refused.value.index == position

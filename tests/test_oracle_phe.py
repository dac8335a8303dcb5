"""ppml against python-paillier (phe), an independent implementation, on the same p and q."""

from __future__ import annotations

import phe
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ppml.crypto import PrivateKey, PublicKey, generate_keypair


@pytest.fixture(scope="module")
def twins() -> tuple[PublicKey, PrivateKey, phe.PaillierPublicKey, phe.PaillierPrivateKey]:
    """The same key pair in both libraries (1024 bits: phe's own minimum default is 2048)."""
    public_key, private_key = generate_keypair(1024, insecure_test_key=True)
    phe_public = phe.PaillierPublicKey(public_key.n)
    phe_private = phe.PaillierPrivateKey(phe_public, private_key.p, private_key.q)
    return public_key, private_key, phe_public, phe_private


Twins = tuple[PublicKey, PrivateKey, phe.PaillierPublicKey, phe.PaillierPrivateKey]


def phe_number(phe_public: phe.PaillierPublicKey, ciphertext: int) -> phe.EncryptedNumber:
    """A ppml ciphertext seen by phe as an encrypted integer (exponent 0)."""
    return phe.EncryptedNumber(phe_public, ciphertext, exponent=0)


def test_same_randomness_gives_the_same_ciphertext(twins: Twins) -> None:
    public_key, _, phe_public, _ = twins
    for m, r in [(0, 1), (1, 2), (123456789, 987654321), (public_key.n - 1, public_key.n - 2)]:
        assert public_key.raw_encrypt_with(m, r).value == phe_public.raw_encrypt(m, r_value=r)


@given(m=st.integers(0, 2**1000))
def test_phe_decrypts_ppml_ciphertexts(twins: Twins, m: int) -> None:
    public_key, _, _, phe_private = twins
    m %= public_key.n
    assert phe_private.raw_decrypt(public_key.raw_encrypt(m).value) == m


@given(m=st.integers(0, 2**1000))
def test_ppml_decrypts_phe_ciphertexts(twins: Twins, m: int) -> None:
    public_key, private_key, phe_public, _ = twins
    m %= public_key.n
    assert private_key.raw_decrypt(public_key.ciphertext(phe_public.raw_encrypt(m))) == m


@given(m=st.integers(-(2**500), 2**500))
def test_signed_integers_agree_with_phe_encoding(twins: Twins, m: int) -> None:
    public_key, private_key, phe_public, phe_private = twins
    # phe encodes integers with exponent 0 as m mod n: the same signed convention.
    assert phe_private.decrypt(phe_number(phe_public, public_key.encrypt(m).value)) == m
    assert private_key.decrypt(public_key.ciphertext(phe_public.encrypt(m).ciphertext())) == m


@given(
    a=st.integers(-(2**400), 2**400),
    b=st.integers(-(2**400), 2**400),
    k=st.integers(-(2**100), 2**100),
)
def test_homomorphic_operations_agree_with_phe(twins: Twins, a: int, b: int, k: int) -> None:
    public_key, private_key, phe_public, phe_private = twins
    ca, cb = public_key.encrypt(a), public_key.encrypt(b)
    ea, eb = phe_number(phe_public, ca.value), phe_number(phe_public, cb.value)

    # Ciphertext-times-ciphertext and plaintext addition are deterministic: identical bits.
    assert (ca + cb).value == (ea + eb).ciphertext(be_secure=False)
    # Each library decrypts the other's results.
    assert phe_private.decrypt(phe_number(phe_public, (ca + cb).value)) == a + b
    assert phe_private.decrypt(phe_number(phe_public, (ca * k).value)) == a * k
    assert phe_private.decrypt(phe_number(phe_public, (ca + k).value)) == a + k
    assert private_key.decrypt(public_key.ciphertext((ea * k).ciphertext())) == a * k
    assert private_key.decrypt(public_key.ciphertext((ea + eb).ciphertext())) == a + b
    assert private_key.decrypt(public_key.ciphertext((ea - eb).ciphertext())) == a - b


def test_phe_float_encoding_decrypts_to_its_mantissa(twins: Twins) -> None:
    # phe stores 2.5 as mantissa * 16^exponent; ppml sees the raw mantissa.
    public_key, private_key, phe_public, _ = twins
    encrypted = phe_public.encrypt(2.5, precision=2**-8)
    mantissa = private_key.decrypt(public_key.ciphertext(encrypted.ciphertext()))
    assert mantissa * phe.EncodedNumber.BASE**encrypted.exponent == 2.5


@pytest.fixture(scope="module", params=["djn", "standard"])
def mode_twins(request: pytest.FixtureRequest) -> Twins:
    public_key, private_key = generate_keypair(
        1024, randomness=request.param, insecure_test_key=True
    )
    phe_public = phe.PaillierPublicKey(public_key.n)
    return (
        public_key,
        private_key,
        phe_public,
        phe.PaillierPrivateKey(phe_public, private_key.p, private_key.q),
    )


@given(m=st.integers(-(2**800), 2**800))
def test_every_randomness_mode_and_path_decrypts_in_phe(mode_twins: Twins, m: int) -> None:
    public_key, private_key, phe_public, phe_private = mode_twins
    for ciphertext in (public_key.encrypt(m), private_key.encrypt(m)):
        assert phe_private.decrypt(phe_number(phe_public, ciphertext.value)) == m
        assert private_key.decrypt(ciphertext.rerandomize()) == m

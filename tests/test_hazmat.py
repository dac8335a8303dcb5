"""The unchecked layer: exact results, and an operation sequence that ignores the weights."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ppml.crypto import PrivateKey, PublicKey
from ppml.crypto.hazmat import encrypt_with_mask, exponent_bits_for, weighted_sum
from ppml.errors import PlaintextOverflowError


@given(
    pairs=st.lists(
        st.tuples(st.integers(-(2**40), 2**40), st.integers(-(2**60), 2**60)),
        min_size=1,
        max_size=8,
    )
)
@example(pairs=[(5, 0)])  # a single zero weight: only dummy products
@example(pairs=[(1, -1), (2, -3)])  # only negative weights
def test_weighted_sum_matches_the_plaintext_sum(
    keypair: tuple[PublicKey, PrivateKey], pairs: list[tuple[int, int]]
) -> None:
    public_key, private_key = keypair
    values, weights = zip(*pairs, strict=True)
    ciphertexts = [public_key.encrypt(v) for v in values]
    total = weighted_sum(ciphertexts, list(weights), exponent_bits_for(weights))
    assert private_key.decrypt(total) == sum(v * w for v, w in pairs)


def test_weights_longer_than_declared_are_refused(keypair: tuple[PublicKey, PrivateKey]) -> None:
    public_key, _ = keypair
    with pytest.raises(ValueError, match="longer than the declared 8"):
        weighted_sum([public_key.encrypt(1)], [1 << 8], 8)
    with pytest.raises(ValueError, match="one weight per ciphertext"):
        weighted_sum([], [], 8)


def test_encrypt_with_mask_checks_the_plaintext_range(
    keypair: tuple[PublicKey, PrivateKey],
) -> None:
    public_key, private_key = keypair
    mask = public_key.random_mask()
    assert private_key.raw_decrypt(encrypt_with_mask(public_key, 42, mask)) == 42
    with pytest.raises(PlaintextOverflowError):
        encrypt_with_mask(public_key, public_key.n, mask)

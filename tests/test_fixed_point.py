"""Fixed-point encoding and bound-checked encrypted arithmetic."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ppml.crypto import PrivateKey, PublicKey
from ppml.encoding import EncryptedNumber, FixedPoint, decrypt_array, dot, encrypt_array
from ppml.errors import EncodingError, InvalidCiphertextError, PlaintextOverflowError

FMT = FixedPoint(32)
finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)


class TestFixedPoint:
    @given(x=st.floats(allow_nan=False, allow_infinity=False), bits=st.integers(0, 200))
    # The float fast path and its edges: a subnormal, a tie, and a scaling that overflows.
    @example(x=5e-324, bits=200)
    @example(x=-0.5, bits=0)
    @example(x=1.7976931348623157e308, bits=200)
    def test_encoding_is_exact_rounding(self, x: float, bits: int) -> None:
        encoded = FixedPoint(bits).encode(x)
        exact = Fraction(x) * 2**bits
        assert abs(encoded - exact) <= Fraction(1, 2)
        if abs(encoded - exact) == Fraction(1, 2):
            assert encoded % 2 == 0  # ties go to even

    @given(x=finite)
    def test_round_trip_within_half_a_step(self, x: float) -> None:
        assert abs(FMT.decode(FMT.encode(x)) - x) <= FMT.resolution / 2

    @given(k=st.integers(-(2**200), 2**200), bits=st.integers(0, 64))
    def test_integers_are_exact(self, k: int, bits: int) -> None:
        assert FixedPoint(bits).encode(k) == k << bits

    def test_examples(self) -> None:
        assert FixedPoint(4).encode(1.5) == 24
        assert FixedPoint(4).encode(-1.5) == -24
        assert FixedPoint(0).encode(2.5) == 2 and FixedPoint(0).encode(3.5) == 4
        assert FixedPoint(4).decode(-24) == -1.5
        assert FixedPoint(10).times(FixedPoint(20)) == FixedPoint(30)

    @pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "1.0", None, 1j])
    def test_non_numbers_are_refused(self, bad: object) -> None:
        with pytest.raises(EncodingError):
            FMT.encode(bad)  # type: ignore[arg-type]

    def test_arrays(self) -> None:
        values = np.array([[0.5, -1.25], [3.0, 1e-3]])
        encoded = FMT.encode_array(values)
        assert encoded.shape == (2, 2) and encoded.dtype == object
        assert encoded[0, 1] == -(5 << 30)
        np.testing.assert_allclose(FMT.decode_array(encoded.ravel()), values.ravel(), atol=1e-9)
        assert list(FixedPoint(3).encode_array(np.array([1, -2], dtype=np.int64))) == [8, -16]
        with pytest.raises(EncodingError):
            FMT.encode_array(np.array(["a"]))
        with pytest.raises(EncodingError):
            FMT.encode_array(np.array([1.0, np.nan]))

    def test_invalid_formats(self) -> None:
        for bad in (-1, 5000, 1.5):
            with pytest.raises(ValueError):
                FixedPoint(bad)  # type: ignore[arg-type]

    def test_decoding_beyond_float_range(self) -> None:
        with pytest.raises(PlaintextOverflowError):
            FixedPoint(0).decode(1 << 1100)


class TestEncryptedNumber:
    @given(x=finite)
    def test_round_trip(self, keypair: tuple[PublicKey, PrivateKey], x: float) -> None:
        public_key, private_key = keypair
        assert EncryptedNumber.encrypt(public_key, x, FMT).decrypt(private_key) == FMT.decode(
            FMT.encode(x)
        )

    @given(a=finite, b=finite)
    def test_addition_is_exact_on_the_encodings(
        self, keypair: tuple[PublicKey, PrivateKey], a: float, b: float
    ) -> None:
        public_key, private_key = keypair
        ea, eb = (
            EncryptedNumber.encrypt(public_key, a, FMT),
            EncryptedNumber.encrypt(public_key, b, FMT),
        )
        expected = FMT.encode(a) + FMT.encode(b)
        assert (ea + eb).decrypt_encoded(private_key) == expected
        assert (ea + b).decrypt_encoded(private_key) == expected
        assert (ea - eb).decrypt_encoded(private_key) == FMT.encode(a) - FMT.encode(b)
        assert (b - ea).decrypt_encoded(private_key) == FMT.encode(b) - FMT.encode(a)

    @given(x=finite, w=finite, weight_bits=st.integers(0, 60))
    def test_product_decodes_at_the_combined_scale(
        self, keypair: tuple[PublicKey, PrivateKey], x: float, w: float, weight_bits: int
    ) -> None:
        public_key, private_key = keypair
        weight_fmt = FixedPoint(weight_bits)
        product = EncryptedNumber.encrypt(public_key, x, FMT).multiply(w, weight_fmt)
        assert product.fmt == FixedPoint(32 + weight_bits)
        exact = FMT.encode(x) * weight_fmt.encode(w)
        assert product.decrypt_encoded(private_key) == exact
        assert product.decrypt(private_key) == exact / 2 ** (32 + weight_bits)

    @given(x=finite, k=st.integers(-(10**6), 10**6))
    def test_integer_scalars_keep_the_format(
        self, keypair: tuple[PublicKey, PrivateKey], x: float, k: int
    ) -> None:
        public_key, private_key = keypair
        product = EncryptedNumber.encrypt(public_key, x, FMT) * k
        assert product.fmt == FMT
        assert product.decrypt_encoded(private_key) == FMT.encode(x) * k

    def test_mixed_scales_are_aligned(self, keypair: tuple[PublicKey, PrivateKey]) -> None:
        public_key, private_key = keypair
        coarse = EncryptedNumber.encrypt(public_key, 1.5, FixedPoint(4))
        fine = EncryptedNumber.encrypt(public_key, 0.25, FixedPoint(16))
        total = coarse + fine
        assert total.fmt == FixedPoint(16) and total.decrypt(private_key) == 1.75

    def test_scalar_product(self, keypair: tuple[PublicKey, PrivateKey]) -> None:
        public_key, private_key = keypair
        x, w = np.array([1.5, -2.0, 0.125, 1000.0]), np.array([0.3, -0.7, 12.0, 1e-4])
        encrypted = encrypt_array(public_key, x, FMT, bound=1e4)
        result = dot(encrypted, w, FixedPoint(52)).rerandomize()
        assert result.decrypt(private_key) == pytest.approx(float(x @ w), rel=1e-9)
        np.testing.assert_array_equal(decrypt_array(private_key, encrypted), x)

    def test_edges_of_the_representable_range(self, keypair: tuple[PublicKey, PrivateKey]) -> None:
        public_key, private_key = keypair
        edge = public_key.max_int
        top = EncryptedNumber.encrypt(public_key, edge, FixedPoint(0))
        bottom = EncryptedNumber.encrypt(public_key, -edge, FixedPoint(0))
        assert top.decrypt_encoded(private_key) == edge
        assert bottom.decrypt_encoded(private_key) == -edge
        # Bounds are worst cases: |top + bottom| could be 2 * edge, so the sum is refused.
        with pytest.raises(PlaintextOverflowError, match="sum"):
            top + bottom
        for too_big in (edge + 1, -edge - 1):
            with pytest.raises(PlaintextOverflowError, match="plaintext space"):
                EncryptedNumber.encrypt(public_key, too_big, FixedPoint(0))

    @given(data=st.data())
    def test_overflow_is_refused_before_computing(
        self, keypair: tuple[PublicKey, PrivateKey], data: st.DataObject
    ) -> None:
        public_key, _ = keypair
        edge = public_key.max_int
        a = data.draw(st.integers(edge // 2 + 1, edge))
        b = data.draw(st.integers(edge - a + 1, edge))
        ea = EncryptedNumber.encrypt(public_key, a, FixedPoint(0))
        eb = EncryptedNumber.encrypt(public_key, b, FixedPoint(0))
        with pytest.raises(PlaintextOverflowError, match="sum"):
            ea + eb
        with pytest.raises(PlaintextOverflowError, match="sum"):
            ea + b
        with pytest.raises(PlaintextOverflowError, match="product"):
            ea * 2
        k = data.draw(st.integers(2, 2**64))
        with pytest.raises(PlaintextOverflowError, match="product"):
            ea.multiply(float(k), FixedPoint(0))

    def test_rescaling_that_would_overflow_is_refused(
        self, keypair: tuple[PublicKey, PrivateKey]
    ) -> None:
        public_key, _ = keypair
        big = EncryptedNumber.encrypt(public_key, public_key.max_int >> 3, FixedPoint(0))
        with pytest.raises(PlaintextOverflowError, match="rescaled"):
            big + EncryptedNumber.encrypt(public_key, 0.5, FixedPoint(8))

    def test_declared_bound(self, keypair: tuple[PublicKey, PrivateKey]) -> None:
        public_key, _ = keypair
        number = EncryptedNumber.encrypt(public_key, 3.0, FMT, bound=100.0)
        assert number.bound == FMT.encode(100.0)
        with pytest.raises(PlaintextOverflowError, match="declared bound"):
            EncryptedNumber.encrypt(public_key, 101.0, FMT, bound=100.0)
        with pytest.raises(PlaintextOverflowError, match="declared bound"):
            EncryptedNumber.from_ciphertext(number.ciphertext, FMT, public_key.max_int + 1)

    def test_a_value_beyond_its_bound_is_detected_at_decryption(
        self, keypair: tuple[PublicKey, PrivateKey]
    ) -> None:
        public_key, private_key = keypair
        # A ciphertext whose sender lied about its bound (or that was altered).
        lie = EncryptedNumber.from_ciphertext(public_key.encrypt(10**6), FixedPoint(0), 10)
        with pytest.raises(InvalidCiphertextError, match="proven bound"):
            lie.decrypt(private_key)

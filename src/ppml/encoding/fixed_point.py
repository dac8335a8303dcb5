"""Signed fixed-point encoding of real numbers, and encrypted numbers that carry it.

The layout is specified in ``docs/encoding.md``; in short:

- a :class:`FixedPoint` format with ``f`` fractional bits represents a real x by
  the integer ``X = round(x * 2^f)`` (round half to even, computed exactly);
- negative X is stored in the Paillier plaintext space as ``n + X``;
- the product of two encodings with ``f1`` and ``f2`` fractional bits has
  ``f1 + f2``; a sum is taken at the larger of its operands' scales.

An :class:`EncryptedNumber` carries its format and a *bound*: an integer that
``|X|`` is proven not to exceed. Every operation computes the bound of its
result first and raises :class:`~ppml.errors.PlaintextOverflowError` if it
could leave the signed plaintext range ``[-(n-1)/2, (n-1)/2]``, so a result is
never silently wrapped around modulo n.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ppml.crypto import Ciphertext, PrivateKey, PublicKey
from ppml.errors import EncodingError, InvalidCiphertextError, PlaintextOverflowError

MAX_FRAC_BITS = 4096


@dataclass(frozen=True, slots=True)
class FixedPoint:
    """A signed fixed-point format with ``frac_bits`` fractional bits."""

    frac_bits: int

    def __post_init__(self) -> None:
        if not isinstance(self.frac_bits, int) or not 0 <= self.frac_bits <= MAX_FRAC_BITS:
            raise ValueError(f"frac_bits must be an int in [0, {MAX_FRAC_BITS}]")

    @property
    def resolution(self) -> float:
        """The smallest positive step the format can represent, 2^-frac_bits."""
        return math.ldexp(1.0, -self.frac_bits)

    def times(self, other: FixedPoint) -> FixedPoint:
        """The format of a product of a value in this format and one in ``other``."""
        return FixedPoint(self.frac_bits + other.frac_bits)

    def encode(self, value: Real | float | int) -> int:
        """Return ``round(value * 2^frac_bits)``, exactly, rounding half to even."""
        return _scaled_integer(value, self.frac_bits)

    def encode_array(self, values: ArrayLike) -> NDArray[np.object_]:
        """Encode every element of an array; the result holds Python ints."""
        array = np.asarray(values)
        if array.dtype.kind not in "biuf":
            raise EncodingError(f"cannot encode an array of dtype {array.dtype}")
        encoded = np.empty(array.shape, dtype=object)
        for index, element in np.ndenumerate(array):
            encoded[index] = _scaled_integer(element.item(), self.frac_bits)
        return encoded

    def decode(self, integer: int) -> float:
        """Return the float nearest to ``integer / 2^frac_bits``."""
        try:
            # int / int is correctly rounded in CPython, however large the operands.
            return int(integer) / (1 << self.frac_bits)
        except OverflowError:
            raise PlaintextOverflowError("decoded value is outside the range of a float") from None

    def decode_array(self, integers: Iterable[int]) -> NDArray[np.float64]:
        """Decode a sequence of integers into a float64 array."""
        return np.array([self.decode(i) for i in integers], dtype=np.float64)


def _scaled_integer(value: Any, frac_bits: int) -> int:
    if isinstance(value, bool | np.bool_):
        return int(value) << frac_bits
    if isinstance(value, int | np.integer):
        return int(value) << frac_bits
    if isinstance(value, float | np.floating):
        x = float(value)
        if not math.isfinite(x):
            raise EncodingError(f"cannot encode {x}: only finite numbers have an encoding")
        # Scaling a float by a power of two is exact unless it overflows, and round()
        # of a float rounds half to even exactly: the common case without big integers.
        try:
            return round(math.ldexp(x, frac_bits))
        except OverflowError:
            pass
        numerator, denominator = x.as_integer_ratio()  # denominator is a power of two
        quotient, remainder = divmod(numerator << frac_bits, denominator)
        twice = 2 * remainder
        if twice > denominator or (twice == denominator and quotient & 1):
            quotient += 1
        return quotient
    raise EncodingError(f"cannot encode a value of type {type(value).__name__}")


def _check_fits(bound: int, public_key: PublicKey, what: str) -> None:
    if bound > public_key.max_int:
        raise PlaintextOverflowError(
            f"{what} could reach {bound.bit_length()} bits, more than the "
            f"{public_key.max_int.bit_length()}-bit signed plaintext space of a "
            f"{public_key.bits}-bit key"
        )


@dataclass(frozen=True, slots=True)
class EncryptedNumber:
    """An encrypted fixed-point number with a proven bound on its encoding.

    ``bound`` is an integer with ``|X| <= bound`` for the encoded plaintext X.
    It is known to whoever computes with the number and is never sent with
    it: a receiver assigns the bound from public, declared limits.
    """

    ciphertext: Ciphertext
    fmt: FixedPoint
    bound: int

    @property
    def public_key(self) -> PublicKey:
        """The key the number is encrypted under."""
        return self.ciphertext.public_key

    @classmethod
    def encrypt(
        cls,
        public_key: PublicKey,
        value: float | int,
        fmt: FixedPoint,
        *,
        bound: float | int | None = None,
    ) -> EncryptedNumber:
        """Encrypt ``value`` in format ``fmt``.

        With ``bound``, the number is declared to satisfy ``|value| <= bound``
        (checked), and later overflow checks use that declared bound, so they
        do not depend on, or reveal, the value itself.
        """
        encoded = fmt.encode(value)
        limit = abs(encoded) if bound is None else fmt.encode(abs(bound))
        if abs(encoded) > limit:
            raise PlaintextOverflowError(f"{value!r} is outside its declared bound {bound!r}")
        _check_fits(limit, public_key, "the value")
        return cls(public_key.encrypt(encoded), fmt, limit)

    @classmethod
    def from_ciphertext(
        cls, ciphertext: Ciphertext, fmt: FixedPoint, bound: int
    ) -> EncryptedNumber:
        """Adopt a received ciphertext whose encoding is declared to satisfy ``|X| <= bound``."""
        _check_fits(bound, ciphertext.public_key, "the declared bound")
        return cls(ciphertext, fmt, bound)

    def _rescaled(self, frac_bits: int) -> EncryptedNumber:
        shift = frac_bits - self.fmt.frac_bits
        if shift == 0:
            return self
        bound = self.bound << shift
        _check_fits(bound, self.public_key, "the rescaled value")
        return EncryptedNumber(self.ciphertext * (1 << shift), FixedPoint(frac_bits), bound)

    def __add__(self, other: EncryptedNumber | float | int) -> EncryptedNumber:
        if isinstance(other, EncryptedNumber):
            frac_bits = max(self.fmt.frac_bits, other.fmt.frac_bits)
            left, right = self._rescaled(frac_bits), other._rescaled(frac_bits)
            bound = left.bound + right.bound
            _check_fits(bound, self.public_key, "the sum")
            return EncryptedNumber(left.ciphertext + right.ciphertext, left.fmt, bound)
        if isinstance(other, int | float | np.integer | np.floating):
            encoded = self.fmt.encode(other)
            bound = self.bound + abs(encoded)
            _check_fits(bound, self.public_key, "the sum")
            return EncryptedNumber(self.ciphertext + encoded, self.fmt, bound)
        return NotImplemented

    __radd__ = __add__

    def __neg__(self) -> EncryptedNumber:
        return EncryptedNumber(-self.ciphertext, self.fmt, self.bound)

    def __sub__(self, other: EncryptedNumber | float | int) -> EncryptedNumber:
        if isinstance(other, EncryptedNumber | int | float | np.integer | np.floating):
            return self + (-other)
        return NotImplemented

    def __rsub__(self, other: float | int) -> EncryptedNumber:
        return (-self) + other

    def __mul__(self, scalar: float | int) -> EncryptedNumber:
        """Multiply by a plaintext: an int exactly, a float in this number's own format."""
        if isinstance(scalar, int | np.integer):
            return self.multiply(scalar, FixedPoint(0))
        if isinstance(scalar, float | np.floating):
            return self.multiply(scalar, self.fmt)
        return NotImplemented

    __rmul__ = __mul__

    def multiply(self, scalar: float | int, scalar_fmt: FixedPoint) -> EncryptedNumber:
        """Multiply by ``scalar`` encoded in ``scalar_fmt``; the result has the combined format."""
        encoded = scalar_fmt.encode(scalar)
        bound = self.bound * abs(encoded)
        _check_fits(bound, self.public_key, "the product")
        return EncryptedNumber(self.ciphertext * encoded, self.fmt.times(scalar_fmt), bound)

    def rerandomize(self) -> EncryptedNumber:
        """The same number under fresh randomness."""
        return EncryptedNumber(self.ciphertext.rerandomize(), self.fmt, self.bound)

    def decrypt_encoded(self, private_key: PrivateKey) -> int:
        """Decrypt to the encoded integer X, checking it against the proven bound."""
        encoded = private_key.decrypt(self.ciphertext)
        if abs(encoded) > self.bound:
            raise InvalidCiphertextError(
                "decrypted value exceeds its proven bound: the ciphertext was altered "
                "or its declared bound is wrong"
            )
        return encoded

    def decrypt(self, private_key: PrivateKey) -> float:
        """Decrypt and decode to the nearest float."""
        return self.fmt.decode(self.decrypt_encoded(private_key))


def encrypt_array(
    public_key: PublicKey,
    values: ArrayLike,
    fmt: FixedPoint,
    *,
    bound: float | int | None = None,
) -> list[EncryptedNumber]:
    """Encrypt every element of a one-dimensional array."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError("encrypt_array takes a one-dimensional array")
    return [EncryptedNumber.encrypt(public_key, v.item(), fmt, bound=bound) for v in array]


def decrypt_array(
    private_key: PrivateKey, numbers: Iterable[EncryptedNumber]
) -> NDArray[np.float64]:
    """Decrypt a sequence of encrypted numbers into a float64 array."""
    return np.array([number.decrypt(private_key) for number in numbers], dtype=np.float64)


def dot(
    numbers: Sequence[EncryptedNumber], weights: ArrayLike, weight_fmt: FixedPoint
) -> EncryptedNumber:
    """The encrypted scalar product ``sum(numbers[j] * weights[j])``."""
    weight_array = np.asarray(weights)
    if weight_array.shape != (len(numbers),) or not numbers:
        raise ValueError("dot needs one weight per encrypted number, and at least one")
    total = numbers[0].multiply(weight_array[0].item(), weight_fmt)
    for number, weight in zip(numbers[1:], weight_array[1:], strict=True):
        total = total + number.multiply(weight.item(), weight_fmt)
    return total

"""Packing several signed values into one plaintext, one per slot of fixed width.

A layout with K slots of s bits stores values v_0..v_{K-1}, each with
``|v_k| < 2^(s-1)``, as the single integer ``P = sum_k v_k * 2^(k*s)``. The
map is linear over the integers, so multiplying the ciphertext of P by a
plaintext w and adding packed ciphertexts acts on every slot at once; as
long as every slot of the *result* still satisfies the bound, the result
unpacks exactly, negative values included (centred digits: no offsets).
The layout is specified in ``docs/encoding.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ppml.errors import PlaintextOverflowError


def slot_bits_for(bound: int) -> int:
    """Slot width that holds every signed value with ``|v| <= bound``."""
    return max(bound.bit_length() + 1, 2)


@dataclass(frozen=True, slots=True)
class PackingLayout:
    """``slots`` values of ``slot_bits`` bits each in one plaintext."""

    slots: int
    slot_bits: int

    def __post_init__(self) -> None:
        if self.slots < 1 or self.slot_bits < 2:
            raise ValueError("a layout needs at least one slot of at least two bits")

    @classmethod
    def for_key(cls, key_bits: int, slot_bits: int, *, pack: bool = True) -> PackingLayout:
        """The densest layout of ``slot_bits``-bit slots in a ``key_bits``-bit key.

        Two bits of the modulus stay free so a packed value is always inside
        the signed plaintext range. ``pack=False`` gives one slot per plaintext.
        """
        capacity = key_bits - 2
        if slot_bits > capacity:
            raise PlaintextOverflowError(
                f"a slot of {slot_bits} bits does not fit a {key_bits}-bit key"
            )
        return cls(capacity // slot_bits if pack else 1, slot_bits)

    @property
    def total_bits(self) -> int:
        """Bits a fully packed plaintext may occupy."""
        return self.slots * self.slot_bits

    @property
    def slot_limit(self) -> int:
        """Every slot value must satisfy ``|v| < slot_limit``."""
        return 1 << (self.slot_bits - 1)

    def fits(self, key_bits: int) -> bool:
        """Whether packed values stay within the signed plaintext range of a key."""
        return self.total_bits <= key_bits - 2

    def pack(self, values: Sequence[int]) -> int:
        """Pack up to ``slots`` signed values (slot 0 first)."""
        if len(values) > self.slots:
            raise ValueError(f"at most {self.slots} values fit one plaintext")
        limit = self.slot_limit
        packed = 0
        for value in reversed(values):
            if not -limit < value < limit:
                raise PlaintextOverflowError(f"{value} does not fit a {self.slot_bits}-bit slot")
            packed = (packed << self.slot_bits) + value
        return packed

    def unpack(self, packed: int, count: int, bound: int | None = None) -> list[int]:
        """The first ``count`` slot values of ``packed``; every other slot must be empty.

        With ``bound``, each value must also satisfy ``|v| <= bound``. A packed
        value that breaks either rule was not produced by a valid computation.
        """
        limit = bound if bound is not None else self.slot_limit - 1
        modulus, half = 1 << self.slot_bits, self.slot_limit
        values = []
        remaining = packed
        for _ in range(count):
            digit = remaining & (modulus - 1)
            if digit >= half:
                digit -= modulus
            if abs(digit) > limit:
                raise PlaintextOverflowError("a slot holds a value beyond its bound")
            values.append(digit)
            remaining = (remaining - digit) >> self.slot_bits
        if remaining:
            raise PlaintextOverflowError("bits beyond the used slots are set")
        return values

"""Fixed-point encoding of real numbers and bound-checked encrypted arithmetic."""

from ppml.encoding.fixed_point import (
    EncryptedNumber,
    FixedPoint,
    decrypt_array,
    dot,
    encrypt_array,
)

__all__ = ["EncryptedNumber", "FixedPoint", "decrypt_array", "dot", "encrypt_array"]

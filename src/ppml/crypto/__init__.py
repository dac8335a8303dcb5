"""The Paillier cryptosystem: keys, ciphertexts and their homomorphic operations."""

from ppml.crypto.paillier import (
    DEFAULT_KEY_BITS,
    MIN_KEY_BITS,
    Ciphertext,
    PrivateKey,
    PublicKey,
    check_key_size,
    generate_keypair,
    key_fingerprint,
)

__all__ = [
    "DEFAULT_KEY_BITS",
    "MIN_KEY_BITS",
    "Ciphertext",
    "PrivateKey",
    "PublicKey",
    "check_key_size",
    "generate_keypair",
    "key_fingerprint",
]

"""The Paillier cryptosystem: keys, ciphertexts, homomorphic operations, key proofs and policy."""

from ppml.crypto.paillier import (
    DEFAULT_KEY_BITS,
    Ciphertext,
    PrivateKey,
    PublicKey,
    Randomness,
    generate_keypair,
    key_fingerprint,
)
from ppml.crypto.policy import (
    DEFAULT_KEY_POLICY,
    MAX_KEY_BITS,
    MIN_KEY_BITS,
    SERVER_KEY_POLICY,
    KeyPolicy,
)
from ppml.crypto.proofs import ModulusProof, prove_modulus, verify_modulus

__all__ = [
    "DEFAULT_KEY_BITS",
    "DEFAULT_KEY_POLICY",
    "MAX_KEY_BITS",
    "MIN_KEY_BITS",
    "SERVER_KEY_POLICY",
    "Ciphertext",
    "KeyPolicy",
    "ModulusProof",
    "PrivateKey",
    "PublicKey",
    "Randomness",
    "generate_keypair",
    "key_fingerprint",
    "prove_modulus",
    "verify_modulus",
]

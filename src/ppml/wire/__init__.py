"""Versioned file and wire formats: key files, query and result files, python-paillier JWK."""

from ppml.wire.keyfile import (
    PRIVATE_KEY_FILENAME,
    PUBLIC_KEY_FILENAME,
    Argon2Settings,
    load_private_key,
    load_public_key,
    save_keypair,
    save_private_key,
    save_public_key,
)
from ppml.wire.phe_jwk import load_jwk, save_jwk

__all__ = [
    "PRIVATE_KEY_FILENAME",
    "PUBLIC_KEY_FILENAME",
    "Argon2Settings",
    "load_jwk",
    "load_private_key",
    "load_public_key",
    "save_jwk",
    "save_keypair",
    "save_private_key",
    "save_public_key",
]

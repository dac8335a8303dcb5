"""Key files: versioned JSON documents for Paillier public and private keys.

The layout is specified in ``docs/key-files.md``. Private keys are written
with mode 0600, atomically, and never over an existing file unless asked.
A private key may be protected by a passphrase: Argon2id derives a 256-bit
key that seals the factors with AES-256-GCM; the header (format, version,
key id, modulus, KDF settings) is authenticated too, so it cannot be swapped.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from ppml.crypto import MIN_KEY_BITS, PrivateKey, PublicKey, check_key_size, key_fingerprint
from ppml.errors import InsecureKeyError, InvalidKeyError, KeyFileError, PassphraseError
from ppml.fileio import PRIVATE_FILE_MODE, PUBLIC_FILE_MODE, write_atomic
from ppml.wire.document import (
    DocumentReader,
    base64_text,
    canonical_json,
    dump_document,
    hex_int,
    parse_document,
    read_document_bytes,
)

PUBLIC_KEY_FORMAT = "ppml.paillier.public-key"
PRIVATE_KEY_FORMAT = "ppml.paillier.private-key"
KEY_FILE_VERSION = 2
READABLE_KEY_FILE_VERSIONS = frozenset({1, 2})  # version 1 had no randomness mode (standard)
PUBLIC_KEY_FILENAME = "public_key.json"
PRIVATE_KEY_FILENAME = "private_key.json"

Passphrase = str | bytes | Callable[[], str | bytes]
"""A passphrase, or a function asked for one only when a file turns out to need it."""


@dataclass(frozen=True, slots=True)
class Argon2Settings:
    """Cost of the passphrase key derivation (defaults: RFC 9106's second recommendation)."""

    iterations: int = 3
    lanes: int = 4
    memory_kib: int = 64 * 1024

    # A hostile file must not make the loader allocate unbounded memory or time.
    MAX_ITERATIONS = 64
    MAX_LANES = 64
    MAX_MEMORY_KIB = 4 * 1024 * 1024

    def __post_init__(self) -> None:
        if not (
            1 <= self.iterations <= self.MAX_ITERATIONS
            and 1 <= self.lanes <= self.MAX_LANES
            and 8 * self.lanes <= self.memory_kib <= self.MAX_MEMORY_KIB
        ):
            raise ValueError("Argon2id settings out of the accepted range")

    def derive(self, passphrase: bytes, salt: bytes) -> bytes:
        """Derive a 32-byte key from ``passphrase`` and ``salt``."""
        kdf = Argon2id(
            salt=salt,
            length=32,
            iterations=self.iterations,
            lanes=self.lanes,
            memory_cost=self.memory_kib,
        )
        return kdf.derive(passphrase)


def _key_error(path: str | Path | None, problem: str) -> KeyFileError:
    return KeyFileError(path, problem)


def _public_members(public_key: PublicKey) -> dict[str, Any]:
    members: dict[str, Any] = {
        "key_id": public_key.key_id,
        "bits": public_key.bits,
        "n": hex_int(public_key.n),
        "randomness": public_key.randomness,
    }
    if public_key.h_s is not None:
        members["djn_h_s"] = hex_int(public_key.h_s)
    return members


def public_key_document(public_key: PublicKey) -> dict[str, Any]:
    """The JSON document of a public key."""
    return {"format": PUBLIC_KEY_FORMAT, "version": KEY_FILE_VERSION, **_public_members(public_key)}


def _read_public_key(document: DocumentReader, min_bits: int) -> PublicKey:
    n = document.hex_int("n")
    if document.get("bits", int) != n.bit_length():
        raise document.fail("field 'bits' does not match the modulus (damaged file)")
    if document.get("key_id", str) != key_fingerprint(n):
        raise document.fail("field 'key_id' does not match the modulus (damaged file)")
    h_s = None
    if document.get("version", int) >= 2:
        randomness = document.get("randomness", str)
        if randomness == "djn":
            h_s = document.hex_int("djn_h_s")
        elif randomness != "standard":
            raise document.fail(f"unknown randomness mode {randomness!r}")
    try:
        check_key_size(n.bit_length(), min_bits)
        return PublicKey(n, h_s)
    except (InsecureKeyError, InvalidKeyError) as error:
        raise document.fail(str(error)) from None


def parse_public_key(
    data: bytes, path: str | Path | None = None, *, min_bits: int = MIN_KEY_BITS
) -> PublicKey:
    """Parse a public key document."""
    document = parse_document(
        data,
        path,
        expected_format=PUBLIC_KEY_FORMAT,
        supported_versions=READABLE_KEY_FILE_VERSIONS,
        error=_key_error,
    )
    return _read_public_key(document, min_bits)


def load_public_key(path: str | Path, *, min_bits: int = MIN_KEY_BITS) -> PublicKey:
    """Load a public key file, refusing moduli under ``min_bits`` bits."""
    return parse_public_key(read_document_bytes(path, _key_error), path, min_bits=min_bits)


def save_public_key(public_key: PublicKey, path: str | Path, *, overwrite: bool = True) -> None:
    """Write a public key file atomically."""
    write_atomic(
        path,
        dump_document(public_key_document(public_key)),
        mode=PUBLIC_FILE_MODE,
        overwrite=overwrite,
    )


def _passphrase_bytes(passphrase: Passphrase) -> bytes:
    value = passphrase() if callable(passphrase) else passphrase
    data = value.encode("utf-8") if isinstance(value, str) else value
    if not data:
        raise PassphraseError(None, "the passphrase is empty")
    return data


def private_key_document(
    private_key: PrivateKey,
    *,
    passphrase: Passphrase | None = None,
    argon2: Argon2Settings | None = None,
) -> dict[str, Any]:
    """The JSON document of a private key, sealed under ``passphrase`` if one is given."""
    header: dict[str, Any] = {
        "format": PRIVATE_KEY_FORMAT,
        "version": KEY_FILE_VERSION,
        **_public_members(private_key.public_key),
    }
    factors = {"p": hex_int(private_key.p), "q": hex_int(private_key.q)}
    if passphrase is None:
        return {**header, "protection": "none", **factors}
    settings = argon2 or Argon2Settings()
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    protection = {
        "kdf": "argon2id",
        "salt": base64_text(salt),
        "iterations": settings.iterations,
        "lanes": settings.lanes,
        "memory_kib": settings.memory_kib,
        "cipher": "aes-256-gcm",
        "nonce": base64_text(nonce),
    }
    header["protection"] = protection
    key = settings.derive(_passphrase_bytes(passphrase), salt)
    sealed = AESGCM(key).encrypt(nonce, canonical_json(factors), canonical_json(header))
    return {**header, "encrypted_factors": base64_text(sealed)}


def save_private_key(
    private_key: PrivateKey,
    path: str | Path,
    *,
    passphrase: Passphrase | None = None,
    argon2: Argon2Settings | None = None,
    overwrite: bool = False,
) -> None:
    """Write a private key file with mode 0600, atomically; refuse to replace one unless asked."""
    document = private_key_document(private_key, passphrase=passphrase, argon2=argon2)
    write_atomic(path, dump_document(document), mode=PRIVATE_FILE_MODE, overwrite=overwrite)


def _unseal_factors(
    document: DocumentReader, header: dict[str, Any], passphrase: Passphrase | None
) -> DocumentReader:
    protection = document.reader("protection")
    if protection.get("kdf", str) != "argon2id" or protection.get("cipher", str) != "aes-256-gcm":
        raise document.fail("unknown key protection scheme")
    try:
        settings = Argon2Settings(
            iterations=protection.get("iterations", int),
            lanes=protection.get("lanes", int),
            memory_kib=protection.get("memory_kib", int),
        )
    except ValueError:
        raise document.fail("key protection settings out of the accepted range") from None
    salt, nonce = protection.base64_bytes("salt"), protection.base64_bytes("nonce")
    sealed = document.base64_bytes("encrypted_factors")
    if len(nonce) != 12 or len(salt) < 16:
        raise document.fail("key protection salt or nonce has the wrong length")
    if passphrase is None:
        raise PassphraseError(document.path, "the private key is protected: a passphrase is needed")
    try:
        secret = _passphrase_bytes(passphrase)
    except PassphraseError as error:
        raise PassphraseError(document.path, error.problem) from None
    key = settings.derive(secret, salt)
    try:
        opened = AESGCM(key).decrypt(nonce, sealed, canonical_json(header))
    except InvalidTag:
        raise PassphraseError(
            document.path, "wrong passphrase, or the file has been altered"
        ) from None
    return DocumentReader(json.loads(opened), document.path, _key_error)


def parse_private_key(
    data: bytes,
    path: str | Path | None = None,
    *,
    passphrase: Passphrase | None = None,
    min_bits: int = MIN_KEY_BITS,
) -> PrivateKey:
    """Parse a private key document, asking for the passphrase only if it is protected."""
    document = parse_document(
        data,
        path,
        expected_format=PRIVATE_KEY_FORMAT,
        supported_versions=READABLE_KEY_FILE_VERSIONS,
        error=_key_error,
    )
    public_key = _read_public_key(document, min_bits)
    protection = document.members.get("protection")
    if protection == "none":
        factors = document
    elif isinstance(protection, dict):
        header = {
            name: value for name, value in document.members.items() if name != "encrypted_factors"
        }
        factors = _unseal_factors(document, header, passphrase)
    else:
        raise document.fail("field 'protection' must be \"none\" or an object")
    try:
        return PrivateKey(public_key, factors.hex_int("p"), factors.hex_int("q"))
    except InvalidKeyError as error:
        raise document.fail(f"{error} (damaged file)") from None


def load_private_key(
    path: str | Path,
    *,
    passphrase: Passphrase | None = None,
    min_bits: int = MIN_KEY_BITS,
) -> PrivateKey:
    """Load a private key file; ``passphrase`` is used only if the file is protected."""
    return parse_private_key(
        read_document_bytes(path, _key_error), path, passphrase=passphrase, min_bits=min_bits
    )


def is_protected(path: str | Path) -> bool:
    """Whether a private key file is sealed under a passphrase (without checking the rest)."""
    try:
        members = json.loads(read_document_bytes(path, _key_error))
    except json.JSONDecodeError:
        return False
    return isinstance(members, dict) and isinstance(members.get("protection"), dict)


def save_keypair(
    directory: str | Path,
    private_key: PrivateKey,
    *,
    passphrase: Passphrase | None = None,
    argon2: Argon2Settings | None = None,
    overwrite: bool = False,
) -> tuple[Path, Path]:
    """Write ``public_key.json`` and ``private_key.json`` into ``directory``; return their paths."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    public_path, private_path = folder / PUBLIC_KEY_FILENAME, folder / PRIVATE_KEY_FILENAME
    if not overwrite:
        for existing in (public_path, private_path):
            if existing.exists():
                raise FileExistsError(f"{existing} already exists; refusing to replace a key")
    save_private_key(
        private_key, private_path, passphrase=passphrase, argon2=argon2, overwrite=overwrite
    )
    save_public_key(private_key.public_key, public_path, overwrite=True)
    return public_path, private_path

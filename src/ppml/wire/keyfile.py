"""Key files: versioned JSON documents for Paillier public and private keys.

The layout is specified in ``docs/key-files.md``. Private keys are written
with mode 0600, atomically, and never over an existing file unless asked.
A private key may be protected by a passphrase: Argon2id derives a 256-bit
key that seals the factors with AES-256-GCM; the header (format, version,
key id, modulus, modulus proof, KDF settings) is authenticated too, so it
cannot be swapped.

Every key read is held to a :class:`~ppml.crypto.KeyPolicy` (by default
:data:`~ppml.crypto.DEFAULT_KEY_POLICY`): the modulus's size is read from
its text and checked before the text is converted, every other integer's
length is bounded first too, and a modulus proof, when present, is verified.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from ppml.crypto import (
    DEFAULT_KEY_POLICY,
    KeyPolicy,
    ModulusProof,
    PrivateKey,
    PublicKey,
    Randomness,
    key_fingerprint,
)
from ppml.crypto.proofs import PROOF_ALPHA, PROOF_ROUNDS, PROOF_SCHEME
from ppml.crypto.randomness import check_djn_base
from ppml.errors import (
    InsecureKeyError,
    InvalidKeyError,
    KeyFileError,
    MalformedJsonError,
    PassphraseError,
)
from ppml.fileio import PRIVATE_FILE_MODE, PUBLIC_FILE_MODE, write_atomic
from ppml.wire.document import (
    MAX_DOCUMENT_BYTES,
    DocumentReader,
    base64_text,
    canonical_json,
    dump_document,
    hex_int,
    load_json,
    parse_document,
    read_document_bytes,
)

PUBLIC_KEY_FORMAT = "ppml.paillier.public-key"
PRIVATE_KEY_FORMAT = "ppml.paillier.private-key"
KEY_FILE_VERSION = 3
# Version 1 had no randomness mode (standard). Version 2 stored a DJN base,
# which is now checked (a base with h_s^2 = 1 is refused) and then ignored in
# favour of the one derived from n. Version 3 stores no base and may carry a
# modulus proof.
READABLE_KEY_FILE_VERSIONS = frozenset({1, 2, 3})
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


_HEX_DIGITS = frozenset("0123456789abcdef")


def _hex_text(document: DocumentReader, name: str) -> str:
    text: str = document.get(name, str)
    if not text or not set(text) <= _HEX_DIGITS:
        raise document.fail(f"field {name!r} is not a lowercase hexadecimal integer")
    return text


def _hex_digits(bits: int) -> int:
    """How many hex digits an integer of ``bits`` bits takes."""
    return (bits + 3) // 4


def _bounded_hex_int(document: DocumentReader, name: str, max_bits: int) -> int:
    """Member ``name``, a hex integer whose text is refused, unconverted, if over ``max_bits``."""
    text = _hex_text(document, name)
    if len(text) > _hex_digits(max_bits):
        raise document.fail(f"field {name!r} is longer than {max_bits} bits; refusing to read it")
    return int(text, 16)


def _read_modulus(document: DocumentReader, policy: KeyPolicy) -> int:
    """Member ``n``, its size checked against ``policy`` from the text alone, then converted."""
    text = _hex_text(document, "n")
    significant = text.lstrip("0")
    bits = 4 * len(significant) - 4 + int(significant[0], 16).bit_length() if significant else 0
    try:
        policy.check_size(bits)
    except InsecureKeyError as error:
        raise document.fail(str(error)) from None
    if len(text) > _hex_digits(policy.max_bits):
        raise document.fail("field 'n' is padded with leading zeros; refusing to read it")
    return int(text, 16)


def proof_members(proof: ModulusProof) -> dict[str, Any]:
    """The ``proof`` member of a key document."""
    return {
        "scheme": PROOF_SCHEME,
        "alpha": PROOF_ALPHA,
        "rounds": PROOF_ROUNDS,
        "sigma": [hex_int(value) for value in proof.sigma],
    }


def _read_proof(document: DocumentReader, max_bits: int) -> ModulusProof:
    """The ``proof`` member: its parameters must be exactly ppml's, each sigma below 2^max_bits."""
    members = document.get("proof", dict)
    scheme, alpha, rounds = members.get("scheme"), members.get("alpha"), members.get("rounds")
    if scheme != PROOF_SCHEME:
        shown = repr(scheme[:40]) if isinstance(scheme, str) else type(scheme).__name__
        raise document.fail(
            f"the modulus proof's scheme is {shown}; this ppml reads {PROOF_SCHEME!r}"
        )
    if type(alpha) is not int or type(rounds) is not int:
        raise document.fail("the modulus proof's 'alpha' and 'rounds' must be integers")
    if (alpha, rounds) != (PROOF_ALPHA, PROOF_ROUNDS):
        raise document.fail(
            f"the modulus proof has alpha {alpha} and {rounds} rounds; "
            f"this ppml reads alpha {PROOF_ALPHA} with {PROOF_ROUNDS} rounds"
        )
    sigma = members.get("sigma")
    if not isinstance(sigma, list) or len(sigma) != PROOF_ROUNDS:
        raise document.fail(f"the modulus proof's 'sigma' must be a list of {PROOF_ROUNDS} values")
    values = []
    for index, text in enumerate(sigma, start=1):
        if (
            not isinstance(text, str)
            or not text
            or len(text) > _hex_digits(max_bits)
            or not set(text) <= _HEX_DIGITS
        ):
            raise document.fail(
                f"sigma {index} of the modulus proof is not a hexadecimal integer "
                f"of at most {max_bits} bits"
            )
        values.append(int(text, 16))
    try:
        return ModulusProof(tuple(values))
    except InvalidKeyError as error:
        raise document.fail(str(error)) from None


def _public_members(public_key: PublicKey) -> dict[str, Any]:
    members: dict[str, Any] = {
        "key_id": public_key.key_id,
        "bits": public_key.bits,
        "n": hex_int(public_key.n),
        "randomness": public_key.randomness,
    }
    if public_key.proof is not None:
        members["proof"] = proof_members(public_key.proof)
    return members


def public_key_document(public_key: PublicKey) -> dict[str, Any]:
    """The JSON document of a public key."""
    return {"format": PUBLIC_KEY_FORMAT, "version": KEY_FILE_VERSION, **_public_members(public_key)}


def _read_public_key(document: DocumentReader, policy: KeyPolicy) -> PublicKey:
    version = document.get("version", int)
    n = _read_modulus(document, policy)
    declared_bits = document.get("bits", int)
    if document.get("key_id", str) != key_fingerprint(n):
        raise document.fail("field 'key_id' does not match the modulus (damaged file)")
    randomness: Randomness = "standard"
    if version >= 2:
        mode = document.get("randomness", str)
        if mode not in ("djn", "standard"):
            raise document.fail(f"unknown randomness mode {mode[:40]!r}")
        randomness = "djn" if mode == "djn" else "standard"
    proof = None
    if version >= 3:
        if "djn_h_s" in document.members:
            raise document.fail(
                "a version 3 key file may not hold 'djn_h_s': the DJN base is derived from n"
            )
        if "proof" in document.members:
            proof = _read_proof(document, policy.max_bits)
    elif randomness == "djn":
        # Older files stored the base. Whatever it is, the derived base is
        # used instead; a base that would have made encryption transparent
        # marks a forged file, and is refused rather than silently replaced.
        stored_base = _bounded_hex_int(document, "djn_h_s", 2 * policy.max_bits)
        try:
            check_djn_base(n, stored_base)
        except InvalidKeyError as error:
            raise document.fail(f"{error}; refusing this key") from None
    try:
        policy.check(n, declared_bits, proof=proof)
        return PublicKey(n, randomness, proof)
    except (InsecureKeyError, InvalidKeyError) as error:
        raise document.fail(str(error)) from None


def parse_public_key(
    data: bytes,
    path: str | Path | None = None,
    *,
    policy: KeyPolicy = DEFAULT_KEY_POLICY,
) -> PublicKey:
    """Parse a public key document, holding the key to ``policy``."""
    document = parse_document(
        data,
        path,
        expected_format=PUBLIC_KEY_FORMAT,
        supported_versions=READABLE_KEY_FILE_VERSIONS,
        error=_key_error,
    )
    return _read_public_key(document, policy)


def load_public_key(
    path: str | Path,
    *,
    policy: KeyPolicy = DEFAULT_KEY_POLICY,
) -> PublicKey:
    """Load a public key file, holding the key to ``policy``."""
    return parse_public_key(read_document_bytes(path, _key_error), path, policy=policy)


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


def _argon2_settings(document: DocumentReader) -> Argon2Settings:
    """The KDF settings of a protected private key document, checked against the limits."""
    protection = document.reader("protection")
    if protection.get("kdf", str) != "argon2id" or protection.get("cipher", str) != "aes-256-gcm":
        raise document.fail("unknown key protection scheme")
    try:
        return Argon2Settings(
            iterations=protection.get("iterations", int),
            lanes=protection.get("lanes", int),
            memory_kib=protection.get("memory_kib", int),
        )
    except ValueError:
        raise document.fail("key protection settings out of the accepted range") from None


def _unseal_factors(
    document: DocumentReader, header: dict[str, Any], passphrase: Passphrase | None
) -> DocumentReader:
    settings = _argon2_settings(document)
    protection = document.reader("protection")
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
    # Authenticated, so written by whoever knows the passphrase: still parsed
    # under the same limits as any other input.
    factors = load_json(opened, path=document.path, error=_key_error, max_bytes=MAX_DOCUMENT_BYTES)
    if not isinstance(factors, dict):
        raise document.fail("the sealed factors are not a JSON object (damaged file)")
    return DocumentReader(factors, document.path, _key_error)


def _parse_private_document(data: bytes, path: str | Path | None) -> DocumentReader:
    return parse_document(
        data,
        path,
        expected_format=PRIVATE_KEY_FORMAT,
        supported_versions=READABLE_KEY_FILE_VERSIONS,
        error=_key_error,
    )


def parse_private_key(
    data: bytes,
    path: str | Path | None = None,
    *,
    passphrase: Passphrase | None = None,
    policy: KeyPolicy = DEFAULT_KEY_POLICY,
) -> PrivateKey:
    """Parse a private key document, asking for the passphrase only if it is protected.

    The key is held to ``policy``; if the policy requires a modulus proof
    and the file has none, one is made from the factors.
    """
    document = _parse_private_document(data, path)
    # The factors can always prove the modulus, so the proof is not asked of the file.
    public_key = _read_public_key(document, dataclasses.replace(policy, require_proof=False))
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
    p = _bounded_hex_int(factors, "p", policy.max_bits)
    q = _bounded_hex_int(factors, "q", policy.max_bits)
    try:
        private_key = PrivateKey(public_key, p, q)
    except InvalidKeyError as error:
        raise document.fail(f"{error} (damaged file)") from None
    return private_key.with_proof() if policy.require_proof else private_key


def load_private_key(
    path: str | Path,
    *,
    passphrase: Passphrase | None = None,
    policy: KeyPolicy = DEFAULT_KEY_POLICY,
) -> PrivateKey:
    """Load a private key file; ``passphrase`` is used only if the file is protected."""
    return parse_private_key(
        read_document_bytes(path, _key_error), path, passphrase=passphrase, policy=policy
    )


def is_protected(path: str | Path) -> bool:
    """Whether a private key file is sealed under a passphrase (without checking the rest)."""
    try:
        members = load_json(read_document_bytes(path, _key_error), max_bytes=MAX_DOCUMENT_BYTES)
    except MalformedJsonError:
        return False  # loading it will report the problem, with the file's path
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


class _RememberedPassphrase:
    """A passphrase source asked at most once, so that a key can be sealed again with it."""

    def __init__(self, source: Passphrase) -> None:
        self._source = source
        self.value: str | bytes | None = None

    def __call__(self) -> str | bytes:
        if self.value is None:
            self.value = self._source() if callable(self._source) else self._source
        return self.value


def prove_keypair(
    directory: str | Path,
    *,
    passphrase: Passphrase | None = None,
    policy: KeyPolicy = DEFAULT_KEY_POLICY,
    replace_other_public_key: bool = False,
) -> tuple[PrivateKey, Path, Path]:
    """Give the key pair in ``directory`` a modulus proof; return the key and the two paths.

    Reads ``private_key.json`` (asking for the passphrase only if it is
    protected), makes the proof from the factors, and writes both files
    back in the current version, atomically: the private key with mode
    0600 and, if it was protected, sealed again under the same passphrase
    and KDF settings. A ``public_key.json`` that cannot be read or holds
    another key is replaced only if ``replace_other_public_key`` (else
    :class:`FileExistsError`).
    """
    folder = Path(directory)
    public_path, private_path = folder / PUBLIC_KEY_FILENAME, folder / PRIVATE_KEY_FILENAME
    remembered = None if passphrase is None else _RememberedPassphrase(passphrase)
    data = read_document_bytes(private_path, _key_error)
    private_key = parse_private_key(data, private_path, passphrase=remembered, policy=policy)
    document = _parse_private_document(data, private_path)
    settings = (
        _argon2_settings(document) if isinstance(document.members.get("protection"), dict) else None
    )
    if public_path.exists() and not replace_other_public_key:
        # Like save_keypair, never destroy a key file that may matter to someone.
        try:
            existing = load_public_key(public_path, policy=policy).key_id
        except KeyFileError as error:
            raise FileExistsError(
                f"{public_path} cannot be read ({error.problem}); refusing to replace it"
            ) from None
        if existing != private_key.key_id:
            raise FileExistsError(
                f"{public_path} holds another key ({existing}, not {private_key.key_id}); "
                "refusing to replace it"
            )
    proven = private_key.with_proof()
    sealing = None
    if settings is not None:
        assert remembered is not None and remembered.value is not None  # asked while loading
        sealing = remembered.value
    save_private_key(proven, private_path, passphrase=sealing, argon2=settings, overwrite=True)
    save_public_key(proven.public_key, public_path, overwrite=True)
    return proven, public_path, private_path

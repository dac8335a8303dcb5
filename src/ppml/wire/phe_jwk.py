"""python-paillier's JWK key files, as written and read by its ``pheutil`` tool.

A public key is ``{"kty": "DAJ", "alg": "PAI-GN1", "key_ops": ["encrypt"],
"n": B64, "kid": TEXT}``; a private key is ``{"kty": "DAJ", "key_ops":
["decrypt"], "p": B64, "q": B64, "pub": PUBLIC, "kid": TEXT}``, where B64 is
an unsigned big-endian integer in unpadded base64url. Files from older
releases store ``lambda`` and ``mu`` instead of p and q; they are accepted
too, and the factors recovered from lambda.

python-paillier also uses g = n + 1, so a key means the same in both
libraries and ciphertexts move between them unchanged.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from pathlib import Path
from typing import Any

import gmpy2

from ppml.crypto import MIN_KEY_BITS, PrivateKey, PublicKey, check_key_size
from ppml.errors import InsecureKeyError, InvalidKeyError, KeyFileError
from ppml.fileio import PRIVATE_FILE_MODE, PUBLIC_FILE_MODE, write_atomic
from ppml.wire.document import DocumentReader, read_document_bytes


def _key_error(path: str | Path | None, problem: str) -> KeyFileError:
    return KeyFileError(path, problem)


def _int_to_b64url(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _b64url_to_int(document: DocumentReader, name: str) -> int:
    text = document.get(name, str)
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise document.fail(f"field {name!r} is not base64url") from None
    value = int.from_bytes(raw, "big")
    if value <= 0:
        raise document.fail(f"field {name!r} must be a positive integer")
    return value


def public_key_to_jwk(public_key: PublicKey) -> dict[str, Any]:
    """The pheutil JWK of a public key."""
    return {
        "kty": "DAJ",
        "alg": "PAI-GN1",
        "key_ops": ["encrypt"],
        "n": _int_to_b64url(public_key.n),
        "kid": f"ppml public key {public_key.key_id}",
    }


def private_key_to_jwk(private_key: PrivateKey) -> dict[str, Any]:
    """The pheutil JWK of a private key (it embeds the public key)."""
    return {
        "kty": "DAJ",
        "key_ops": ["decrypt"],
        "p": _int_to_b64url(private_key.p),
        "q": _int_to_b64url(private_key.q),
        "pub": public_key_to_jwk(private_key.public_key),
        "kid": f"ppml private key {private_key.key_id}",
    }


def _read_public(document: DocumentReader, min_bits: int) -> PublicKey:
    if document.members.get("kty") != "DAJ" or document.members.get("alg") != "PAI-GN1":
        raise document.fail("not a python-paillier public key (expected kty DAJ, alg PAI-GN1)")
    n = _b64url_to_int(document, "n")
    try:
        check_key_size(n.bit_length(), min_bits)
        return PublicKey(n)
    except (InsecureKeyError, InvalidKeyError) as error:
        raise document.fail(str(error)) from None


def _factor_from_carmichael_multiple(n: int, multiple: int) -> tuple[int, int]:
    """Split n = p*q given any multiple of the Carmichael function lambda(n).

    Write multiple = 2^s * t with t odd. For a random a, the sequence a^t,
    a^2t, ... reaches 1; the element before it is a square root of 1, and
    for at least half of all a it is a non-trivial one that shares a factor with n.
    """
    t, s = multiple, 0
    while t % 2 == 0:
        t, s = t // 2, s + 1
    for _ in range(128):
        a = secrets.randbelow(n - 3) + 2
        shared = gmpy2.gcd(a, n)
        if shared != 1:
            return int(shared), n // int(shared)
        x = gmpy2.powmod(a, t, n)
        for _ in range(s):
            y = x * x % n
            if y == 1 and x not in (1, n - 1):
                p = int(gmpy2.gcd(x - 1, n))
                return p, n // p
            x = y
    raise InvalidKeyError("lambda does not belong to the modulus")


def _read_private(document: DocumentReader, min_bits: int) -> PrivateKey:
    if document.members.get("kty") != "DAJ" or "decrypt" not in document.members.get("key_ops", []):
        raise document.fail("not a python-paillier private key (expected kty DAJ, decrypt)")
    public_key = _read_public(document.reader("pub"), min_bits)
    if "p" in document.members and "q" in document.members:
        p, q = _b64url_to_int(document, "p"), _b64url_to_int(document, "q")
    elif "lambda" in document.members:
        p, q = _factor_from_carmichael_multiple(public_key.n, _b64url_to_int(document, "lambda"))
    else:
        raise document.fail("the private key has neither p and q nor lambda")
    try:
        return PrivateKey(public_key, p, q)
    except InvalidKeyError as error:
        raise document.fail(str(error)) from None


def parse_jwk(
    data: bytes, path: str | Path | None = None, *, min_bits: int = MIN_KEY_BITS
) -> PublicKey | PrivateKey:
    """Parse a pheutil JWK: a private key if it holds one, else a public key."""
    try:
        members = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise KeyFileError(path, "not valid JSON (the file is truncated or damaged)") from None
    if not isinstance(members, dict):
        raise KeyFileError(path, "not a JWK (expected a JSON object)")
    document = DocumentReader(members, path, _key_error)
    if "pub" in members:
        return _read_private(document, min_bits)
    return _read_public(document, min_bits)


def load_jwk(path: str | Path, *, min_bits: int = MIN_KEY_BITS) -> PublicKey | PrivateKey:
    """Load a pheutil JWK file (``pheutil genpkey`` or ``pheutil extract`` output)."""
    return parse_jwk(read_document_bytes(path, _key_error), path, min_bits=min_bits)


def save_jwk(key: PublicKey | PrivateKey, path: str | Path, *, overwrite: bool = False) -> None:
    """Write a key as a pheutil JWK file; a private key file gets mode 0600."""
    if isinstance(key, PrivateKey):
        members, mode = private_key_to_jwk(key), PRIVATE_FILE_MODE
    else:
        members, mode = public_key_to_jwk(key), PUBLIC_FILE_MODE
    write_atomic(path, (json.dumps(members) + "\n").encode("utf-8"), mode=mode, overwrite=overwrite)

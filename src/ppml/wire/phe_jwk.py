"""python-paillier's JWK key files, as written and read by its ``pheutil`` tool.

A public key is ``{"kty": "DAJ", "alg": "PAI-GN1", "key_ops": ["encrypt"],
"n": B64, "kid": TEXT}``; a private key is ``{"kty": "DAJ", "key_ops":
["decrypt"], "p": B64, "q": B64, "pub": PUBLIC, "kid": TEXT}``, where B64 is
an unsigned big-endian integer in unpadded base64url. Files from older
releases store ``lambda`` and ``mu`` instead of p and q; they are accepted
too, and the factors recovered from lambda.

python-paillier also uses g = n + 1, so a key means the same in both
libraries and ciphertexts move between them unchanged.

A JWK carries no modulus proof: an imported private key gets one made from
its factors, an imported public key has none (a server computing for it
refuses it until its owner proves it). Every member's type is checked before
use, and every integer's length is bounded by the key policy before it is
decoded, so a hostile file fails with one line instead of a traceback or a
long computation.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import secrets
from pathlib import Path
from typing import Any

import gmpy2

from ppml.crypto import DEFAULT_KEY_POLICY, KeyPolicy, PrivateKey, PublicKey
from ppml.errors import InsecureKeyError, InvalidKeyError, KeyFileError
from ppml.fileio import PRIVATE_FILE_MODE, PUBLIC_FILE_MODE, write_atomic
from ppml.wire.document import MAX_DOCUMENT_BYTES, DocumentReader, load_json, read_document_bytes

_BASE64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_BASE64URL = frozenset(_BASE64URL_ALPHABET)


def _key_error(path: str | Path | None, problem: str) -> KeyFileError:
    return KeyFileError(path, problem)


def _int_to_b64url(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _b64url_text(document: DocumentReader, name: str) -> str:
    """Member ``name`` as unpadded base64url text (pheutil writes none; padding is tolerated)."""
    text: str = document.get(name, str)
    if len(text) % 4 == 0 and text.endswith("="):
        text = text[:-2] if text.endswith("==") else text[:-1]
    if not text or not set(text) <= _BASE64URL or len(text) % 4 == 1:
        raise document.fail(f"field {name!r} is not base64url")
    return text


def _b64url_bits(text: str) -> int:
    """Bit length of the big-endian integer that valid unpadded base64url ``text`` encodes.

    Read from the text alone: 6 bits per character, less the filler bits of
    a final partial group, less the leading zero bits.
    """
    filler = {0: 0, 2: 4, 3: 2}[len(text) % 4]
    significant = text.lstrip("A")  # "A" encodes six zero bits
    if not significant:
        return 0
    first = _BASE64URL_ALPHABET.index(significant[0])
    return 6 * len(significant) - (6 - first.bit_length()) - filler


def _b64url_to_int(document: DocumentReader, name: str, max_bits: int) -> int:
    """Member ``name``: a positive integer, refused before decoding if over ``max_bits`` bits."""
    text = _b64url_text(document, name)
    if _b64url_bits(text) > max_bits:
        raise document.fail(f"field {name!r} is longer than {max_bits} bits; refusing to read it")
    return _decode(document, name, text)


def _decode(document: DocumentReader, name: str, text: str) -> int:
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise document.fail(f"field {name!r} is not base64url") from None
    value = int.from_bytes(raw, "big")
    if value <= 0:
        raise document.fail(f"field {name!r} must be a positive integer")
    return value


def _optional(document: DocumentReader, name: str, kind: type) -> Any:
    """Member ``name`` if present (then of type ``kind``), else None."""
    return document.get(name, kind) if name in document.members else None


def _key_ops(document: DocumentReader) -> list[str]:
    """The optional ``key_ops`` member: a list of strings."""
    operations = _optional(document, "key_ops", list)
    if operations is None:
        return []
    if not all(isinstance(operation, str) for operation in operations):
        raise document.fail("field 'key_ops' must be a list of strings")
    return list(operations)


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


def _read_modulus(document: DocumentReader, policy: KeyPolicy) -> int:
    """The public key's ``n``, its size checked against ``policy`` before it is decoded."""
    if document.members.get("kty") != "DAJ" or document.members.get("alg") != "PAI-GN1":
        raise document.fail("not a python-paillier public key (expected kty DAJ, alg PAI-GN1)")
    _key_ops(document)
    _optional(document, "kid", str)
    text = _b64url_text(document, "n")
    try:
        policy.check_size(_b64url_bits(text))
    except InsecureKeyError as error:
        raise document.fail(str(error)) from None
    return _decode(document, "n", text)


def _read_public(document: DocumentReader, policy: KeyPolicy) -> PublicKey:
    n = _read_modulus(document, policy)
    try:
        policy.check(n)  # a JWK has no proof: refused here if the policy requires one
        return PublicKey(n)
    except (InsecureKeyError, InvalidKeyError) as error:
        raise document.fail(str(error)) from None


def _factor_from_carmichael_multiple(n: int, multiple: int) -> tuple[int, int]:
    """Split n = p*q given any multiple of the Carmichael function lambda(n).

    Write multiple = 2^s * t with t odd. For a random a, the sequence a^t,
    a^2t, ... reaches 1; the element before it is a square root of 1, and
    for at least half of all a it is a non-trivial one that shares a factor
    with n. If the sequence does not reach 1, ``multiple`` is not a multiple
    of lambda(n) at all: that is reported at once, so a forged value costs
    one exponentiation, not one per attempt.
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
        if x == 1:
            continue  # a^t = 1 already: no square root to look at, try another a
        for _ in range(s):
            y = x * x % n
            if y == 1:
                if x == n - 1:
                    break  # the trivial root -1: try another a
                p = int(gmpy2.gcd(x - 1, n))
                return p, n // p
            x = y
        else:
            raise InvalidKeyError("lambda does not belong to the modulus")
    raise InvalidKeyError("lambda does not belong to the modulus")


def _read_private(document: DocumentReader, policy: KeyPolicy) -> PrivateKey:
    if document.members.get("kty") != "DAJ" or "decrypt" not in _key_ops(document):
        raise document.fail("not a python-paillier private key (expected kty DAJ, decrypt)")
    _optional(document, "kid", str)
    public = document.reader("pub")
    n = _read_modulus(public, policy)
    try:
        # The proof is made below, from the factors; everything else is checked now.
        dataclasses.replace(policy, require_proof=False).check(n)
    except (InsecureKeyError, InvalidKeyError) as error:
        raise public.fail(str(error)) from None
    # Factors are below n; lambda and mu below n^2: bounded before decoding,
    # so a huge value can neither exhaust memory nor stall the factoring.
    if "p" in document.members and "q" in document.members:
        p = _b64url_to_int(document, "p", policy.max_bits)
        q = _b64url_to_int(document, "q", policy.max_bits)
    elif "lambda" in document.members:
        carmichael = _b64url_to_int(document, "lambda", 2 * policy.max_bits)
        if "mu" in document.members:
            _b64url_to_int(document, "mu", 2 * policy.max_bits)
        try:
            p, q = _factor_from_carmichael_multiple(n, carmichael)
        except InvalidKeyError as error:
            raise document.fail(str(error)) from None
    else:
        raise document.fail("the private key has neither p and q nor lambda")
    if p * q != n:
        raise document.fail("the private key's factors do not match the public modulus")
    try:
        private_key = PrivateKey.from_factors(p, q)  # with a modulus proof
        policy.check(n, proof=private_key.public_key.proof)
    except (InsecureKeyError, InvalidKeyError) as error:
        raise document.fail(str(error)) from None
    return private_key


def parse_jwk(
    data: bytes, path: str | Path | None = None, *, policy: KeyPolicy = DEFAULT_KEY_POLICY
) -> PublicKey | PrivateKey:
    """Parse a pheutil JWK: a private key if it holds one, else a public key."""
    members = load_json(data, path=path, error=_key_error, max_bytes=MAX_DOCUMENT_BYTES)
    if not isinstance(members, dict):
        raise KeyFileError(path, "not a JWK (expected a JSON object)")
    document = DocumentReader(members, path, _key_error)
    if "pub" in members:
        return _read_private(document, policy)
    return _read_public(document, policy)


def load_jwk(path: str | Path, *, policy: KeyPolicy = DEFAULT_KEY_POLICY) -> PublicKey | PrivateKey:
    """Load a pheutil JWK file (``pheutil genpkey`` or ``pheutil extract`` output)."""
    return parse_jwk(read_document_bytes(path, _key_error), path, policy=policy)


def save_jwk(key: PublicKey | PrivateKey, path: str | Path, *, overwrite: bool = False) -> None:
    """Write a key as a pheutil JWK file; a private key file gets mode 0600."""
    if isinstance(key, PrivateKey):
        members, mode = private_key_to_jwk(key), PRIVATE_FILE_MODE
    else:
        members, mode = public_key_to_jwk(key), PUBLIC_FILE_MODE
    write_atomic(path, (json.dumps(members) + "\n").encode("utf-8"), mode=mode, overwrite=overwrite)

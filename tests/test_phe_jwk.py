"""Keys moving between ppml and python-paillier through pheutil's JWK files."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import phe
import pytest

from ppml.crypto import SERVER_KEY_POLICY, KeyPolicy, PrivateKey, PublicKey, generate_keypair
from ppml.errors import KeyFileError
from ppml.wire.phe_jwk import (
    load_jwk,
    parse_jwk,
    private_key_to_jwk,
    public_key_to_jwk,
    save_jwk,
)


def pheutil(*args: str, cwd: Path) -> str:
    """Run python-paillier's own command-line tool."""
    executable = shutil.which("pheutil") or str(Path(sys.executable).with_name("pheutil"))
    completed = subprocess.run(
        [executable, *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=120
    )
    return completed.stdout


@pytest.fixture(scope="module")
def pheutil_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pheutil")
    pheutil("genpkey", "--keysize", "2048", "private.jwk", cwd=folder)
    pheutil("extract", "private.jwk", "public.jwk", cwd=folder)
    return folder


def test_pheutil_private_key_is_imported_and_used(pheutil_key: Path) -> None:
    private_key = load_jwk(pheutil_key / "private.jwk")
    assert isinstance(private_key, PrivateKey) and private_key.public_key.bits == 2048
    public_key = load_jwk(pheutil_key / "public.jwk")
    assert public_key == private_key.public_key
    assert isinstance(public_key, PublicKey)
    assert private_key.decrypt(public_key.encrypt(-314159) * 2 + 1) == -628317


def test_pheutil_ciphertext_decrypts_in_ppml(pheutil_key: Path) -> None:
    output = pheutil("encrypt", "public.jwk", "--", "-42", cwd=pheutil_key)
    message = json.loads(output)
    private_key = load_jwk(pheutil_key / "private.jwk")
    assert isinstance(private_key, PrivateKey)
    mantissa = private_key.decrypt(private_key.public_key.ciphertext(int(message["v"])))
    assert mantissa * phe.EncodedNumber.BASE ** message["e"] == -42


def test_exported_key_decrypts_ppml_ciphertexts_in_pheutil(tmp_path: Path) -> None:
    public_key, private_key = generate_keypair(2048)
    save_jwk(private_key, tmp_path / "private.jwk")
    save_jwk(public_key, tmp_path / "public.jwk")
    assert stat.filemode((tmp_path / "private.jwk").stat().st_mode) == "-rw-------"
    ciphertext = public_key.encrypt(-271828) * 3
    (tmp_path / "ciphertext.json").write_text(json.dumps({"v": str(ciphertext.value), "e": 0}))
    assert pheutil("decrypt", "private.jwk", "ciphertext.json", cwd=tmp_path).strip() == "-815484"
    # And pheutil's arithmetic on a ppml ciphertext, with the exported public key.
    total = pheutil("add", "public.jwk", "ciphertext.json", "4", cwd=tmp_path)
    (tmp_path / "total.json").write_text(total)
    assert pheutil("decrypt", "private.jwk", "total.json", cwd=tmp_path).strip() == "-815480.0"


def test_exported_key_loads_in_the_phe_library(real_keypair: tuple[PublicKey, PrivateKey]) -> None:
    public_key, private_key = real_keypair
    document = private_key_to_jwk(private_key)
    phe_public = phe.PaillierPublicKey(phe.util.base64_to_int(document["pub"]["n"]))
    phe_private = phe.PaillierPrivateKey(
        phe_public, phe.util.base64_to_int(document["p"]), phe.util.base64_to_int(document["q"])
    )
    assert phe_private.raw_decrypt(public_key.raw_encrypt(99).value) == 99


def test_legacy_lambda_mu_files_are_accepted(real_keypair: tuple[PublicKey, PrivateKey]) -> None:
    _, private_key = real_keypair
    legacy = private_key_to_jwk(private_key)
    del legacy["p"], legacy["q"]
    lam = (private_key.p - 1) * (private_key.q - 1)
    legacy["lambda"] = phe.util.int_to_base64(lam)
    legacy["mu"] = phe.util.int_to_base64(pow(lam, -1, private_key.public_key.n))
    imported = parse_jwk(json.dumps(legacy).encode())
    assert imported == private_key


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"{", "truncated"),
        (b"[]", "expected a JSON object"),
        (b'{"kty": "RSA", "n": "AQAB"}', "not a python-paillier public key"),
        (b'{"kty": "DAJ", "alg": "PAI-GN1", "n": "!!!"}', "base64url"),
        (b'{"kty": "DAJ", "alg": "PAI-GN1", "n": "AQAB"}', "too small"),
        (b'{"kty": "DAJ", "key_ops": ["encrypt"], "pub": {}}', "not a python-paillier private"),
    ],
)
def test_bad_jwk_files(document: bytes, message: str) -> None:
    with pytest.raises(KeyFileError, match=message):
        parse_jwk(document, "key.jwk")


def test_small_pheutil_keys_need_an_explicit_minimum(tmp_path: Path) -> None:
    _, small = generate_keypair(1024, insecure_test_key=True)
    save_jwk(small, tmp_path / "small.jwk")
    with pytest.raises(KeyFileError, match="too small"):
        load_jwk(tmp_path / "small.jwk")
    assert load_jwk(tmp_path / "small.jwk", policy=KeyPolicy(min_bits=1024)) == small


def test_imported_private_keys_are_proven_and_public_ones_are_not(
    real_keypair: tuple[PublicKey, PrivateKey],
) -> None:
    public_key, private_key = real_keypair
    imported = parse_jwk(json.dumps(private_key_to_jwk(private_key)).encode())
    assert isinstance(imported, PrivateKey) and imported.public_key.proof == public_key.proof
    public_only = parse_jwk(json.dumps(public_key_to_jwk(public_key)).encode())
    assert isinstance(public_only, PublicKey) and public_only.proof is None
    with pytest.raises(KeyFileError, match="no modulus proof"):
        parse_jwk(json.dumps(public_key_to_jwk(public_key)).encode(), policy=SERVER_KEY_POLICY)
    proven = parse_jwk(
        json.dumps(private_key_to_jwk(private_key)).encode(), policy=SERVER_KEY_POLICY
    )
    assert isinstance(proven, PrivateKey) and proven.public_key.proof == public_key.proof


def _edited(document: dict[str, Any], path: tuple[str, ...], value: object) -> bytes:
    copy = json.loads(json.dumps(document))
    target = copy
    for name in path[:-1]:
        target = target[name]
    target[path[-1]] = value
    return json.dumps(copy).encode()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("key_ops",), 5, "'key_ops' must be of type list"),
        (("key_ops",), [5], "'key_ops' must be a list of strings"),
        (("key_ops",), {"decrypt": 1}, "'key_ops' must be of type list"),
        (("kid",), 7, "'kid' must be of type str"),
        (("pub",), "n", "'pub' must be of type dict"),
        (("pub", "n"), 12345, "'n' must be of type str"),
        (("pub", "key_ops"), "encrypt", "'key_ops' must be of type list"),
        (("pub", "n"), "", "not base64url"),
        (("pub", "n"), "AAAAA", "not base64url"),
        (("p",), None, "'p' must be of type str"),
        (("p",), "AQAB", "do not match"),
        (("p",), "_" * 700, "'p' is longer than 4096 bits"),
        (("pub", "n"), "_" * 2731, "16384-bit Paillier modulus is too large"),
    ],
)
def test_hostile_members_are_refused_in_one_line(
    real_keypair: tuple[PublicKey, PrivateKey], path: tuple[str, ...], value: object, message: str
) -> None:
    document = private_key_to_jwk(real_keypair[1])
    with pytest.raises(KeyFileError, match=message) as caught:
        parse_jwk(_edited(document, path, value), "key.jwk")
    assert "\n" not in str(caught.value) and str(caught.value).startswith("key.jwk: ")


def test_a_wrong_lambda_is_refused_after_one_exponentiation(
    real_keypair: tuple[PublicKey, PrivateKey],
) -> None:
    _, private_key = real_keypair
    legacy = private_key_to_jwk(private_key)
    del legacy["p"], legacy["q"]
    legacy["lambda"] = phe.util.int_to_base64(private_key.p * private_key.q - 1)
    with pytest.raises(KeyFileError, match="lambda does not belong"):
        parse_jwk(json.dumps(legacy).encode())


@pytest.mark.parametrize("value", [1, 2, 63, 64, 255, 256, 2**2048 - 1, 3 << 4000, 2**4095 + 1])
def test_sizes_are_read_from_the_text_exactly(value: int) -> None:
    from ppml.wire.phe_jwk import _b64url_bits

    text = phe.util.int_to_base64(value)
    assert _b64url_bits(text) == value.bit_length()
    assert (
        _b64url_bits("AA" + text[2:])
        == int.from_bytes(phe.util.base64url_decode("AA" + text[2:]), "big").bit_length()
    )

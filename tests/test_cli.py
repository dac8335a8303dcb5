"""The ``ppml`` command: key generation, key files, version, help and errors."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ppml import __version__
from ppml.cli.main import main
from ppml.cli.passphrase import PASSPHRASE_ENV
from ppml.crypto import generate_keypair
from ppml.wire.keyfile import load_private_key, load_public_key, save_keypair, save_public_key
from ppml.wire.phe_jwk import load_jwk, save_jwk


def run_cli(*args: str) -> tuple[int, str, str]:
    """The installed console script, as a user runs it."""
    completed = subprocess.run(
        [str(Path(sys.executable).with_name("ppml")), *args],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    return completed.returncode, completed.stdout, completed.stderr


def test_version() -> None:
    code, out, _ = run_cli("--version")
    assert code == 0 and out.strip() == f"ppml {__version__}"


def test_help_lists_the_commands() -> None:
    code, out, _ = run_cli("--help")
    assert code == 0
    for command in ("keygen", "train", "encrypt", "predict", "decrypt", "keys", "demo"):
        assert command in out


def test_keygen_writes_both_files(tmp_path: Path) -> None:
    code, _, err = run_cli("keygen", "--out", str(tmp_path / "keys"), "--bits", "2048")
    assert code == 0, err
    private_path = tmp_path / "keys" / "private_key.json"
    public_key = load_public_key(tmp_path / "keys" / "public_key.json")
    assert public_key.bits == 2048 and public_key.key_id in err
    assert stat.filemode(private_path.stat().st_mode) == "-rw-------"
    assert load_private_key(private_path).public_key == public_key


def test_keygen_refuses_small_keys_and_existing_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keygen", "--out", str(tmp_path), "--bits", "1024"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "1024-bit Paillier modulus is too small" in err
    assert not any(tmp_path.iterdir())

    save_keypair(tmp_path, generate_keypair(2048)[1])
    before = (tmp_path / "private_key.json").read_bytes()
    assert main(["keygen", "--out", str(tmp_path), "--bits", "2048"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "private_key.json").read_bytes() == before


def test_keygen_with_passphrase_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "s3cret")
    assert main(["keygen", "--out", str(tmp_path), "--bits", "2048", "--protect"]) == 0
    private_path = tmp_path / "private_key.json"
    assert isinstance(json.loads(private_path.read_text())["protection"], dict)
    assert load_private_key(private_path, passphrase="s3cret").public_key.bits == 2048
    capsys.readouterr()

    assert main(["keys", "show", str(private_path)]) == 0
    assert "passphrase" in capsys.readouterr().out

    monkeypatch.setenv(PASSPHRASE_ENV, "wrong")
    assert main(["keys", "show", str(private_path)]) == 1
    assert "wrong passphrase" in capsys.readouterr().err

    monkeypatch.delenv(PASSPHRASE_ENV)
    monkeypatch.setattr(sys, "stdin", None)
    assert main(["keys", "show", str(private_path)]) == 1
    assert PASSPHRASE_ENV in capsys.readouterr().err


def test_protect_without_a_passphrase_source_fails_cleanly(tmp_path: Path) -> None:
    code, _, err = run_cli("keygen", "--out", str(tmp_path / "k"), "--bits", "2048", "--protect")
    assert code == 1 and PASSPHRASE_ENV in err
    assert not (tmp_path / "k").exists()


def test_no_passphrase_option_exists() -> None:
    code, out, _ = run_cli("keygen", "--help")
    assert code == 0 and "--passphrase" not in out


def test_keys_show_on_a_damaged_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "public_key.json"
    path.write_text('{"format": "ppml.paillier.public-key", "vers')
    assert main(["keys", "show", str(path)]) == 2  # a malformed input file, like a bad usage
    err = capsys.readouterr().err
    assert err == f"error: {path}: not valid JSON (the file is truncated or damaged)\n"


def test_phe_import_and_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    public_key, private_key = generate_keypair(2048)
    save_jwk(private_key, tmp_path / "phe_private.jwk")
    save_jwk(public_key, tmp_path / "phe_public.jwk")

    assert (
        main(
            ["keys", "import-phe", str(tmp_path / "phe_private.jwk"), "--out", str(tmp_path / "a")]
        )
        == 0
    )
    assert load_private_key(tmp_path / "a" / "private_key.json") == private_key
    assert stat.filemode((tmp_path / "a" / "private_key.json").stat().st_mode) == "-rw-------"

    assert load_public_key(tmp_path / "a" / "public_key.json").proof == public_key.proof
    assert "with a modulus proof" in capsys.readouterr().err

    assert (
        main(["keys", "import-phe", str(tmp_path / "phe_public.jwk"), "--out", str(tmp_path / "b")])
        == 0
    )
    assert load_public_key(tmp_path / "b" / "public_key.json") == public_key
    assert load_public_key(tmp_path / "b" / "public_key.json").proof is None
    assert "no modulus proof" in capsys.readouterr().err
    assert not (tmp_path / "b" / "private_key.json").exists()

    out = tmp_path / "exported.jwk"
    assert (
        main(
            [
                "keys",
                "export-phe",
                "--private-key",
                str(tmp_path / "a" / "private_key.json"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert load_jwk(out) == private_key
    assert (
        main(
            [
                "keys",
                "export-phe",
                "--public-key",
                str(tmp_path / "b" / "public_key.json"),
                "--out",
                str(tmp_path / "pub.jwk"),
            ]
        )
        == 0
    )
    assert load_jwk(tmp_path / "pub.jwk") == public_key

    assert main(["keys", "export-phe", "--out", str(tmp_path / "x.jwk")]) == 2
    assert "exactly one" in capsys.readouterr().err


def test_keys_show_says_whether_the_key_is_proven(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, private_key = generate_keypair(2048)
    public_path, _ = save_keypair(tmp_path, private_key)
    assert main(["keys", "show", str(public_path)]) == 0
    assert "proof       valid (ppml-paillier-n-v1" in capsys.readouterr().out
    save_jwk(private_key.public_key, tmp_path / "public.jwk")
    assert main(["keys", "show", str(tmp_path / "public.jwk")]) == 0
    assert "proof       none" in capsys.readouterr().out


def test_keys_prove_adds_a_proof_to_older_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "s3cret")
    assert main(["keygen", "--out", str(tmp_path), "--bits", "2048", "--protect"]) == 0
    public_path, private_path = tmp_path / "public_key.json", tmp_path / "private_key.json"
    proven = load_public_key(public_path)
    # What an older ppml wrote: version 2, no proof (the sealed private key stays as it is).
    document = json.loads(public_path.read_text())
    document["version"] = 2
    del document["proof"]
    document["djn_h_s"] = format(proven.h_s, "x")
    public_path.write_text(json.dumps(document))
    assert load_public_key(public_path).proof is None
    capsys.readouterr()

    assert main(["keys", "prove", "--keys", str(tmp_path)]) == 0
    assert "modulus proof added" in capsys.readouterr().err
    assert load_public_key(public_path).proof == proven.proof
    assert json.loads(public_path.read_text())["version"] == 3
    assert stat.filemode(private_path.stat().st_mode) == "-rw-------"
    assert load_private_key(private_path, passphrase="s3cret").public_key.proof == proven.proof

    # Another key's public file is not replaced without --force.
    other = generate_keypair(2048)[0]
    save_public_key(other, public_path)
    assert main(["keys", "prove", "--keys", str(tmp_path)]) == 1
    assert "holds another key" in capsys.readouterr().err
    assert load_public_key(public_path) == other
    assert main(["keys", "prove", "--keys", str(tmp_path), "--force"]) == 0
    assert load_public_key(public_path).proof == proven.proof


def test_keygen_refuses_keys_too_large_to_read_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keygen", "--out", str(tmp_path / "keys"), "--bits", "8200"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "error: an 8200-bit Paillier modulus is too large; this policy accepts 2048 to 4096 bits\n"
    )
    assert not (tmp_path / "keys").exists()

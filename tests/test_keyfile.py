"""Key files: round trips, permissions, atomic writing, passphrases and damaged files."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from ppml.crypto import SERVER_KEY_POLICY, KeyPolicy, PrivateKey, PublicKey, generate_keypair
from ppml.errors import (
    FileFormatError,
    KeyFileError,
    PassphraseError,
    UnsupportedVersionError,
)
from ppml.wire.keyfile import (
    Argon2Settings,
    is_protected,
    load_private_key,
    load_public_key,
    prove_keypair,
    save_keypair,
    save_private_key,
    save_public_key,
)

# Cheap settings keep the tests fast; the format and code path are the same.
LIGHT = Argon2Settings(iterations=1, lanes=1, memory_kib=1024)


def test_round_trip(tmp_path: Path, real_keypair: tuple[PublicKey, PrivateKey]) -> None:
    public_key, private_key = real_keypair
    public_path, private_path = save_keypair(tmp_path, private_key)
    assert load_public_key(public_path) == public_key
    loaded = load_private_key(private_path)
    assert loaded == private_key
    assert loaded.decrypt(public_key.encrypt(-12345)) == -12345


@pytest.mark.parametrize(
    ("umask", "public_mode"),
    [(0o000, "-rw-rw-rw-"), (0o022, "-rw-r--r--"), (0o077, "-rw-------")],
)
def test_private_key_file_is_owner_only(
    tmp_path: Path, real_keypair: tuple[PublicKey, PrivateKey], umask: int, public_mode: str
) -> None:
    old_umask = os.umask(umask)  # even a permissive umask must not widen the private key's mode
    try:
        public_path, private_path = save_keypair(tmp_path, real_keypair[1])
    finally:
        os.umask(old_umask)
    assert stat.filemode(private_path.stat().st_mode) == "-rw-------"
    # The public key is an ordinary file: the umask decides who else may read it.
    assert stat.filemode(public_path.stat().st_mode) == public_mode


def test_existing_keys_are_not_replaced(
    tmp_path: Path, real_keypair: tuple[PublicKey, PrivateKey]
) -> None:
    save_keypair(tmp_path, real_keypair[1])
    before = (tmp_path / "private_key.json").read_bytes()
    with pytest.raises(FileExistsError):
        save_keypair(tmp_path, real_keypair[1])
    with pytest.raises(FileExistsError):
        save_private_key(real_keypair[1], tmp_path / "private_key.json")
    assert (tmp_path / "private_key.json").read_bytes() == before
    save_keypair(tmp_path, real_keypair[1], overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["private_key.json", "public_key.json"]


def test_documents_are_versioned_json(
    tmp_path: Path, real_keypair: tuple[PublicKey, PrivateKey]
) -> None:
    public_path, private_path = save_keypair(tmp_path, real_keypair[1])
    public_doc = json.loads(public_path.read_text())
    private_doc = json.loads(private_path.read_text())
    assert list(public_doc)[:2] == ["format", "version"]
    assert public_doc["format"] == "ppml.paillier.public-key" and public_doc["version"] == 3
    assert public_doc["randomness"] == "djn" and "djn_h_s" not in public_doc
    assert public_doc["key_id"] == real_keypair[0].key_id and public_doc["bits"] == 2048
    proof = public_doc["proof"]
    assert proof["scheme"] == "ppml-paillier-n-v1" and (proof["alpha"], proof["rounds"]) == (
        6370,
        11,
    )
    assert [int(s, 16) for s in proof["sigma"]] == list(real_keypair[0].proof.sigma)  # type: ignore[union-attr]
    assert private_doc["format"] == "ppml.paillier.private-key"
    assert private_doc["protection"] == "none" and private_doc["proof"] == proof
    assert "p" not in public_doc and "q" not in public_doc
    loaded = load_public_key(public_path)
    assert loaded.proof == real_keypair[0].proof and loaded.h_s == real_keypair[0].h_s


class TestPassphrase:
    def test_protected_round_trip(
        self, tmp_path: Path, real_keypair: tuple[PublicKey, PrivateKey]
    ) -> None:
        path = tmp_path / "private_key.json"
        save_private_key(real_keypair[1], path, passphrase="correct horse", argon2=LIGHT)
        text = path.read_text()
        assert format(real_keypair[1].p, "x") not in text
        assert is_protected(path)
        assert load_private_key(path, passphrase="correct horse") == real_keypair[1]
        assert load_private_key(path, passphrase=lambda: b"correct horse") == real_keypair[1]

    def test_default_settings_work(
        self, tmp_path: Path, real_keypair: tuple[PublicKey, PrivateKey]
    ) -> None:
        path = tmp_path / "private_key.json"
        save_private_key(real_keypair[1], path, passphrase="pw")
        protection = json.loads(path.read_text())["protection"]
        assert protection["kdf"] == "argon2id" and protection["memory_kib"] == 65536
        assert load_private_key(path, passphrase="pw") == real_keypair[1]

    def test_wrong_passphrase(
        self, tmp_path: Path, real_keypair: tuple[PublicKey, PrivateKey]
    ) -> None:
        path = tmp_path / "private_key.json"
        save_private_key(real_keypair[1], path, passphrase="right", argon2=LIGHT)
        with pytest.raises(PassphraseError, match="wrong passphrase") as caught:
            load_private_key(path, passphrase="wrong")
        assert str(path) in str(caught.value)

    def test_missing_passphrase(
        self, tmp_path: Path, real_keypair: tuple[PublicKey, PrivateKey]
    ) -> None:
        path = tmp_path / "private_key.json"
        save_private_key(real_keypair[1], path, passphrase="right", argon2=LIGHT)
        with pytest.raises(PassphraseError, match="passphrase is needed"):
            load_private_key(path)
        with pytest.raises(PassphraseError, match="empty"):
            load_private_key(path, passphrase="")

    def test_passphrase_is_asked_only_when_needed(
        self, tmp_path: Path, real_keypair: tuple[PublicKey, PrivateKey]
    ) -> None:
        path = tmp_path / "private_key.json"
        save_private_key(real_keypair[1], path)

        def never() -> str:
            raise AssertionError("asked for a passphrase the file does not need")

        assert load_private_key(path, passphrase=never) == real_keypair[1]

    def test_header_is_authenticated(
        self, tmp_path: Path, real_keypair: tuple[PublicKey, PrivateKey]
    ) -> None:
        path = tmp_path / "private_key.json"
        save_private_key(real_keypair[1], path, passphrase="pw", argon2=LIGHT)
        document = json.loads(path.read_text())
        document["protection"]["iterations"] = 2
        path.write_text(json.dumps(document))
        with pytest.raises(PassphraseError, match="altered"):
            load_private_key(path, passphrase="pw")

    def test_hostile_kdf_settings_are_refused(
        self, tmp_path: Path, real_keypair: tuple[PublicKey, PrivateKey]
    ) -> None:
        path = tmp_path / "private_key.json"
        save_private_key(real_keypair[1], path, passphrase="pw", argon2=LIGHT)
        document = json.loads(path.read_text())
        document["protection"]["memory_kib"] = 1 << 40
        path.write_text(json.dumps(document))
        with pytest.raises(KeyFileError, match="out of the accepted range"):
            load_private_key(path, passphrase="pw")


class TestDamagedFiles:
    @pytest.fixture
    def files(
        self, tmp_path: Path, real_keypair: tuple[PublicKey, PrivateKey]
    ) -> tuple[Path, Path]:
        return save_keypair(tmp_path, real_keypair[1])

    @pytest.mark.parametrize("which", [0, 1])
    def test_truncated(self, files: tuple[Path, Path], which: int) -> None:
        path = files[which]
        path.write_bytes(path.read_bytes()[:100])
        loader = load_public_key if which == 0 else load_private_key
        with pytest.raises(KeyFileError, match="truncated") as caught:
            loader(path)
        assert str(caught.value).startswith(str(path))

    @pytest.mark.parametrize("which", [0, 1])
    def test_unknown_version(self, files: tuple[Path, Path], which: int) -> None:
        path = files[which]
        document = json.loads(path.read_text())
        document["version"] = 99
        path.write_text(json.dumps(document))
        loader = load_public_key if which == 0 else load_private_key
        with pytest.raises(UnsupportedVersionError, match="version 99 is not supported"):
            loader(path)

    def test_wrong_kind_of_document(self, files: tuple[Path, Path]) -> None:
        with pytest.raises(KeyFileError, match=r"expected a 'ppml\.paillier\.private-key'"):
            load_private_key(files[0])

    def test_altered_modulus(self, files: tuple[Path, Path]) -> None:
        path = files[0]
        document = json.loads(path.read_text())
        document["n"] = format(int(document["n"], 16) + 2, "x")
        path.write_text(json.dumps(document))
        with pytest.raises(KeyFileError, match="key_id"):
            load_public_key(path)

    def test_altered_factor(self, files: tuple[Path, Path]) -> None:
        path = files[1]
        document = json.loads(path.read_text())
        document["p"] = format(int(document["p"], 16) + 2, "x")
        path.write_text(json.dumps(document))
        with pytest.raises(KeyFileError, match="damaged"):
            load_private_key(path)

    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            ("n", 12345, "must be of type str"),
            ("n", "xyz", "hexadecimal"),
            ("bits", 4096, "not the 4096 bits declared"),
            ("version", "1", "must be of type int"),
        ],
    )
    def test_bad_fields(
        self, files: tuple[Path, Path], field: str, value: object, message: str
    ) -> None:
        path = files[0]
        document = json.loads(path.read_text())
        document[field] = value
        path.write_text(json.dumps(document))
        with pytest.raises(FileFormatError, match=message):
            load_public_key(path)

    def test_missing_and_oversized_files(self, tmp_path: Path) -> None:
        with pytest.raises(KeyFileError, match="no such file"):
            load_public_key(tmp_path / "absent.json")
        huge = tmp_path / "huge.json"
        huge.write_bytes(b" " * (2 << 20))
        with pytest.raises(KeyFileError, match="refusing to read"):
            load_public_key(huge)

    def test_small_keys_are_refused_on_load(self, tmp_path: Path) -> None:
        _, small = generate_keypair(1024, insecure_test_key=True)
        public_path, private_path = save_keypair(tmp_path, small)
        with pytest.raises(KeyFileError, match="1024-bit Paillier modulus is too small"):
            load_public_key(public_path)
        with pytest.raises(KeyFileError, match="too small"):
            load_private_key(private_path)
        test_policy = KeyPolicy(min_bits=1024)
        assert load_public_key(public_path, policy=test_policy) == small.public_key
        assert load_private_key(private_path, policy=test_policy) == small

    @pytest.mark.parametrize(
        ("which", "field", "message"),
        [
            (0, "n", "a 4100-bit Paillier modulus is too large"),
            (0, "sigma", "sigma 4 of the modulus proof is not a hexadecimal integer of at most"),
            (1, "p", "field 'p' is longer than 4096 bits"),
        ],
    )
    def test_oversized_integers_are_refused_before_conversion(
        self, files: tuple[Path, Path], which: int, field: str, message: str
    ) -> None:
        path = files[which]
        document = json.loads(path.read_text())
        if field == "sigma":
            document["proof"]["sigma"][3] = "f" * 1025  # one digit over 4096 bits
        else:
            document[field] = "f" * 1025
        path.write_text(json.dumps(document))
        loader = load_public_key if which == 0 else load_private_key
        with pytest.raises(KeyFileError, match=message):
            loader(path)


def test_failed_write_leaves_nothing_behind(
    tmp_path: Path, real_keypair: tuple[PublicKey, PrivateKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space"):
        save_public_key(real_keypair[0], tmp_path / "public_key.json")
    assert list(tmp_path.iterdir()) == []


def _downgrade(path: Path, version: int, djn_h_s: int | None = None) -> None:
    """Rewrite a key file as an older version would have stored it."""
    document = json.loads(path.read_text())
    document["version"] = version
    del document["proof"]
    if version == 1:
        del document["randomness"]
    elif djn_h_s is not None:
        document["djn_h_s"] = format(djn_h_s, "x")
    path.write_text(json.dumps(document))


def test_version_1_files_are_still_read(
    tmp_path: Path, real_keypair: tuple[PublicKey, PrivateKey]
) -> None:
    public_path, private_path = save_keypair(tmp_path, real_keypair[1])
    for path in (public_path, private_path):
        _downgrade(path, 1)
    loaded = load_private_key(private_path)
    assert loaded.public_key.randomness == "standard" and loaded == real_keypair[1]
    assert loaded.public_key.proof is None
    assert load_public_key(public_path) == real_keypair[0]


def test_version_2_files_are_read_with_the_derived_base(
    tmp_path: Path, real_keypair: tuple[PublicKey, PrivateKey]
) -> None:
    """A stored base is never used: the key encrypts with the base derived from n."""
    public_path, private_path = save_keypair(tmp_path, real_keypair[1])
    for path in (public_path, private_path):
        _downgrade(path, 2, djn_h_s=12345)  # a unit, not even an n-th residue
    public_key = load_public_key(public_path)
    private_key = load_private_key(private_path)
    assert public_key.randomness == "djn" and public_key.proof is None
    assert public_key.h_s == real_keypair[0].h_s != 12345
    assert private_key.decrypt(public_key.encrypt(-7)) == -7


def unproven(private_key: PrivateKey) -> PrivateKey:
    """The same key pair as ppml wrote it before keys carried proofs."""
    public_key = private_key.public_key
    return PrivateKey(PublicKey(public_key.n, public_key.randomness), private_key.p, private_key.q)


def test_proving_an_old_key_pair(
    tmp_path: Path, real_keypair: tuple[PublicKey, PrivateKey]
) -> None:
    public_path, private_path = save_keypair(tmp_path, real_keypair[1])
    for path in (public_path, private_path):
        _downgrade(path, 2, djn_h_s=12345)
    assert load_public_key(public_path).proof is None

    def never() -> str:
        raise AssertionError("asked for a passphrase the file does not need")

    proven, _, _ = prove_keypair(tmp_path, passphrase=never)
    assert proven == real_keypair[1] and proven.public_key.proof == real_keypair[0].proof
    assert load_public_key(public_path).proof == real_keypair[0].proof
    assert load_private_key(private_path).public_key.proof == real_keypair[0].proof
    assert json.loads(private_path.read_text())["version"] == 3
    assert stat.filemode(private_path.stat().st_mode) == "-rw-------"


def test_proving_keeps_the_passphrase_and_its_settings(
    tmp_path: Path, real_keypair: tuple[PublicKey, PrivateKey]
) -> None:
    save_keypair(tmp_path, unproven(real_keypair[1]), passphrase="pw", argon2=LIGHT)
    asked: list[int] = []

    def passphrase() -> str:
        asked.append(1)
        return "pw"

    prove_keypair(tmp_path, passphrase=passphrase)
    assert asked == [1]  # asked once, to open the key and to seal it again
    document = json.loads((tmp_path / "private_key.json").read_text())
    assert document["protection"]["memory_kib"] == LIGHT.memory_kib and "proof" in document
    loaded = load_private_key(tmp_path / "private_key.json", passphrase="pw")
    assert loaded.public_key.proof == real_keypair[0].proof


def test_proving_refuses_to_replace_another_public_key(
    tmp_path: Path,
    real_keypair: tuple[PublicKey, PrivateKey],
) -> None:
    save_keypair(tmp_path, real_keypair[1])
    other = generate_keypair(2048)[1]
    save_public_key(other.public_key, tmp_path / "public_key.json")
    with pytest.raises(FileExistsError, match="holds another key"):
        prove_keypair(tmp_path)
    assert load_public_key(tmp_path / "public_key.json") == other.public_key
    prove_keypair(tmp_path, replace_other_public_key=True)
    assert load_public_key(tmp_path / "public_key.json") == real_keypair[0]

    (tmp_path / "public_key.json").write_text("{")
    with pytest.raises(FileExistsError, match=r"cannot be read .*truncated"):
        prove_keypair(tmp_path)
    (tmp_path / "public_key.json").unlink()
    prove_keypair(tmp_path)  # a missing public key is simply written
    assert load_public_key(tmp_path / "public_key.json").proof == real_keypair[0].proof


def test_standard_randomness_keys(tmp_path: Path) -> None:
    _, private_key = generate_keypair(2048, randomness="standard")
    public_path, private_path = save_keypair(tmp_path, private_key)
    document = json.loads(public_path.read_text())
    assert document["randomness"] == "standard" and "djn_h_s" not in document
    assert load_public_key(public_path).randomness == "standard"
    assert load_private_key(private_path).public_key.h_s is None


def test_a_stored_djn_base_is_refused_in_version_3(
    tmp_path: Path, real_keypair: tuple[PublicKey, PrivateKey]
) -> None:
    _, private_path = save_keypair(tmp_path, real_keypair[1])
    document = json.loads(private_path.read_text())
    document["djn_h_s"] = format(real_keypair[0].h_s, "x")  # even the right one
    private_path.write_text(json.dumps(document))
    with pytest.raises(KeyFileError, match="may not hold 'djn_h_s'"):
        load_private_key(private_path)


def test_a_server_policy_needs_a_proof(
    tmp_path: Path, real_keypair: tuple[PublicKey, PrivateKey]
) -> None:
    public_path, private_path = save_keypair(tmp_path, real_keypair[1])
    assert load_public_key(public_path, policy=SERVER_KEY_POLICY) == real_keypair[0]
    for path in (public_path, private_path):
        _downgrade(path, 2, djn_h_s=real_keypair[0].h_s)
    with pytest.raises(KeyFileError, match="no modulus proof"):
        load_public_key(public_path, policy=SERVER_KEY_POLICY)
    # The private key can always make its proof.
    private_key = load_private_key(private_path, policy=SERVER_KEY_POLICY)
    assert private_key.public_key.proof == real_keypair[0].proof
    assert load_private_key(private_path).public_key.proof is None


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda proof: proof.update(scheme="other"), "scheme is 'other'"),
        (lambda proof: proof.update(scheme=5), "scheme is int"),
        (lambda proof: proof.update(rounds=8), "alpha 6370 and 8 rounds"),
        (lambda proof: proof.update(alpha="6370"), "must be integers"),
        (lambda proof: proof.update(sigma=proof["sigma"][:10]), "list of 11 values"),
        (lambda proof: proof.update(sigma="00"), "list of 11 values"),
        (lambda proof: proof["sigma"].__setitem__(0, 7), "sigma 1 .* not a hexadecimal"),
        (lambda proof: proof["sigma"].__setitem__(0, "0"), "positive integers"),
        (lambda proof: proof["sigma"].__setitem__(4, "ABC"), "sigma 5 .* not a hexadecimal"),
        (lambda proof: proof["sigma"].reverse(), "sigma 1 is not the n-th root"),
    ],
)
def test_damaged_proofs_are_refused(
    tmp_path: Path, real_keypair: tuple[PublicKey, PrivateKey], edit: object, message: str
) -> None:
    public_path, _ = save_keypair(tmp_path, real_keypair[1])
    document = json.loads(public_path.read_text())
    edit(document["proof"])  # type: ignore[operator]
    public_path.write_text(json.dumps(document))
    with pytest.raises(KeyFileError, match=message):
        load_public_key(public_path)

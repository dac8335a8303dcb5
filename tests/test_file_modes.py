"""File modes: public outputs follow the umask, secret ones are 0600 whatever it is."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ppml import fileio
from ppml.cli.main import main
from ppml.datasets import laptops_csv
from ppml.fileio import PRIVATE_FILE_MODE, current_umask, write_atomic


@pytest.fixture
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """Run the test under the umask it is parametrized with, then restore the old one."""
    value: int = request.param
    old = os.umask(value)
    try:
        yield value
    finally:
        os.umask(old)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o000, 0o002, 0o022, 0o027, 0o077], indirect=True)
def test_current_umask_reads_without_changing_it(
    umask: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert current_umask() == umask

    # Where /proc cannot be read, the set-and-restore fallback gives the same answer.
    def no_proc(*args: object, **kwargs: object) -> object:
        raise OSError("no /proc here")

    monkeypatch.setattr(fileio, "open", no_proc, raising=False)
    assert current_umask() == umask
    assert os.umask(umask) == umask  # still in force afterwards


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077], indirect=True)
def test_write_atomic_modes(tmp_path: Path, umask: int) -> None:
    write_atomic(tmp_path / "public", b"x")
    write_atomic(tmp_path / "secret", b"x", mode=PRIVATE_FILE_MODE)
    assert mode_of(tmp_path / "public") == 0o666 & ~umask
    assert mode_of(tmp_path / "secret") == 0o600
    # Replacing a file gives the new file the same mode, not the old one's.
    (tmp_path / "public").chmod(0o600)
    write_atomic(tmp_path / "public", b"y")
    assert mode_of(tmp_path / "public") == 0o666 & ~umask


@pytest.mark.parametrize("umask", [0o022, 0o077], indirect=True)
def test_every_cli_output(tmp_path: Path, umask: int) -> None:
    rows = tmp_path / "laptops.csv"
    rows.write_text("".join(laptops_csv().read_text().splitlines(keepends=True)[:61]))
    model, keys = tmp_path / "model", tmp_path / "keys"
    query, result, prices = tmp_path / "query.jsonl", tmp_path / "result.jsonl", tmp_path / "p.csv"
    steps = [
        ["train", "--data", rows, "--target", "Price", "--out", model],
        ["keygen", "--out", keys, "--bits", "2048"],
        ["encrypt", "--public-key", keys / "public_key.json", "--features",
         model / "features.json", "--input", rows, "--out", query, "--jobs", "1"],
        ["predict", "--model", model, "--input", query, "--out", result, "--jobs", "1"],
        ["decrypt", "--private-key", keys / "private_key.json", "--query", query,
         "--features", model / "features.json", "--input", result, "--out", prices],
        ["keys", "export-phe", "--private-key", keys / "private_key.json",
         "--out", tmp_path / "private.jwk"],
        ["keys", "export-phe", "--public-key", keys / "public_key.json",
         "--out", tmp_path / "public.jwk"],
    ]  # fmt: skip
    for step in steps:
        assert main([str(part) for part in step]) == 0, step

    public = 0o666 & ~umask
    expected = {
        keys / "public_key.json": public,
        model / "features.json": public,
        query: public,
        result: public,
        prices: public,
        tmp_path / "public.jwk": public,
        keys / "private_key.json": 0o600,
        model / "model.json": 0o600,
        tmp_path / "private.jwk": 0o600,
    }
    found = {path: mode_of(path) for path in expected}
    assert {p.name: oct(m) for p, m in found.items()} == {
        p.name: oct(m) for p, m in expected.items()
    }

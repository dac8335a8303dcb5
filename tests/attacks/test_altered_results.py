"""A result file altered in transit, or swapped for another, never prints prices.

The original attack: change `frac_bits`, `bound_bits` or the target transform
in a result's header, and `ppml decrypt` printed wrong prices with exit code
0. Decryption now takes all of those from the customer's own query and spec.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from ppml.cli.main import main
from ppml.datasets import laptops_csv

Edit = Callable[[dict[str, object]], None]


def _set(member: str, value: object) -> Edit:
    def edit(header: dict[str, object]) -> None:
        header[member] = value

    return edit


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One honest run of train, keygen, encrypt and predict on five laptops."""
    root = tmp_path_factory.mktemp("altered")
    rows = root / "laptops.csv"
    rows.write_text("".join(laptops_csv().read_text().splitlines(keepends=True)[:6]))
    for args in (
        ["train", "--data", str(laptops_csv()), "--target", "Price", "--out", str(root / "model")],
        ["keygen", "--out", str(root / "keys"), "--bits", "2048"],
        ["encrypt", "--private-key", str(root / "keys" / "private_key.json"),
         "--features", str(root / "model" / "features.json"), "--input", str(rows),
         "--out", str(root / "query.jsonl")],
        ["predict", "--model", str(root / "model"), "--input", str(root / "query.jsonl"),
         "--out", str(root / "result.jsonl")],
    ):  # fmt: skip
        assert main(args) == 0
    return root


def _decrypt(root: Path, result: Path, out: Path) -> int:
    return main(
        ["decrypt", "--private-key", str(root / "keys" / "private_key.json"),
         "--query", str(root / "query.jsonl"), "--features", str(root / "model" / "features.json"),
         "--input", str(result), "--out", str(out)]
    )  # fmt: skip


def test_the_honest_result_decrypts(flow: Path, tmp_path: Path) -> None:
    assert _decrypt(flow, flow / "result.jsonl", tmp_path / "prices.csv") == 0
    assert len((tmp_path / "prices.csv").read_text().splitlines()) == 6


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_set("frac_bits", 87), "scale or scores disagree"),
        (_set("frac_bits", 89), "scale or scores disagree"),
        (_set("bound_bits", 9999), "out of range"),
        (_set("scores", 2), "scale or scores disagree"),  # blocks of two answers
        (_set("scores", 0), "scores must be from 1"),
        (_set("scores", "1"), "scores"),
        (_set("version", 3), "version 3 is not supported"),  # the one-score result of before
        (_set("layout", {"slots": 1, "slot_bits": 94}), "disagree with"),
        (_set("query_id", "0" * 32), "answers query"),
        (_set("query_sha256", "f" * 64), "SHA-256 mismatch"),
        (_set("key_id", "0" * 32), "made for key"),
    ],
)
def test_an_altered_header_is_refused_with_no_output(
    flow: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: Edit, message: str
) -> None:
    lines = (flow / "result.jsonl").read_text().splitlines()
    header = json.loads(lines[0])
    edit(header)
    altered = tmp_path / "result.jsonl"
    altered.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    out = tmp_path / "prices.csv"
    assert _decrypt(flow, altered, out) != 0
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and message in error[0] and "Traceback" not in error[0]
    assert not out.exists() and not list(tmp_path.glob(".prices.csv.*"))


def test_a_result_of_another_query_is_refused(flow: Path, tmp_path: Path) -> None:
    """The same rows encrypted again make a new query; the old answer does not belong to it."""
    again = tmp_path / "query.jsonl"
    assert main(
        ["encrypt", "--private-key", str(flow / "keys" / "private_key.json"),
         "--features", str(flow / "model" / "features.json"), "--input", str(flow / "laptops.csv"),
         "--out", str(again)]
    ) == 0  # fmt: skip
    out = tmp_path / "prices.csv"
    code = main(
        ["decrypt", "--private-key", str(flow / "keys" / "private_key.json"), "--query", str(again),
         "--features", str(flow / "model" / "features.json"), "--input", str(flow / "result.jsonl"),
         "--out", str(out)]
    )  # fmt: skip
    assert code != 0 and not out.exists()

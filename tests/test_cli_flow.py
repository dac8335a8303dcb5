"""The role commands end to end through the ``ppml`` CLI, and their refusals of bad input."""

from __future__ import annotations

import base64
import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_diabetes

from ppml.datasets import laptops_csv
from ppml.features import FeatureSpec
from ppml.model import LinearModel
from ppml.roles.customer import read_inputs

SAMPLE_ROWS = 1303  # every bundled laptop


def ppml(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("ppml")), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


def ok(*args: str | Path) -> subprocess.CompletedProcess[str]:
    completed = ppml(*args)
    assert completed.returncode == 0, completed.stderr
    return completed


def refused(out: Path, *args: str | Path) -> str:
    """Run a command that must fail: one-line error, non-zero exit, no output file."""
    completed = ppml(*args)
    assert completed.returncode != 0
    assert not out.exists(), f"{out} was written despite the error"
    assert not list(out.parent.glob(f".{out.name}.*")), "a temporary file was left behind"
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    assert "Traceback" not in completed.stderr
    return lines[0]


def first_rows(source: Path, destination: Path, count: int) -> Path:
    destination.write_text("".join(source.read_text().splitlines(keepends=True)[: count + 1]))
    return destination


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Server and customer folders after one complete run of the five commands."""
    root = tmp_path_factory.mktemp("flow")
    server, customer = root / "server", root / "customer"
    server.mkdir()
    customer.mkdir()
    ok("train", "--data", laptops_csv(), "--target", "Price", "--out", server / "model")
    shutil.copy(server / "model" / "features.json", customer / "features.json")
    ok("keygen", "--out", customer / "keys", "--bits", "2048")
    rows = first_rows(laptops_csv(), customer / "laptops.csv", SAMPLE_ROWS)
    ok("encrypt", "--private-key", customer / "keys" / "private_key.json",
       "--features", customer / "features.json", "--input", rows,
       "--out", customer / "query.json")  # fmt: skip
    shutil.copy(customer / "query.json", server / "query.json")
    ok("predict", "--model", server / "model", "--input", server / "query.json",
       "--out", server / "result.json")  # fmt: skip
    shutil.copy(server / "result.json", customer / "result.json")
    ok("decrypt", "--private-key", customer / "keys" / "private_key.json",
       "--query", customer / "query.json", "--features", customer / "features.json",
       "--input", customer / "result.json", "--out", customer / "prices.csv")  # fmt: skip
    return {"root": root, "server": server, "customer": customer}


def _record(flow: dict[str, Path]) -> tuple[Path, ...]:
    """The customer's own record of the flow's query: its query file and feature spec."""
    customer = flow["customer"]
    return ("--query", customer / "query.json", "--features", customer / "features.json")


def test_train_prints_metrics(tmp_path: Path) -> None:
    completed = ok("train", "--data", laptops_csv(), "--target", "Price", "--out", tmp_path)
    assert "held out" in completed.stdout
    line = next(line for line in completed.stdout.splitlines() if "5-fold CV" in line)
    log_r2 = float(line.split("│")[6])
    assert log_r2 >= 0.83
    assert "refitted on all 1303 rows" in completed.stderr
    header = next(line for line in completed.stdout.splitlines() if "evaluation" in line)
    assert header.count("MAE") == 1


def test_decrypted_prices_match_the_plaintext_model(flow: dict[str, Path]) -> None:
    customer, server = flow["customer"], flow["server"]
    with open(customer / "prices.csv") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["prediction"]
        prices = np.array([float(row["prediction"]) for row in reader])
    spec = FeatureSpec.load(server / "model" / "features.json")
    model = LinearModel.load(server / "model" / "model.json")
    scores = model.decision_function(read_inputs(spec, customer / "laptops.csv"))
    expected = spec.output.inverse_link(scores)[:, 0]
    assert prices.shape == (SAMPLE_ROWS,)
    assert np.max(np.abs(prices - expected) / expected) < 1e-9


def test_each_role_holds_only_its_own_files(flow: dict[str, Path]) -> None:
    customer_files = {p.name for p in flow["customer"].rglob("*") if p.is_file()}
    server_files = {p.name for p in flow["server"].rglob("*") if p.is_file()}
    assert "model.json" not in customer_files and "private_key.json" not in server_files
    assert "public_key.json" not in server_files  # the query carries the key itself


class TestRefusals:
    def test_missing_columns(self, flow: dict[str, Path], tmp_path: Path) -> None:
        rows = tmp_path / "rows.csv"
        rows.write_text("Company,Ram\nApple,8GB\n")
        out = tmp_path / "query.json"
        line = refused(out, "encrypt", "--public-key", flow["customer"] / "keys" / "public_key.json",
                       "--features", flow["customer"] / "features.json", "--input", rows, "--out", out)  # fmt: skip
        assert "missing columns" in line and str(rows) in line

    def test_unparsable_value(self, flow: dict[str, Path], tmp_path: Path) -> None:
        rows = first_rows(laptops_csv(), tmp_path / "rows.csv", 3)
        rows.write_text(rows.read_text().replace("1.86kg", "heavy"))
        out = tmp_path / "query.json"
        line = refused(out, "encrypt", "--public-key", flow["customer"] / "keys" / "public_key.json",
                       "--features", flow["customer"] / "features.json", "--input", rows, "--out", out)  # fmt: skip
        assert (
            line
            == f"error: {rows}: row 3 (line 4), column 'Weight': cannot read 'heavy' as a number in kg"
        )

    def test_query_for_another_spec(self, flow: dict[str, Path], tmp_path: Path) -> None:
        other = tmp_path / "other-model"
        ok(
            "train",
            "--data",
            laptops_csv(),
            "--target",
            "Price",
            "--out",
            other,
            "--frac-bits",
            "30",
        )
        out = tmp_path / "result.json"
        line = refused(
            out, "predict", "--model", other, "--input", flow["server"] / "query.json", "--out", out
        )
        assert "made for feature spec" in line

    def test_result_for_another_key(self, flow: dict[str, Path], tmp_path: Path) -> None:
        ok("keygen", "--out", tmp_path / "keys", "--bits", "2048")
        out = tmp_path / "prices.csv"
        line = refused(out, "decrypt", "--private-key", tmp_path / "keys" / "private_key.json",
                       *_record(flow), "--input", flow["customer"] / "result.json", "--out", out)  # fmt: skip
        assert "not under this private key" in line

    def test_tampered_query_ciphertext(self, flow: dict[str, Path], tmp_path: Path) -> None:
        lines = (flow["server"] / "query.json").read_text().splitlines()
        block = json.loads(lines[1])
        width = len(base64.b64decode(block["ciphertexts"][0]))
        block["ciphertexts"][7] = base64.b64encode(b"\xff" * width).decode()
        lines[1] = json.dumps(block)
        tampered = tmp_path / "query.json"
        tampered.write_text("\n".join(lines) + "\n")
        out = tmp_path / "result.json"
        line = refused(
            out, "predict", "--model", flow["server"] / "model", "--input", tampered, "--out", out
        )
        assert line.startswith(f"error: {tampered}: rows 1-21, feature 8: ciphertext out of range")

    def test_tampered_result_ciphertext(self, flow: dict[str, Path], tmp_path: Path) -> None:
        lines = (flow["customer"] / "result.json").read_text().splitlines()
        block = json.loads(lines[1])
        width = len(base64.b64decode(block["ciphertexts"][0]))
        # 1 is a valid ciphertext of 0, never a genuine answer: without the mask's
        # offset, the unmasked top slot is -2^(s-1), beyond every slot's bound.
        block["ciphertexts"] = [base64.b64encode((1).to_bytes(width, "big")).decode()]
        lines[1] = json.dumps(block)
        tampered = tmp_path / "result.json"
        tampered.write_text("\n".join(lines) + "\n")
        out = tmp_path / "prices.csv"
        line = refused(out, "decrypt", "--private-key", flow["customer"] / "keys" / "private_key.json",
                       *_record(flow), "--input", tampered, "--out", out)  # fmt: skip
        assert "block 1 decrypts outside the scores' bound" in line

    @pytest.mark.parametrize("which", ["query", "result"])
    def test_truncated_files(self, flow: dict[str, Path], tmp_path: Path, which: str) -> None:
        source = flow["server"] / f"{which}.json"
        truncated = tmp_path / f"{which}.json"
        truncated.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
        if which == "query":
            out = tmp_path / "result.json"
            line = refused(
                out,
                "predict",
                "--model",
                flow["server"] / "model",
                "--input",
                truncated,
                "--out",
                out,
            )
        else:
            out = tmp_path / "prices.csv"
            line = refused(out, "decrypt", "--private-key", flow["customer"] / "keys" / "private_key.json",
                           *_record(flow), "--input", truncated, "--out", out)  # fmt: skip
        assert line.startswith(f"error: {truncated}: ") and "truncated" in line

    def test_bad_estimator(self, tmp_path: Path) -> None:
        out = tmp_path / "model" / "model.json"
        line = refused(out, "train", "--data", laptops_csv(), "--target", "Price", "--out", out.parent,
                       "--estimator", "RandomForestRegressor")  # fmt: skip
        assert (
            "not a linear model ppml can compute exactly" in line and "LogisticRegression" in line
        )


def test_generic_csv_through_the_cli(tmp_path: Path) -> None:
    """A data set that ships with scikit-learn, against scikit-learn's own predict."""
    from sklearn.linear_model import LinearRegression

    data = load_diabetes()
    table = tmp_path / "diabetes.csv"
    with open(table, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*data.feature_names, "progression"])
        for features, target in zip(data.data, data.target, strict=True):
            writer.writerow([*(repr(float(v)) for v in features), repr(float(target))])
    ok(
        "train",
        "--data",
        table,
        "--target",
        "progression",
        "--out",
        tmp_path / "model",
        "--holdout",
        "0",
    )
    ok("keygen", "--out", tmp_path / "keys", "--bits", "2048")
    rows = first_rows(table, tmp_path / "rows.csv", 25)
    ok("encrypt", "--public-key", tmp_path / "keys" / "public_key.json",
       "--features", tmp_path / "model" / "features.json", "--input", rows, "--out", tmp_path / "q.json")  # fmt: skip
    ok(
        "predict",
        "--model",
        tmp_path / "model",
        "--input",
        tmp_path / "q.json",
        "--out",
        tmp_path / "r.json",
    )
    ok("decrypt", "--private-key", tmp_path / "keys" / "private_key.json",
       "--query", tmp_path / "q.json", "--features", tmp_path / "model" / "features.json",
       "--input", tmp_path / "r.json", "--out", tmp_path / "p.csv")  # fmt: skip
    predictions = np.loadtxt(tmp_path / "p.csv", skiprows=1)
    reference = LinearRegression().fit(data.data, data.target).predict(data.data[:25])
    assert np.max(np.abs(predictions - reference) / np.abs(reference)) < 1e-9

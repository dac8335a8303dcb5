"""``ppml demo``: both tasks run the real role commands and agree with the plaintext model."""

from __future__ import annotations

import csv
import math
import stat
from pathlib import Path

import numpy as np
import pytest

from ppml.cli.demo import SCENARIOS, Comparison, DemoTask
from ppml.cli.main import main
from ppml.features.outputs import Output

SPECIES = ("setosa", "versicolor", "virginica")


def run_demo(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["demo", "--bits", "2048", "--rows", "3", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_roles_kept_apart(workdir: Path) -> None:
    customer = workdir / "customer"
    assert stat.filemode((customer / "keys" / "private_key.json").stat().st_mode) == "-rw-------"
    # Each role's folder holds only its own secrets.
    assert not list(customer.rglob("model.json"))
    assert not list((workdir / "server").rglob("*key*"))


def test_price_demo_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_demo(capsys, "--workdir", str(tmp_path))
    assert code == 0, err
    assert "encrypted flow" in out and "largest relative difference" in err
    assert_roles_kept_apart(tmp_path)


def test_classify_demo_decrypts_labels_and_probabilities(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_demo(capsys, "--task", "classify", "--workdir", str(tmp_path))
    assert code == 0, err
    assert "encrypted flow" in out and "largest absolute probability difference" in err
    assert_roles_kept_apart(tmp_path)
    # The customer's flowers were sent without their species.
    with open(tmp_path / "customer" / "flowers.csv", newline="", encoding="utf-8") as handle:
        assert "species" not in next(csv.reader(handle))

    with open(tmp_path / "customer" / "species.csv", newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["prediction", *(f"proba_{s}" for s in SPECIES)]
        rows = list(reader)
    assert len(rows) == 3
    for row in rows:
        probabilities = [float(row[f"proba_{s}"]) for s in SPECIES]
        assert all(0.0 <= p <= 1.0 for p in probabilities)
        assert math.fsum(probabilities) == pytest.approx(1.0, abs=1e-12)
        assert row["prediction"] == SPECIES[int(np.argmax(probabilities))]


def test_an_unknown_task_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_demo(capsys, "--task", "cluster", "--workdir", str(tmp_path))
    assert code == 2 and "--task" in err
    assert not any(tmp_path.iterdir())


def species_comparison(private: list[tuple[str | float, ...]]) -> Comparison:
    output = Output.classification("species", SPECIES, "softmax")
    record = {"sepalLength": "5.1", "sepalWidth": "3.5", "petalLength": "1.4"}
    record |= {"petalWidth": "0.2", "species": "setosa"}
    plain: list[tuple[str | float, ...]] = [("setosa", 0.9, 0.08, 0.02)]
    return Comparison([record], output, plain, private, 2048)


@pytest.mark.parametrize(
    ("private", "agrees"),
    [
        (("setosa", 0.9, 0.08, 0.02), True),
        (("setosa", 0.9 + 5e-10, 0.08 - 5e-10, 0.02), True),
        (("setosa", 0.9 + 2e-9, 0.08 - 2e-9, 0.02), False),
        (("versicolor", 0.9, 0.08, 0.02), False),
    ],
)
def test_the_classification_check(
    private: tuple[str | float, ...], agrees: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    assert SCENARIOS[DemoTask.CLASSIFY].report(species_comparison([private])) is agrees
    assert "largest absolute probability difference" in capsys.readouterr().err


@pytest.mark.parametrize(("price", "agrees"), [(1000.0 * (1 + 5e-10), True), (1000.001, False)])
def test_the_price_check(price: float, agrees: bool) -> None:
    record = {"Company": "Dell", "TypeName": "Notebook", "Cpu": "Intel Core i5 7200U 2.5GHz"}
    record |= {"Ram": "8GB", "Price": "990"}
    comparison = Comparison(
        [record], Output.regression("Price", "exp"), [(1000.0,)], [(price,)], 2048
    )
    assert SCENARIOS[DemoTask.PRICE].report(comparison) is agrees

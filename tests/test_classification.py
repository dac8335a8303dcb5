"""Classifiers through the role commands with default settings: iris (three text classes) and
the bundled laptops labelled premium or standard."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from ppml.cli.main import main
from ppml.datasets import LAPTOPS_TARGET, iris_csv, laptops_csv
from ppml.features import FeatureSpec
from ppml.model import LinearModel
from ppml.roles.customer import read_inputs

LAPTOP_ROWS = 300


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("keys")
    assert main(["keygen", "--out", str(folder), "--bits", "2048"]) == 0
    return folder


def premium_laptops(destination: Path) -> Path:
    """The laptops with a ``Segment`` label instead of their price: premium above the median."""
    with open(laptops_csv(), newline="", encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))
    median = float(np.median([float(r[LAPTOPS_TARGET]) for r in records]))
    columns = [c for c in records[0] if c != LAPTOPS_TARGET] + ["Segment"]
    with open(destination, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for record in records:
            segment = "premium" if float(record[LAPTOPS_TARGET]) > median else "standard"
            writer.writerow({**record, "Segment": segment})
    return destination


def without(source: Path, column: str, destination: Path, rows: int | None = None) -> Path:
    """What a customer holds: the rows without the label."""
    with open(source, newline="", encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))[:rows]
    with open(destination, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(
            handle, [c for c in records[0] if c != column], extrasaction="ignore"
        )
        writer.writeheader()
        writer.writerows(records)
    return destination


def classify(keys: Path, data: Path, target: str, root: Path, rows: int | None = None) -> Path:
    """train (defaults), encrypt, predict, decrypt; the decrypted CSV."""
    server, customer = root / "server", root / "customer"
    assert main(["train", "--data", str(data), "--target", target, "--out", str(server)]) == 0
    customer.mkdir()
    shutil.copy(server / "features.json", customer / "features.json")
    mine = without(data, target, customer / "mine.csv", rows)
    assert main(["encrypt", "--public-key", str(keys / "public_key.json"),
                 "--features", str(customer / "features.json"), "--input", str(mine),
                 "--out", str(customer / "query.jsonl")]) == 0  # fmt: skip
    assert main(["predict", "--model", str(server), "--input", str(customer / "query.jsonl"),
                 "--out", str(server / "result.jsonl")]) == 0  # fmt: skip
    assert main(["decrypt", "--private-key", str(keys / "private_key.json"),
                 "--query", str(customer / "query.jsonl"),
                 "--features", str(customer / "features.json"),
                 "--input", str(server / "result.jsonl"),
                 "--out", str(customer / "labels.csv")]) == 0  # fmt: skip
    return customer / "labels.csv"


def check_labels_and_probabilities(labels: Path, server: Path, classes: list[str]) -> None:
    with open(labels, newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["prediction"] + [f"proba_{c}" for c in classes]
        decrypted = list(reader)
    probabilities = np.array([[float(row[f"proba_{c}"]) for c in classes] for row in decrypted])
    predicted = [row["prediction"] for row in decrypted]
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert predicted == [classes[i] for i in np.argmax(probabilities, axis=1)]
    # Exactly what the plaintext model says of the same rows.
    spec = FeatureSpec.load(server / "features.json")
    model = LinearModel.load(server / "model.json")
    scores = model.decision_function(read_inputs(spec, labels.parent / "mine.csv"))
    np.testing.assert_allclose(probabilities, spec.output.probabilities(scores), rtol=0, atol=1e-9)
    assert predicted == spec.output.labels(scores)


def test_iris_species_through_the_commands(keys: Path, tmp_path: Path) -> None:
    labels = classify(keys, iris_csv(), "species", tmp_path)
    spec = FeatureSpec.load(tmp_path / "server" / "features.json")
    assert spec.output.task == "classification" and spec.output.function == "softmax"
    classes = ["setosa", "versicolor", "virginica"]
    assert list(spec.output.classes) == classes
    check_labels_and_probabilities(labels, tmp_path / "server", classes)
    with open(iris_csv(), newline="") as truth, open(labels, newline="") as decrypted:
        species = [row["species"] for row in csv.DictReader(truth)]
        predicted = [row["prediction"] for row in csv.DictReader(decrypted)]
    assert np.mean(np.array(species) == np.array(predicted)) > 0.9


def test_premium_laptops_through_the_commands(keys: Path, tmp_path: Path) -> None:
    data = premium_laptops(tmp_path / "segments.csv")
    labels = classify(keys, data, "Segment", tmp_path, rows=LAPTOP_ROWS)
    spec = FeatureSpec.load(tmp_path / "server" / "features.json")
    assert spec.output.function == "sigmoid" and spec.output.scores == 1
    assert LinearModel.load(tmp_path / "server" / "model.json").estimator == "LogisticRegression"
    check_labels_and_probabilities(labels, tmp_path / "server", ["premium", "standard"])
    card = (tmp_path / "server" / "card.md").read_text()
    assert "accuracy" in card and "ROC AUC" in card and "premium" in card

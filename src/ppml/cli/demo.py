"""``ppml demo``: the whole customer -> server -> customer flow on a bundled data set.

``--task price`` prices laptops (a regressor on a log target); ``--task
classify`` tells iris species with their probabilities (a softmax logistic
regression). Both run the same role steps: each is the real ``ppml`` command
of the role that owns it, in that role's own folder, so the server folder
never holds a key and the customer folder never holds the model. Only the
comparison at the end, which no real customer could make, reads both.
"""

from __future__ import annotations

import csv
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table
from rich.text import Text

from ppml.cli.console import info, stdout
from ppml.crypto import DEFAULT_KEY_BITS
from ppml.datasets import IRIS_TARGET, LAPTOPS_TARGET, iris_csv, laptops_csv
from ppml.errors import DataError
from ppml.features.outputs import Output, PredictionCell
from ppml.features.spec import FeatureSpec
from ppml.model.linear import LinearModel
from ppml.roles.customer import read_inputs

# Prices: |encrypted - plaintext| / |plaintext| must stay below this.
RELATIVE_TOLERANCE = 1e-9
# Probabilities: |encrypted - plaintext| must stay below this, and the labels must agree.
ABSOLUTE_TOLERANCE = 1e-9

Record = dict[str, str]
Prediction = tuple[PredictionCell, ...]


class DemoTask(StrEnum):
    """What the demo predicts."""

    PRICE = "price"
    CLASSIFY = "classify"


@dataclass(frozen=True, slots=True)
class Comparison:
    """The customer's sampled rows beside both predictions of each, as ``output.columns`` says."""

    records: list[Record]  # target column included, for the table only
    output: Output
    plain: list[Prediction]  # the plaintext model on the same rows
    private: list[Prediction]  # what the customer decrypted
    bits: int


@dataclass(frozen=True, slots=True)
class Scenario:
    """The task-specific parts of the demo: the data, its names, and the comparison."""

    data: Callable[[], Path]
    target: str
    training: str  # what the server trains on, for the progress line
    rows: str  # what the customer's rows are
    results: str  # what the customer decrypts
    results_file: str
    report: Callable[[Comparison], bool]  # prints the comparison; False if it fails


def _step(role: str, what: str) -> None:
    info(Text.assemble((role, "bold"), f": {what}"))


def _run(argv: list[str]) -> None:
    from ppml.cli.main import main  # the demo drives the same entry point a user types

    info(Text(f"$ ppml {' '.join(argv)}", style="bold"))
    code = main(argv)
    if code != 0:
        raise typer.Exit(code)


def _sample(source: Path, target: str, destination: Path, rows: int, seed: int) -> list[Record]:
    """Write ``rows`` rows of ``source`` without the target column; return them with it."""
    with open(source, newline="", encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))
    if rows > len(records):
        raise typer.BadParameter(f"the data set has {len(records)} rows", param_hint="--rows")
    chosen = sorted(np.random.default_rng(seed).choice(len(records), size=rows, replace=False))
    picked = [records[i] for i in chosen]
    columns = [c for c in picked[0] if c != target]  # the customer does not know the answer
    with open(destination, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(picked)
    return picked


def _round_trip(scenario: Scenario, base: Path, customer_rows: Path, bits: int) -> Path:
    """train, keygen, encrypt, predict, decrypt, each in its role's folder; the results path."""
    server_dir, customer_dir = base / "server", base / "customer"
    model_dir, keys_dir = server_dir / "model", customer_dir / "keys"
    _step("server", f"trains on {scenario.training}")
    _run(["train", "--data", str(scenario.data()), "--target", scenario.target,
          "--out", str(model_dir), "--force"])  # fmt: skip
    # The only thing the server publishes is the feature spec.
    shutil.copy(model_dir / "features.json", customer_dir / "features.json")

    _step("customer", f"makes a key pair and encrypts its {scenario.rows}")
    _run(["keygen", "--out", str(keys_dir), "--bits", str(bits), "--force"])
    _run(["encrypt", "--public-key", str(keys_dir / "public_key.json"),
          "--features", str(customer_dir / "features.json"),
          "--input", str(customer_rows),
          "--out", str(customer_dir / "query.json")])  # fmt: skip
    shutil.copy(customer_dir / "query.json", server_dir / "query.json")

    _step("server", "computes on ciphertexts it cannot read")
    _run(["predict", "--model", str(model_dir),
          "--input", str(server_dir / "query.json"),
          "--out", str(server_dir / "result.json")])  # fmt: skip
    shutil.copy(server_dir / "result.json", customer_dir / "result.json")

    _step("customer", f"decrypts its {scenario.results}")
    results = customer_dir / scenario.results_file
    _run(["decrypt", "--private-key", str(keys_dir / "private_key.json"),
          "--query", str(customer_dir / "query.json"),
          "--features", str(customer_dir / "features.json"),
          "--input", str(customer_dir / "result.json"),
          "--out", str(results)])  # fmt: skip
    return results


def _read_predictions(path: Path, output: Output) -> list[Prediction]:
    """The decrypted predictions, read by the column names ``output`` gives them."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != output.columns:
            raise DataError(f"expected the columns {', '.join(output.columns)}", path=path)
        labelled = output.task == "classification"  # then the first column is the label
        numbers = output.columns[1:] if labelled else output.columns
        return [
            ((row["prediction"],) if labelled else ())
            + tuple(float(row[column]) for column in numbers)
            for row in reader
        ]


def demo(
    task: Annotated[
        DemoTask,
        typer.Option(
            "--task",
            help="price: laptop prices (regression); "
            "classify: iris species with their probabilities (classification).",
        ),
    ] = DemoTask.PRICE,
    rows: Annotated[
        int, typer.Option("--rows", min=1, help="How many bundled laptops or flowers to send.")
    ] = 8,
    bits: Annotated[
        int, typer.Option("--bits", help="Modulus size of the customer's key (at least 2048).")
    ] = DEFAULT_KEY_BITS,
    workdir: Annotated[
        Path | None,
        typer.Option("--workdir", help="Keep the customer/ and server/ folders here."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Which rows are sampled.")] = 7,
) -> None:
    """Train, keygen, encrypt, predict, decrypt on bundled data, and compare with plaintext."""
    scenario = SCENARIOS[task]
    scratch = Path(tempfile.mkdtemp(prefix="ppml-demo-"))
    base = workdir or scratch
    try:
        customer_dir = base / "customer"
        customer_dir.mkdir(parents=True, exist_ok=True)
        (base / "server").mkdir(parents=True, exist_ok=True)
        customer_rows = customer_dir / f"{scenario.rows}.csv"
        picked = _sample(scenario.data(), scenario.target, customer_rows, rows, seed)
        results = _round_trip(scenario, base, customer_rows, bits)

        # For the comparison only: the plaintext model on the same rows.
        spec = FeatureSpec.load(base / "server" / "model" / "features.json")
        model = LinearModel.load(base / "server" / "model" / "model.json")
        plain = spec.output.predictions(model.decision_function(read_inputs(spec, customer_rows)))
        private = _read_predictions(results, spec.output)
        if not scenario.report(Comparison(picked, spec.output, plain, private, bits)):
            raise typer.Exit(1)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _report_prices(comparison: Comparison) -> bool:
    plain = np.array([float(row[0]) for row in comparison.plain])
    private = np.array([float(row[0]) for row in comparison.private])
    relative = np.abs(private - plain) / np.abs(plain)
    table = Table(
        title=f"Laptop prices computed on encrypted specs (Paillier {comparison.bits}-bit)"
    )
    table.add_column("laptop")
    table.add_column("listed", justify="right")
    table.add_column("plaintext model", justify="right")
    table.add_column("encrypted flow", justify="right")
    table.add_column("rel. diff", justify="right")
    for record, expected, obtained, difference in zip(
        comparison.records, plain, private, relative, strict=True
    ):
        cpu = record["Cpu"].replace("Intel Core ", "").rsplit(" ", 1)[0]
        laptop = f"{record['Company']} {record['TypeName']}, {cpu}, {record['Ram']}"
        table.add_row(
            laptop,
            f"{float(record[LAPTOPS_TARGET]):,.0f}",
            f"{expected:,.2f}",
            f"{obtained:,.2f}",
            f"{difference:.1e}",
        )
    stdout.print(table)
    worst = float(np.max(relative))
    info(f"largest relative difference, encrypted vs plaintext: {worst:.2e}")
    return worst < RELATIVE_TOLERANCE


def _report_species(comparison: Comparison) -> bool:
    classes = comparison.output.classes
    plain = np.array([row[1:] for row in comparison.plain], dtype=np.float64)
    private = np.array([row[1:] for row in comparison.private], dtype=np.float64)
    difference = np.abs(private - plain).max(axis=1)

    def said(prediction: Prediction, probabilities: np.ndarray) -> str:
        label = str(prediction[0])
        return f"{label} {probabilities[classes.index(label)]:.6f}"

    table = Table(
        title=f"Iris species told from encrypted measurements (Paillier {comparison.bits}-bit)",
        caption="sepal and petal: length x width in cm; each model's label and its probability",
    )
    table.add_column("sepal / petal")
    table.add_column("species")
    table.add_column("plaintext model", justify="right")
    table.add_column("encrypted flow", justify="right")
    table.add_column("abs. diff", justify="right")
    for record, expected, obtained, p_plain, p_private, worst_here in zip(
        comparison.records,
        comparison.plain,
        comparison.private,
        plain,
        private,
        difference,
        strict=True,
    ):
        table.add_row(
            f"{record['sepalLength']}x{record['sepalWidth']} / "
            f"{record['petalLength']}x{record['petalWidth']}",
            record[IRIS_TARGET],
            said(expected, p_plain),
            said(obtained, p_private),
            f"{worst_here:.1e}",
        )
    stdout.print(table)
    worst = float(np.max(difference))
    info(f"largest absolute probability difference, encrypted vs plaintext: {worst:.2e}")
    disagreements = sum(
        e[0] != o[0] for e, o in zip(comparison.plain, comparison.private, strict=True)
    )
    if disagreements:
        info(f"{disagreements} label(s) differ between the encrypted flow and the plaintext model")
    return disagreements == 0 and worst < ABSOLUTE_TOLERANCE


SCENARIOS = {
    DemoTask.PRICE: Scenario(
        data=laptops_csv,
        target=LAPTOPS_TARGET,
        training="the bundled laptop prices",
        rows="laptops",
        results="prices",
        results_file="prices.csv",
        report=_report_prices,
    ),
    DemoTask.CLASSIFY: Scenario(
        data=iris_csv,
        target=IRIS_TARGET,
        training="the bundled iris flowers",
        rows="flowers",
        results="species and their probabilities",
        results_file="species.csv",
        report=_report_species,
    ),
}

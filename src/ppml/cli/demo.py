"""``ppml demo``: the whole customer -> server -> customer flow on bundled laptops.

Each step runs the real ``ppml`` command of the role that owns it, in that
role's own folder: the server folder never holds a key, the customer folder
never holds the model.
"""

from __future__ import annotations

import csv
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from ppml.cli.console import info, stdout
from ppml.crypto import DEFAULT_KEY_BITS
from ppml.datasets import LAPTOPS_TARGET, laptops_csv
from ppml.features.spec import FeatureSpec
from ppml.model.linear import LinearModel
from ppml.roles.customer import read_inputs

RELATIVE_TOLERANCE = 1e-9


def _run(argv: list[str]) -> None:
    from ppml.cli.main import main  # the demo drives the same entry point a user types

    info(f"[bold]$ ppml {' '.join(argv)}[/bold]")
    code = main(argv)
    if code != 0:
        raise typer.Exit(code)


def _sample_laptops(source: Path, destination: Path, rows: int, seed: int) -> list[dict[str, str]]:
    with open(source, newline="", encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))
    chosen = sorted(np.random.default_rng(seed).choice(len(records), size=rows, replace=False))
    picked = [records[i] for i in chosen]
    columns = [c for c in picked[0] if c != LAPTOPS_TARGET]  # the customer has no price
    with open(destination, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(picked)
    return picked


def demo(
    rows: Annotated[int, typer.Option("--rows", help="How many bundled laptops to price.")] = 8,
    bits: Annotated[
        int, typer.Option("--bits", help="Modulus size of the customer's key (at least 2048).")
    ] = DEFAULT_KEY_BITS,
    workdir: Annotated[
        Path | None,
        typer.Option("--workdir", help="Keep the customer/ and server/ folders here."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Which laptops are sampled.")] = 7,
) -> None:
    """Price laptops privately: train, keygen, encrypt, predict, decrypt, and compare."""
    scratch = Path(tempfile.mkdtemp(prefix="ppml-demo-"))
    base = workdir or scratch
    try:
        server_dir, customer_dir = base / "server", base / "customer"
        server_dir.mkdir(parents=True, exist_ok=True)
        customer_dir.mkdir(parents=True, exist_ok=True)
        info("[bold]server[/bold]: trains on the bundled laptop prices")
        _run(["train", "--data", str(laptops_csv()), "--target", LAPTOPS_TARGET,
              "--out", str(server_dir / "model")])  # fmt: skip
        # The only thing the server publishes is the feature spec.
        shutil.copy(server_dir / "model" / "features.json", customer_dir / "features.json")

        info("[bold]customer[/bold]: makes a key pair and encrypts its laptops")
        picked = _sample_laptops(laptops_csv(), customer_dir / "laptops.csv", rows, seed)
        _run(["keygen", "--out", str(customer_dir / "keys"), "--bits", str(bits), "--force"])
        _run(["encrypt", "--public-key", str(customer_dir / "keys" / "public_key.json"),
              "--features", str(customer_dir / "features.json"),
              "--input", str(customer_dir / "laptops.csv"),
              "--out", str(customer_dir / "query.json")])  # fmt: skip
        shutil.copy(customer_dir / "query.json", server_dir / "query.json")

        info("[bold]server[/bold]: computes on ciphertexts it cannot read")
        _run(["predict", "--model", str(server_dir / "model"),
              "--input", str(server_dir / "query.json"),
              "--out", str(server_dir / "result.json")])  # fmt: skip
        shutil.copy(server_dir / "result.json", customer_dir / "result.json")

        info("[bold]customer[/bold]: decrypts its prices")
        _run(["decrypt", "--private-key", str(customer_dir / "keys" / "private_key.json"),
              "--query", str(customer_dir / "query.json"),
              "--features", str(customer_dir / "features.json"),
              "--input", str(customer_dir / "result.json"),
              "--out", str(customer_dir / "prices.csv")])  # fmt: skip

        # For the comparison only: the plaintext model on the same laptops.
        spec = FeatureSpec.load(server_dir / "model" / "features.json")
        model = LinearModel.load(server_dir / "model" / "model.json")
        plain = spec.target.inverse(model.predict(read_inputs(spec, customer_dir / "laptops.csv")))
        private = np.loadtxt(customer_dir / "prices.csv", skiprows=1, ndmin=1)
        _print_table(picked, plain, private, bits)
        worst = float(np.max(np.abs(private - plain) / np.abs(plain)))
        info(f"largest relative difference, encrypted vs plaintext: {worst:.2e}")
        if worst >= RELATIVE_TOLERANCE:
            raise typer.Exit(1)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _print_table(
    picked: list[dict[str, str]], plain: np.ndarray, private: np.ndarray, bits: int
) -> None:
    table = Table(title=f"Laptop prices computed on encrypted specs (Paillier {bits}-bit)")
    table.add_column("laptop")
    table.add_column("listed", justify="right")
    table.add_column("plaintext model", justify="right")
    table.add_column("encrypted flow", justify="right")
    table.add_column("rel. diff", justify="right")
    for record, expected, obtained in zip(picked, plain, private, strict=True):
        cpu = record["Cpu"].replace("Intel Core ", "").rsplit(" ", 1)[0]
        laptop = f"{record['Company']} {record['TypeName']}, {cpu}, {record['Ram']}"
        table.add_row(
            laptop,
            f"{float(record[LAPTOPS_TARGET]):,.0f}",
            f"{expected:,.2f}",
            f"{obtained:,.2f}",
            f"{abs(obtained - expected) / abs(expected):.1e}",
        )
    stdout.print(table)

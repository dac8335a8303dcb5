"""The role commands: the server trains and predicts, the customer encrypts and decrypts."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ppml.cli.console import info, stderr, stdout
from ppml.cli.passphrase import existing_passphrase
from ppml.features.spec import DEFAULT_FRAC_BITS, DEFAULT_MIN_CATEGORY_COUNT, FeatureSpec
from ppml.model.linear import LinearModel
from ppml.model.training import train as train_model
from ppml.roles import customer, server
from ppml.wire.keyfile import load_private_key, load_public_key
from ppml.wire.messages import EncryptedQuery, EncryptedResult

FEATURES_FILENAME = "features.json"
MODEL_FILENAME = "model.json"


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr; yields the function that advances it."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda steps: bar.advance(task, steps)


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        name, separator, text = pair.partition("=")
        if not separator or not name.isidentifier():
            raise typer.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint="--param")
        try:
            params[name] = json.loads(text)
        except json.JSONDecodeError:
            params[name] = text
    return params


def train(
    data: Annotated[Path, typer.Option("--data", help="Training CSV with a header row.")],
    target: Annotated[str, typer.Option("--target", help="The column to predict.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for features.json and model.json.")],
    estimator: Annotated[
        str,
        typer.Option(
            "--estimator",
            help="A sklearn.linear_model regressor: LinearRegression, Ridge, Lasso, ...",
        ),
    ] = "LinearRegression",
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param", help="Estimator parameter NAME=VALUE (repeatable), e.g. alpha=1.0."
        ),
    ] = None,
    holdout: Annotated[
        float, typer.Option("--holdout", help="Fraction of rows held out for scoring (0: none).")
    ] = 0.2,
    recipe: Annotated[
        str, typer.Option("--recipe", help="Feature recipe: auto, laptops or generic.")
    ] = "auto",
    target_transform: Annotated[
        str | None,
        typer.Option("--target-transform", help="none or log (default: log for laptops)."),
    ] = None,
    unseen: Annotated[
        str, typer.Option("--unseen", help="Unknown categories: ignore (all zeros) or error.")
    ] = "ignore",
    frac_bits: Annotated[
        int, typer.Option("--frac-bits", help="Fractional bits of every encrypted feature.")
    ] = DEFAULT_FRAC_BITS,
    min_category_count: Annotated[
        int,
        typer.Option("--min-category-count", help="Rarer categories are treated as unseen."),
    ] = DEFAULT_MIN_CATEGORY_COUNT,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split and the folds.")] = 0,
) -> None:
    """Server: fit a linear model; write the public spec and the private weights.

    OUT/features.json goes to customers; OUT/model.json (mode 0600) stays on the server.
    """
    if target_transform not in (None, "none", "log"):
        raise typer.BadParameter("must be none or log", param_hint="--target-transform")
    if unseen not in ("ignore", "error"):
        raise typer.BadParameter("must be ignore or error", param_hint="--unseen")
    with stderr.status("training..."):
        result = train_model(
            data,
            target,
            recipe=recipe,
            estimator=estimator,
            params=_parse_params(param or []),
            holdout=holdout,
            seed=seed,
            target_transform=target_transform,  # type: ignore[arg-type]
            unseen=unseen,  # type: ignore[arg-type]
            frac_bits=frac_bits,
            min_category_count=min_category_count,
        )
    out.mkdir(parents=True, exist_ok=True)
    result.spec.save(out / FEATURES_FILENAME)
    result.model.save(out / MODEL_FILENAME)

    scale = "log " + target if result.spec.target.transform == "log" else target
    table = Table(title=f"{result.model.estimator} on {len(result.spec.feature_names)} features")
    table.add_column("evaluation")
    table.add_column("rows", justify="right")
    table.add_column(f"R² ({scale})", justify="right")
    table.add_column(f"MAE ({scale})", justify="right")
    table.add_column(f"MAE ({target})", justify="right")
    cv = result.cross_validation
    table.add_row(
        "5-fold CV",
        str(result.training_rows),
        f"{cv.r2:.4f}",
        f"{cv.mae:.4f}",
        f"{cv.mae_target_units:,.2f}",
    )
    if result.holdout is not None:
        ho = result.holdout
        table.add_row(
            "held out",
            str(result.holdout_rows),
            f"{ho.r2:.4f}",
            f"{ho.mae:.4f}",
            f"{ho.mae_target_units:,.2f}",
        )
    stdout.print(table)
    largest = max(abs(w) for w in result.model.weights)
    info(f"largest |weight| {largest:.4g}; spec {result.spec.spec_id}")
    info(f"public spec   {out / FEATURES_FILENAME}  (give this to customers)")
    info(f"private model {out / MODEL_FILENAME}  (keep this: mode 0600)")


def encrypt(
    public_key: Annotated[
        Path, typer.Option("--public-key", help="The customer's public_key.json.")
    ],
    features: Annotated[Path, typer.Option("--features", help="The server's features.json.")],
    input_csv: Annotated[Path, typer.Option("--input", help="CSV of raw rows to price.")],
    out: Annotated[Path, typer.Option("--out", help="The query file to write.")],
) -> None:
    """Customer: turn raw rows into model inputs and encrypt them under its public key."""
    key = load_public_key(public_key)
    spec = FeatureSpec.load(features)
    inputs = customer.read_inputs(spec, input_csv)
    with progress_bar("encrypting", len(inputs)) as advance:
        query = customer.encrypt_inputs(key, spec, inputs, progress=advance)
    query.save(out)
    info(f"encrypted {len(inputs)} rows x {query.feature_count} features -> {out}")


def predict(
    model: Annotated[
        Path, typer.Option("--model", help="Directory with features.json and model.json.")
    ],
    input_query: Annotated[Path, typer.Option("--input", help="The customer's query file.")],
    out: Annotated[Path, typer.Option("--out", help="The result file to write.")],
) -> None:
    """Server: compute the model on an encrypted query; nothing is decrypted."""
    spec = FeatureSpec.load(model / FEATURES_FILENAME)
    weights = LinearModel.load(model / MODEL_FILENAME)
    query = EncryptedQuery.load(input_query)
    with progress_bar("predicting", len(query.rows)) as advance:
        result = server.predict_encrypted(spec, weights, query, progress=advance)
    result.save(out)
    info(f"computed {len(result.predictions)} encrypted predictions -> {out}")


def decrypt(
    private_key: Annotated[
        Path, typer.Option("--private-key", help="The customer's private_key.json.")
    ],
    input_result: Annotated[Path, typer.Option("--input", help="The server's result file.")],
    out: Annotated[Path, typer.Option("--out", help="CSV of predictions to write.")],
) -> None:
    """Customer: decrypt the predictions into a CSV with a `prediction` column."""
    key = load_private_key(private_key, passphrase=existing_passphrase)
    result = EncryptedResult.load(input_result, key.public_key)
    with progress_bar("decrypting", len(result.predictions)) as advance:
        predictions = customer.decrypt_predictions(key, result, progress=advance)
    customer.write_predictions(out, predictions)
    info(f"decrypted {len(predictions)} predictions -> {out}")

"""The role commands: the server trains and predicts, the customer encrypts and decrypts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ppml.cli.console import info, stderr, stdout
from ppml.cli.passphrase import existing_passphrase
from ppml.crypto import PrivateKey, PublicKey
from ppml.errors import MalformedJsonError
from ppml.features.spec import (
    DEFAULT_FRAC_BITS,
    DEFAULT_MIN_CATEGORY_COUNT,
    MAX_PRECISION_DIGITS,
    FeatureSpec,
)
from ppml.model.linear import LinearModel
from ppml.roles import customer, server
from ppml.wire.document import load_json
from ppml.wire.keyfile import load_private_key, load_public_key

FEATURES_FILENAME = "features.json"
MODEL_FILENAME = "model.json"


class _RichProgress:
    """A progress bar on stderr that learns its total when the job knows it."""

    def __init__(self, bar: Progress, description: str) -> None:
        self._bar = bar
        self._task = bar.add_task(description, total=None)

    def start(self, total: int) -> None:
        self._bar.update(self._task, total=total)

    def advance(self, rows: int) -> None:
        self._bar.advance(self._task, rows)


@contextmanager
def progress_bar(description: str) -> Iterator[_RichProgress]:
    """A progress bar on stderr, removed when the step is done."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
        # Off a terminal the bar would only leave a blank line before any error message.
        disable=not stderr.is_terminal,
    ) as bar:
        yield _RichProgress(bar, description)


JobsOption = Annotated[
    int | None,
    typer.Option("--jobs", "-j", min=1, help="Worker processes (default: every core)."),
]


MAX_PARAM_BYTES = 4096


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        name, separator, text = pair.partition("=")
        if not separator or not name.isidentifier():
            raise typer.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint="--param")
        try:
            params[name] = load_json(text.encode("utf-8"), max_bytes=MAX_PARAM_BYTES)
        except MalformedJsonError:
            params[name] = text  # not JSON: the text itself (e.g. solver=lbfgs)
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
    precision_digits: Annotated[
        int | None,
        typer.Option(
            "--precision-digits",
            min=1,
            max=MAX_PRECISION_DIGITS,
            help="Precision cap: answers carry random noise of up to the largest possible "
            "prediction / 10^DIGITS (default: off, exact answers). See docs/threat-model.md.",
        ),
    ] = None,
) -> None:
    """Server: fit a linear model; write the public spec and the private weights.

    OUT/features.json goes to customers; OUT/model.json (mode 0600) stays on the server.
    """
    if target_transform not in (None, "none", "log"):
        raise typer.BadParameter("must be none or log", param_hint="--target-transform")
    if unseen not in ("ignore", "error"):
        raise typer.BadParameter("must be ignore or error", param_hint="--unseen")
    from ppml.model.training import train as train_model  # scikit-learn loads slowly: only here

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
            precision_digits=precision_digits,
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
    spec = result.spec
    if spec.precision_digits is not None:
        bound = spec.prediction_bound(result.model.weights, result.model.intercept)
        noise = spec.prediction_fixed_point.decode(spec.noise_amplitude(bound))
        info(f"precision cap: every answer carries uniform noise of up to ±{noise:.3g} ({scale})")
    info(f"public spec   {out / FEATURES_FILENAME}  (give this to customers)")
    info(f"private model {out / MODEL_FILENAME}  (keep this: mode 0600)")


def encrypt(
    features: Annotated[Path, typer.Option("--features", help="The server's features.json.")],
    input_csv: Annotated[Path, typer.Option("--input", help="CSV of raw rows to price.")],
    out: Annotated[Path, typer.Option("--out", help="The query file to write.")],
    public_key: Annotated[
        Path | None, typer.Option("--public-key", help="The customer's public_key.json.")
    ] = None,
    private_key: Annotated[
        Path | None,
        typer.Option(
            "--private-key",
            help="Encrypt with the private key instead: same result, several times faster.",
        ),
    ] = None,
    randomness: Annotated[
        str | None,
        typer.Option(
            "--randomness",
            help="djn (the key's fast DJN base) or standard (fresh r^n); default: the key's mode.",
        ),
    ] = None,
    pack: Annotated[
        bool, typer.Option("--pack/--no-pack", help="Pack several rows into each ciphertext.")
    ] = True,
    jobs: JobsOption = None,
) -> None:
    """Customer: turn raw rows into model inputs and encrypt them under its key."""
    if (public_key is None) == (private_key is None):
        raise typer.BadParameter("give exactly one of --public-key and --private-key")
    if randomness not in (None, "djn", "standard"):
        raise typer.BadParameter("must be djn or standard", param_hint="--randomness")
    key: PublicKey | PrivateKey
    if private_key is not None:
        key = load_private_key(private_key, passphrase=existing_passphrase)
    else:
        assert public_key is not None
        key = load_public_key(public_key)
    mode = key.public_key.randomness if isinstance(key, PrivateKey) else key.randomness
    if randomness == "djn" and mode != "djn":
        raise typer.BadParameter(
            "this key has no DJN base (made with --randomness standard)", param_hint="--randomness"
        )
    spec = FeatureSpec.load(features)
    with progress_bar("encrypting") as progress:
        header = customer.encrypt_file(
            key,
            spec,
            input_csv,
            out,
            pack=pack,
            jobs=jobs,
            standard_randomness=randomness == "standard",
            progress=progress,
        )
    info(
        f"encrypted {header.rows} rows x {header.features} features into {header.blocks} "
        f"blocks of up to {header.layout.slots} rows -> {out}"
    )


def predict(
    model: Annotated[
        Path, typer.Option("--model", help="Directory with features.json and model.json.")
    ],
    input_query: Annotated[Path, typer.Option("--input", help="The customer's query file.")],
    out: Annotated[Path, typer.Option("--out", help="The result file to write.")],
    jobs: JobsOption = None,
) -> None:
    """Server: compute the model on an encrypted query; nothing is decrypted."""
    spec = FeatureSpec.load(model / FEATURES_FILENAME)
    weights = LinearModel.load(model / MODEL_FILENAME)
    with progress_bar("predicting") as progress:
        result = server.predict_file(spec, weights, input_query, out, jobs=jobs, progress=progress)
    info(f"computed {result.rows} encrypted predictions -> {out}")


def decrypt(
    private_key: Annotated[
        Path, typer.Option("--private-key", help="The customer's private_key.json.")
    ],
    query: Annotated[
        Path,
        typer.Option("--query", help="The query file this result answers (the customer's copy)."),
    ],
    features: Annotated[
        Path, typer.Option("--features", help="The features.json the query was encrypted with.")
    ],
    input_result: Annotated[Path, typer.Option("--input", help="The server's result file.")],
    out: Annotated[Path, typer.Option("--out", help="CSV of predictions to write.")],
    jobs: JobsOption = None,
) -> None:
    """Customer: decrypt the predictions into a CSV with a `prediction` column.

    The scale, bound, layout and target come from the customer's own query and
    spec; a result that answers another query, or disagrees with them, is refused.
    """
    key = load_private_key(private_key, passphrase=existing_passphrase)
    spec = FeatureSpec.load(features)
    with progress_bar("decrypting") as progress:
        count = customer.decrypt_file(
            key, input_result, out, query=query, spec=spec, jobs=jobs, progress=progress
        )
    info(f"decrypted {count} predictions -> {out}")

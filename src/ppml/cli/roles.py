"""The role commands: the server trains and predicts, the customer encrypts and decrypts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ppml.cli.console import add_plain_row, info, plain_table, stderr, stdout
from ppml.cli.options import (
    AllowRemotePrivateKeyOption,
    DaskOption,
    DelimiterOption,
    EncodingOption,
    JobsOption,
    StrictOption,
    csv_options,
    executor_for,
    output_name,
    progress_bar,
    report_encoding,
)
from ppml.cli.passphrase import existing_passphrase
from ppml.crypto import PrivateKey, PublicKey
from ppml.errors import MalformedJsonError, SettingError
from ppml.features.columns import DEFAULT_MISSING_VALUES, FILL_STRATEGIES, FillStrategy
from ppml.features.outputs import MAX_INTEGER_CLASSES
from ppml.features.recipes import GenericRecipe
from ppml.features.schema import SchemaChoices
from ppml.features.spec import (
    DEFAULT_FRAC_BITS,
    DEFAULT_MIN_CATEGORY_COUNT,
    MAX_PRECISION_DIGITS,
    EncodingReport,
    FeatureSpec,
)
from ppml.features.table import CsvTable
from ppml.fileio import write_atomic
from ppml.model.linear import LinearModel
from ppml.roles import customer, server
from ppml.wire.document import dump_document, load_json
from ppml.wire.keyfile import load_private_key, load_public_key

if TYPE_CHECKING:
    from ppml.model.training import TrainingResult

FEATURES_FILENAME = "features.json"
MODEL_FILENAME = "model.json"


MAX_PARAM_BYTES = 4096
CARD_JSON_FILENAME = "card.json"
CARD_MARKDOWN_FILENAME = "card.md"


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    """``NAME=VALUE`` pairs; values read as Python writes them (True, False, None, 1e-3,
    'text'), or as JSON (lists, objects); any other value is the text itself (solver=lbfgs)."""
    params: dict[str, Any] = {}
    for pair in pairs:
        name, separator, text = pair.partition("=")
        if not separator or not name.isidentifier():
            raise typer.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint="--param")
        if len(text) > MAX_PARAM_BYTES:
            raise typer.BadParameter(f"the value of {name} is too long", param_hint="--param")
        params[name] = _param_value(text.strip())
    return params


_PYTHON_CONSTANTS: dict[str, Any] = {"True": True, "False": False, "None": None}


def _param_value(text: str) -> Any:
    """One ``--param`` value: a Python constant, a number, a quoted string, JSON, or the text.

    Nothing is evaluated: each form is recognised by the parser made for it.
    """
    if text in _PYTHON_CONSTANTS:
        return _PYTHON_CONSTANTS[text]
    for number in (int, float):
        try:
            return number(text)
        except ValueError:
            pass
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    try:
        return load_json(text.encode("utf-8"), max_bytes=MAX_PARAM_BYTES)
    except MalformedJsonError:
        return text


def _parse_fill(entries: list[str]) -> dict[str, FillStrategy]:
    """``--impute`` values: ``STRATEGY`` for every column or ``COLUMN=STRATEGY``."""
    fills: dict[str, FillStrategy] = {}
    for entry in entries:
        column, separator, strategy = entry.rpartition("=")
        name = column if separator else "*"
        strategy = strategy.strip().lower().replace("-", "_")
        if strategy not in FILL_STRATEGIES:
            raise typer.BadParameter(
                f"{strategy!r} is not one of {', '.join(FILL_STRATEGIES)}", param_hint="--impute"
            )
        fills[name] = strategy
    return fills


def train(
    data: Annotated[Path, typer.Option("--data", help="Training CSV with a header row.")],
    target: Annotated[
        list[str],
        typer.Option(
            "--target",
            metavar="COLUMN",
            help="The column to predict (repeat it for a regressor of several targets).",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Directory for features.json and model.json.")],
    task: Annotated[
        str,
        typer.Option(
            "--task",
            help="regression, classification, or auto: classes for a text or yes/no target, "
            f"or one of at most {MAX_INTEGER_CLASSES} integer values.",
        ),
    ] = "auto",
    estimator: Annotated[
        str | None,
        typer.Option(
            "--estimator",
            help="A linear scikit-learn estimator: LinearRegression (default for regression), "
            "LogisticRegression (default for classification), Ridge, Lasso, PoissonRegressor, "
            "LinearSVC, SGDClassifier, ... (an unsupported one lists them all).",
        ),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            help="Estimator parameter NAME=VALUE (repeatable), a Python literal: alpha=0.5, "
            "fit_intercept=False, solver=lbfgs.",
        ),
    ] = None,
    holdout: Annotated[
        float, typer.Option("--holdout", help="Fraction of rows held out for scoring (0: none).")
    ] = 0.2,
    folds: Annotated[int, typer.Option("--folds", min=2, help="Cross-validation folds.")] = 5,
    recipe: Annotated[
        str, typer.Option("--recipe", help="Feature recipe: auto, laptops or generic.")
    ] = "auto",
    target_transform: Annotated[
        str | None,
        typer.Option("--target-transform", help="none or log (default: log for laptops)."),
    ] = None,
    categorical: Annotated[
        list[str] | None,
        typer.Option("--categorical", help="Treat this column as categories (repeatable)."),
    ] = None,
    numeric: Annotated[
        list[str] | None, typer.Option("--numeric", help="Treat this column as numbers.")
    ] = None,
    date: Annotated[list[str] | None, typer.Option("--date", help="Read this column as dates.")] = (
        None
    ),
    drop: Annotated[list[str] | None, typer.Option("--drop", help="Leave this column out.")] = None,
    impute: Annotated[
        list[str] | None,
        typer.Option(
            "--impute",
            help="Fill for missing values: median, mean, most_frequent or error; for all "
            "columns or COLUMN=FILL (default: median for numbers, most frequent for categories).",
        ),
    ] = None,
    missing_indicator: Annotated[
        list[str] | None,
        typer.Option("--missing-indicator", help="Add a COLUMN:missing 0/1 feature (repeatable)."),
    ] = None,
    missing_indicators: Annotated[
        bool,
        typer.Option(
            "--missing-indicators", help="Add one to every column with missing training values."
        ),
    ] = False,
    na_values: Annotated[
        str | None,
        typer.Option(
            "--na-values",
            help="Comma-separated cell texts that mean missing "
            f"(default: empty and {', '.join(v for v in DEFAULT_MISSING_VALUES if v)}).",
        ),
    ] = None,
    delimiter: DelimiterOption = None,
    encoding: EncodingOption = None,
    frac_bits: Annotated[
        int, typer.Option("--frac-bits", help="Fractional bits of every encrypted feature.")
    ] = DEFAULT_FRAC_BITS,
    min_category_count: Annotated[
        int,
        typer.Option(
            "--min-category-count",
            min=1,
            help="Rarer categories share one 'other' feature, with unseen ones.",
        ),
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
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite a model already in OUT.")
    ] = False,
) -> None:
    """Server: fit a linear model; write the public spec, the private weights and a model card.

    The model is scored by cross-validation and on held-out rows, then refitted
    on every row. OUT/features.json and OUT/card.md go to customers;
    OUT/model.json (mode 0600) stays on the server.
    """
    if target_transform not in (None, "none", "log"):
        raise typer.BadParameter("must be none or log", param_hint="--target-transform")
    if task not in ("auto", "regression", "classification"):
        raise typer.BadParameter("must be auto, regression or classification", param_hint="--task")
    existing = [name for name in (FEATURES_FILENAME, MODEL_FILENAME) if (out / name).exists()]
    if existing and not force:
        raise SettingError(
            f"{out} already holds {' and '.join(existing)}; pass --force to overwrite"
        )
    from ppml.model.training import train as train_model  # scikit-learn loads slowly: only here

    overrides = (categorical, numeric, date, drop, impute, missing_indicator, na_values)
    schema = None
    if any(overrides) or missing_indicators:
        schema = SchemaChoices(
            numeric=frozenset(numeric or ()),
            categorical=frozenset(categorical or ()),
            dates=frozenset(date or ()),
            drop=frozenset(drop or ()),
            fill=_parse_fill(impute or []),
            indicators=frozenset(missing_indicator or ()),
            all_indicators=missing_indicators,
            missing_values=DEFAULT_MISSING_VALUES
            if na_values is None
            else ("", *(v.strip() for v in na_values.split(","))),
        )
    with stderr.status("training..."):
        result = train_model(
            data,
            target,
            task=task,  # type: ignore[arg-type]
            recipe=recipe,
            estimator=estimator,
            params=_parse_params(param or []),
            holdout=holdout,
            folds=folds,
            seed=seed,
            target_transform=target_transform,  # type: ignore[arg-type]
            frac_bits=frac_bits,
            min_category_count=min_category_count,
            precision_digits=precision_digits,
            csv_options=csv_options(delimiter, encoding),
            schema=schema,
        )
    out.mkdir(parents=True, exist_ok=True)
    result.spec.save(out / FEATURES_FILENAME)
    result.model.save(out / MODEL_FILENAME)
    write_atomic(out / CARD_JSON_FILENAME, dump_document(result.card()))
    write_atomic(out / CARD_MARKDOWN_FILENAME, result.card_markdown().encode("utf-8"))
    _print_training(result, out)


def _figure(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _print_training(result: TrainingResult, out: Path) -> None:
    spec = result.spec
    if isinstance(spec.recipe, GenericRecipe):
        _print_schema(result)
    else:
        info(f"{spec.recipe.name} recipe: reads {', '.join(spec.recipe.input_columns)}")
    _print_scores(result)
    info(f"final model refitted on all {result.training_rows} rows; spec {spec.spec_id}")
    for warning in result.warnings:
        info(f"warning: {warning}")
    if spec.precision_digits is not None:
        bound = spec.prediction_bound(result.model.weights, result.model.intercepts)
        noise = spec.prediction_fixed_point.decode(spec.noise_amplitude(bound))
        info(
            f"precision cap: every score carries uniform noise of up to ±{noise:.3g} "
            "(on the model's scale, before the output function)"
        )
    info(f"public spec   {out / FEATURES_FILENAME}  (give this to customers)")
    info(f"model card    {out / CARD_MARKDOWN_FILENAME}  (public: data, schema, scores)")
    info(f"private model {out / MODEL_FILENAME}  (keep this: mode 0600)")


def _print_schema(result: TrainingResult) -> None:
    headings = ("column", "type", "missing", "unusual", "categories", "fill", "note")
    schema = plain_table(
        "columns",
        ((h, "right" if h in ("missing", "unusual") else "left") for h in headings),
    )
    for report in result.schema:
        add_plain_row(schema, report.cells())
    stdout.print(schema)


def _print_scores(result: TrainingResult) -> None:
    from ppml.model.training import ClassificationMetrics, score_columns

    spec = result.spec
    info(f"predicts {spec.output.describe()}")
    headings, rows = score_columns(result.scores())
    table = plain_table(
        f"{result.model.estimator} on {len(spec.feature_names)} features",
        ((h, "left" if h == "evaluation" else "right") for h in headings),
    )
    for cells in rows:
        add_plain_row(table, cells)
    stdout.print(table)
    metrics = result.cross_validation
    if isinstance(metrics, ClassificationMetrics):
        confusion = plain_table(
            f"confusion matrix ({result.folds}-fold CV; rows: true class)",
            [("class", "left"), ("F1", "right")]
            + [(f"→ {name}", "right") for name in metrics.classes],
        )
        for name, f1, counts in zip(metrics.classes, metrics.f1, metrics.confusion, strict=True):
            add_plain_row(confusion, [name, f"{f1:.4f}", *(str(n) for n in counts)])
        stdout.print(confusion)


def encrypt(
    features: Annotated[Path, typer.Option("--features", help="The server's features.json.")],
    input_csv: Annotated[
        Path, typer.Option("--input", help="CSV of raw rows to price ('-': standard input).")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="The query file to write ('-': standard output).")
    ],
    public_key: Annotated[
        Path | None, typer.Option("--public-key", help="The customer's public_key.json.")
    ] = None,
    private_key: Annotated[
        Path | None,
        typer.Option(
            "--private-key",
            help="Encrypt with the private key instead: ciphertexts of the same distribution, "
            "computed faster (modulo p² and q²).",
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
    binary: Annotated[
        bool,
        typer.Option(
            "--binary",
            help="Write the binary container (ciphertexts as raw bytes, a quarter smaller) "
            "instead of JSON Lines; the server answers in the same container.",
        ),
    ] = False,
    strict: StrictOption = False,
    delimiter: DelimiterOption = None,
    encoding: EncodingOption = None,
    jobs: JobsOption = None,
    dask: DaskOption = None,
    allow_remote_private_key: AllowRemotePrivateKeyOption = False,
) -> None:
    """Customer: turn raw rows into model inputs and encrypt them under its key.

    Missing cells are filled in as the spec says; unseen categories and
    unusual values are counted and reported here, never sent anywhere.
    """
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
    table = spec.open_table(input_csv, csv_options(delimiter, encoding))
    report = EncodingReport()
    with (
        executor_for(dask, allow_private_key=allow_remote_private_key) as executor,
        progress_bar("encrypting") as progress,
    ):
        header = customer.encrypt_file(
            key,
            spec,
            table,
            out,
            pack=pack,
            jobs=jobs,
            standard_randomness=randomness == "standard",
            progress=progress,
            report=report,
            strict=strict,
            binary=binary,
            executor=executor,
        )
    info(f"read {table.path} as {table.description}")
    report_encoding(report)
    info(
        f"encrypted {header.rows} rows x {header.features} features into {header.blocks} "
        f"blocks of up to {header.layout.slots} rows -> {output_name(out)}"
    )


def predict(
    model: Annotated[
        Path, typer.Option("--model", help="Directory with features.json and model.json.")
    ],
    input_query: Annotated[Path, typer.Option("--input", help="The customer's query file.")],
    out: Annotated[Path, typer.Option("--out", help="The result file to write.")],
    jobs: JobsOption = None,
    dask: DaskOption = None,
) -> None:
    """Server: compute the model on an encrypted query; nothing is decrypted.

    With --dask, the encoded weights go to the cluster's workers: use a cluster
    the server controls."""
    spec = FeatureSpec.load(model / FEATURES_FILENAME)
    weights = LinearModel.load(model / MODEL_FILENAME)
    with executor_for(dask) as executor, progress_bar("predicting") as progress:
        result = server.predict_file(
            spec, weights, input_query, out, jobs=jobs, progress=progress, executor=executor
        )
    info(f"computed {result.rows} rows x {result.scores} encrypted score(s) -> {out}")


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
    input_result: Annotated[
        Path, typer.Option("--input", help="The server's result file ('-': standard input).")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="CSV of predictions to write ('-': standard output).")
    ],
    id_column: Annotated[
        list[str] | None,
        typer.Option(
            "--id-column",
            help="Copy this column of --data onto each prediction (repeatable); it was never sent.",
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="The CSV that was encrypted (for --id-column)."),
    ] = None,
    delimiter: DelimiterOption = None,
    encoding: EncodingOption = None,
    jobs: JobsOption = None,
    dask: DaskOption = None,
    allow_remote_private_key: AllowRemotePrivateKeyOption = False,
) -> None:
    """Customer: decrypt the predictions into a CSV: `prediction`, and for a classifier one
    `proba_<class>` (or `score_<class>`) column per class.

    The scale, bound, layout and output come from the customer's own query and
    spec; a result that answers another query, or disagrees with them, is refused.
    """
    if bool(id_column) != (data is not None):
        raise typer.BadParameter("--id-column and --data go together")
    key = load_private_key(private_key, passphrase=existing_passphrase)
    spec = FeatureSpec.load(features)
    id_columns = tuple(id_column or ())
    ids = None
    if data is not None:
        table = CsvTable(data, id_columns, csv_options(delimiter, encoding))
        ids = customer.read_ids(table, id_columns)
    if dask is not None:
        info("--dask: the private key's factors (its CRT tables) go to the cluster's workers")
    with (
        executor_for(dask, allow_private_key=allow_remote_private_key) as executor,
        progress_bar("decrypting") as progress,
    ):
        count = customer.decrypt_file(
            key,
            input_result,
            out,
            query=query,
            spec=spec,
            jobs=jobs,
            progress=progress,
            ids=ids,
            id_columns=id_columns,
            executor=executor,
        )
    info(f"decrypted {count} predictions -> {output_name(out)}")

"""``ppml price``: one row, typed on the command line or answered field by field, priced privately.

The row never becomes a file the user has to write: it is held as CSV text in
memory, read by the same table code as any CSV file, and named in messages as
"--set values" or "your answers". It then goes through the whole encrypted
flow: encrypted under the customer's key, the model computed on the
ciphertexts (by the server role in this process, or by a ppml service), the
answer decrypted here.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from ppml.cli.console import info, stderr
from ppml.cli.options import StrictOption
from ppml.cli.passphrase import existing_passphrase
from ppml.cli.roles import FEATURES_FILENAME, MODEL_FILENAME
from ppml.cli.service import TOKEN_ENV
from ppml.crypto import SERVER_KEY_POLICY, PrivateKey
from ppml.errors import (
    DataError,
    FileFormatError,
    InsecureKeyError,
    InvalidKeyError,
    ServiceError,
    SpecMismatchError,
)
from ppml.features.outputs import PredictionCell
from ppml.features.recipes import GenericRecipe
from ppml.features.spec import CategoricalFeature, EncodingReport, FeatureSpec, NumericFeature
from ppml.features.table import CsvOptions, CsvTable
from ppml.model.linear import LinearModel
from ppml.roles import customer, server
from ppml.wire.keyfile import PRIVATE_KEY_FILENAME, load_private_key

SET_VALUES = "--set values"
"""How messages name a row given with ``--set``."""
ANSWERS = "your answers"
"""How messages name a row answered at the prompts."""

# The row is written here, so nothing about it needs detecting: sniffing one
# short line could even mistake a value's semicolons for the delimiter.
_ROW_CSV = CsvOptions(delimiter=",", encoding="utf-8")
_SPEC_TIMEOUT_S = 60.0


def price(
    keys: Annotated[
        Path, typer.Option("--keys", help="Directory with the customer's private_key.json.")
    ],
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            help="Price here, with this directory's features.json and model.json (the server "
            "role runs in this process).",
        ),
    ] = None,
    url: Annotated[
        str | None, typer.Option("--url", help="Price through the ppml service at this URL.")
    ] = None,
    features: Annotated[
        Path | None,
        typer.Option(
            "--features",
            help="Pin this feature spec: a model or service with another one is refused before "
            "anything is sent (recommended with --url; --model uses its own by default).",
        ),
    ] = None,
    values: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="COLUMN=VALUE of the row (repeatable); a column not set is missing, filled in "
            "or refused as the spec says.",
        ),
    ] = None,
    interactive: Annotated[
        bool | None,
        typer.Option(
            "--interactive/--no-interactive",
            help="Ask each column not set, offering what the spec knows of it (default: when "
            "no --set is given and standard input is a terminal).",
        ),
    ] = None,
    strict: StrictOption = False,
    as_json: Annotated[
        bool,
        typer.Option("--json", help='Print {"prediction": ..., "spec_id": ...} instead.'),
    ] = False,
) -> None:
    """Customer: price one row through the encrypted flow, from --set values or prompts.

    The row is encrypted under the customer's key, the model is computed on
    the ciphertexts (in this process with --model, by a service with --url:
    set $PPML_SERVICE_TOKEN if it needs one), and the answer is decrypted
    here. The prediction alone goes to standard output.
    """
    if (model is None) == (url is None):
        raise typer.BadParameter("give exactly one of --model and --url")
    given = _parse_values(values or [])
    ask = interactive if interactive is not None else (not given and _terminal())
    if not ask and not given:
        # As for a malformed command line: the row is missing from it.
        raise typer.BadParameter(
            "nothing to price: give the row with --set COLUMN=VALUE (repeatable), "
            "or --interactive to be asked each column"
        )
    private_key = load_private_key(keys / PRIVATE_KEY_FILENAME, passphrase=existing_passphrase)
    pinned = FeatureSpec.load(features) if features is not None else None
    token = os.environ.get(TOKEN_ENV) or None
    weights: LinearModel | None = None
    if model is not None:
        spec, weights = _local_model(model, pinned)
        # Checked before any question is asked: the server role would refuse the query.
        _check_key_for_server(private_key, keys / PRIVATE_KEY_FILENAME)
    elif pinned is not None:
        spec = pinned
    else:
        assert url is not None
        info("using the spec the service serves; pin a reviewed spec with --features")
        spec = _served_spec(url, token)
    _check_columns(spec, given)

    cells, name = (_ask(spec, given), ANSWERS) if ask else (given, SET_VALUES)
    table = row_table(spec, cells, name)
    report = EncodingReport()
    check_row(spec, table, report, strict=strict)

    if weights is not None:
        answer = _price_here(private_key, spec, weights, table)
        where = f"the model in {model}"
    else:
        assert url is not None
        answer = _price_at(url, private_key, spec, table, token)
        where = url
    _report(report)
    prediction = dict(zip(spec.output.columns, answer, strict=True))
    info(f"{', '.join(spec.output.targets)} computed on ciphertexts by {where}, decrypted here")
    if as_json:
        typer.echo(json.dumps({**prediction, "spec_id": spec.spec_id}))
        return
    # The prediction alone on stdout; a classifier's probabilities (or scores) on stderr.
    first, *others = prediction.items()
    for column, value in others if spec.output.task == "classification" else ():
        info(f"{column}: {value!r}")
    shown: list[PredictionCell] = (
        [first[1]] if spec.output.task == "classification" else list(prediction.values())
    )
    typer.echo(" ".join(v if isinstance(v, str) else repr(v) for v in shown))


def _report(report: EncodingReport) -> None:
    """What became of the row's cells, on stderr: one line for the filled-in columns."""
    if report.filled:
        info("filled in as the spec says: " + ", ".join(report.filled))
    for warning in report.warnings():
        info(f"warning: {warning} (--strict refuses such rows)")


def _terminal() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def _parse_values(pairs: list[str]) -> dict[str, str]:
    """``--set COLUMN=VALUE`` pairs, split on the first ``=`` (a value may hold more)."""
    cells: dict[str, str] = {}
    for pair in pairs:
        column, separator, value = pair.partition("=")
        if not separator or not column:
            raise typer.BadParameter(f"expected COLUMN=VALUE, got {pair!r}", param_hint="--set")
        if column in cells:
            raise typer.BadParameter(f"{column!r} is set twice", param_hint="--set")
        cells[column] = value
    return cells


def _check_columns(spec: FeatureSpec, cells: dict[str, str]) -> None:
    """Refuse columns the spec does not read, naming the ones it does."""
    columns = spec.recipe.input_columns
    unknown = [column for column in cells if column not in columns]
    if unknown:
        raise DataError(
            f"the feature spec has no column{'s' if len(unknown) > 1 else ''} "
            + ", ".join(repr(column) for column in unknown)
            + "; it reads "
            + ", ".join(columns),
            path=SET_VALUES,
        )


def row_table(spec: FeatureSpec, cells: dict[str, str], name: str) -> CsvTable:
    """A one-row table of the spec's input columns, held in memory and called ``name``.

    Columns without a value are empty cells. The csv module quotes what needs
    quoting, so commas, quotes and line breaks in values stay in their cell.
    """
    columns = spec.recipe.input_columns
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    writer.writerow([cells.get(column, "") for column in columns])
    try:
        return CsvTable.from_text(text.getvalue(), name, required=columns, options=_ROW_CSV)
    except UnicodeEncodeError:
        # Bytes of the command line that are not UTF-8 reach Python as lone surrogates.
        raise DataError("a value is not valid UTF-8 text", path=name) from None


def check_row(
    spec: FeatureSpec, table: CsvTable, report: EncodingReport, *, strict: bool = False
) -> None:
    """Turn the row into model inputs once, counting in ``report``; refuse it as the spec says.

    A problem is a :class:`DataError` naming the row and the column, without
    the line of the CSV text made here, which the user never saw.
    """
    try:
        for row in table.rows():
            spec.transform_row(row, table.path, report, strict=strict)
    except DataError as error:
        raise DataError(
            error.problem, path=error.path, row=error.row, column=error.column
        ) from None


def _local_model(model: Path, pinned: FeatureSpec | None) -> tuple[FeatureSpec, LinearModel]:
    """The spec and weights of a model directory; the pinned spec, if any, must be its own."""
    spec = FeatureSpec.load(model / FEATURES_FILENAME)
    if pinned is not None and pinned.spec_id != spec.spec_id:
        raise SpecMismatchError(
            f"{model}: the model is for feature spec {spec.spec_id}, "
            f"not the pinned spec {pinned.spec_id}"
        )
    weights = LinearModel.load(model / MODEL_FILENAME)
    server.check_model(spec, weights)
    return spec, weights


def _check_key_for_server(private_key: PrivateKey, path: Path) -> None:
    """Refuse, up front, a key the server role would refuse (too small, or without a proof)."""
    public_key = private_key.public_key
    try:
        SERVER_KEY_POLICY.check(public_key.n, proof=public_key.proof)
    except (InsecureKeyError, InvalidKeyError) as error:
        raise type(error)(f"{path}: servers refuse this key: {error}") from None


def _served_spec(url: str, token: str | None) -> FeatureSpec:
    """The spec the service at ``url`` serves (its prompts and columns come from it)."""
    import httpx

    from ppml.service.client import fetch_spec

    base = url.rstrip("/")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=_SPEC_TIMEOUT_S) as client:
            return fetch_spec(client, base)
    except httpx.HTTPError as error:
        raise ServiceError(f"{base}: {error}") from None


def _ask(spec: FeatureSpec, given: dict[str, str]) -> dict[str, str]:
    """Ask each input column not in ``given``, on standard error; read answers from stdin."""
    info("an empty answer leaves a column missing: filled in or refused as the spec says")
    numeric = {feature.name: feature for feature in spec.numeric}
    categorical = {feature.name: feature for feature in spec.categorical}
    cells = dict(given)
    for column in spec.recipe.input_columns:
        if column in given:
            continue
        hint = _hint(spec, column, numeric.get(column), categorical.get(column))
        # The question goes to stderr, so that stdout holds the prediction alone.
        stderr.print(f"{column}{hint}: ", end="", markup=False, highlight=False, emoji=False)
        try:
            cells[column] = input()
        except EOFError:
            stderr.print()  # end the unanswered question's line before the error
            raise DataError(f"no answer for {column!r}: the input ended", path=ANSWERS) from None
    return cells


def _hint(
    spec: FeatureSpec,
    column: str,
    numeric: NumericFeature | None,
    categorical: CategoricalFeature | None,
) -> str:
    """What the spec knows of a column's values, for its question ("" if nothing)."""
    recipe = spec.recipe
    if isinstance(recipe, GenericRecipe):
        # A boolean or date column's field is numeric, but its cells are words or dates.
        typed = recipe.column_of(column)
        if typed.kind == "boolean":
            return f" ({' / '.join(typed.true_values)} or {' / '.join(typed.false_values)})"
        if typed.kind == "date":
            return f" (a date, {typed.date_format})"
    if categorical is not None:
        if not categorical.categories:
            return " (any text: every category counts as 'other')"
        others = "; others count as 'other'" if categorical.other else ""
        return f" (one of {', '.join(categorical.categories)}{others})"
    if numeric is not None:
        return f" (a number from {numeric.low:g} to {numeric.high:g})"
    return ""


def _price_here(
    private_key: PrivateKey, spec: FeatureSpec, weights: LinearModel, table: CsvTable
) -> tuple[PredictionCell, ...]:
    """Both roles in this process, through files in a private temporary folder."""
    with tempfile.TemporaryDirectory(prefix="ppml-price-") as scratch:
        query, result = Path(scratch) / "query.jsonl", Path(scratch) / "result.jsonl"
        names = {str(query): "the encrypted row", str(result): "the encrypted answer"}
        try:
            customer.encrypt_file(private_key, spec, table, query, jobs=1)
            server.predict_file(spec, weights, query, result, jobs=1)
            (prediction,) = customer.decrypt_predictions(
                private_key, result, query=query, spec=spec, jobs=1
            )
        except FileFormatError as error:
            # The files are this command's own, never the user's: name what they hold.
            if error.path not in names:
                raise
            raise type(error)(names[error.path], error.problem) from None
        except OSError as error:
            if not str(error.filename or "").startswith(scratch):
                raise
            raise OSError(
                error.errno,
                f"cannot hold the encrypted row in a temporary folder ({error.strerror})",
            ) from None
    return prediction


def _price_at(
    url: str, private_key: PrivateKey, spec: FeatureSpec, table: CsvTable, token: str | None
) -> tuple[PredictionCell, ...]:
    """The service computes; the prediction comes back through a private temporary file."""
    from ppml.service.client import query_service

    with tempfile.TemporaryDirectory(prefix="ppml-price-") as scratch:
        out = Path(scratch) / "prediction.csv"
        try:
            # The spec is pinned: the service must still serve it when the row goes.
            query_service(url, private_key, table, out, token=token, jobs=1, spec=spec)
        except OSError as error:
            raise OSError(
                error.errno, f"cannot hold the prediction in a temporary folder ({error.strerror})"
            ) from None
        with open(out, encoding="utf-8", newline="") as handle:
            (row,) = csv.DictReader(handle)
    label_columns = 1 if spec.output.task == "classification" else 0
    return tuple(
        row[column] if index < label_columns else float(row[column])
        for index, column in enumerate(spec.output.columns)
    )

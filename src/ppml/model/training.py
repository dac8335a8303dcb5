"""Server-side training with scikit-learn: a public feature spec and a private model.

Regressors and classifiers alike: the task is read from the target (text,
yes/no or a few integer classes make a classifier; ``task`` overrides it)
or from the estimator named, and the estimator's scores and output function
come from :mod:`ppml.model.estimators`.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from sklearn import metrics as sk_metrics
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from ppml.errors import DataError, SettingError
from ppml.features.outputs import MAX_CLASSES, MAX_INTEGER_CLASSES, Output, Task
from ppml.features.recipes import FieldError, Fields, LaptopRecipe, Recipe, parse_number
from ppml.features.schema import ColumnReport, SchemaChoices, infer_schema
from ppml.features.spec import (
    DEFAULT_FRAC_BITS,
    DEFAULT_MIN_CATEGORY_COUNT,
    MAX_PRECISION_DIGITS,
    FeatureSpec,
)
from ppml.features.table import CsvOptions, CsvTable, Row
from ppml.model.estimators import DEFAULT_ESTIMATOR, kind_named, linear_form, make_estimator
from ppml.model.linear import LinearModel

CARD_FORMAT = "ppml.model-card"
CARD_VERSION = 2
TargetTransformName = Literal["none", "log"]
TaskChoice = Literal["auto", "regression", "classification"]
# Integers up to 2^53 are exact as floats: larger labels stay text, never merged.
_EXACT_INTEGERS = 2**53
# A message lists this many names at most.
_LISTED = 10
_BOOLEAN_WORDS = frozenset({"true", "false", "yes", "no", "y", "n", "t", "f"})


@dataclass(frozen=True)
class Metrics:
    """Quality of a regressor's predictions in target units (R², MAE, RMSE; averaged over the
    targets of a multi-target model), and R² on the log scale for a model fitted on log
    targets."""

    r2: float
    mae: float
    rmse: float
    log_r2: float | None = None

    def to_document(self) -> dict[str, Any]:
        """The metrics as the model card stores them."""
        return {"r2": self.r2, "mae": self.mae, "rmse": self.rmse, "log_r2": self.log_r2}


@dataclass(frozen=True)
class ClassificationMetrics:
    """Quality of a classifier's predictions.

    ``log_loss`` needs probabilities, and ``roc_auc`` probabilities or a
    binary score (None otherwise: a multi-class decision score is no
    probability). ``f1`` is per class; ``confusion[i][j]`` counts rows of
    class i predicted as class j.
    """

    classes: tuple[str, ...]
    accuracy: float
    balanced_accuracy: float
    log_loss: float | None
    roc_auc: float | None
    f1: tuple[float, ...]
    confusion: tuple[tuple[int, ...], ...]

    @property
    def macro_f1(self) -> float:
        """The mean of the per-class F1 scores."""
        return float(np.mean(self.f1))

    def to_document(self) -> dict[str, Any]:
        """The metrics as the model card stores them."""
        return {
            "accuracy": self.accuracy,
            "balanced_accuracy": self.balanced_accuracy,
            "log_loss": self.log_loss,
            "roc_auc": self.roc_auc,
            "f1": dict(zip(self.classes, self.f1, strict=True)),
            "confusion_matrix": {
                "classes": list(self.classes),
                "rows_are": "true class",
                "counts": [list(row) for row in self.confusion],
            },
        }


Scores = Metrics | ClassificationMetrics


@dataclass
class TrainingResult:
    """What ``train`` produces: the public spec, the private model, and how good it is.

    The scores come from rows the scored model never saw (cross-validation
    on the evaluation rows, then the held-out rows); the spec and the model
    are then refitted on every usable row.
    """

    spec: FeatureSpec
    model: LinearModel
    cross_validation: Scores
    holdout: Scores | None
    training_rows: int
    """Rows the final model was fitted on (every row with a target)."""
    evaluation_rows: int
    """Rows the cross-validation ran on (all but the held-out ones)."""
    holdout_rows: int
    skipped_rows: int
    """Rows left out because their target is missing."""
    folds: int
    schema: list[ColumnReport]
    warnings: list[str]
    params: dict[str, Any]
    estimator: Pipeline = field(repr=False)

    @property
    def task(self) -> Task:
        """Regression or classification."""
        return self.spec.output.task

    def card(self) -> dict[str, Any]:
        """The model card: public facts about the data, the schema and the scores (no weights)."""
        return {
            "format": CARD_FORMAT,
            "version": CARD_VERSION,
            "spec_id": self.spec.spec_id,
            "estimator": self.model.estimator,
            "parameters": {name: repr(value) for name, value in sorted(self.params.items())},
            "output": self.spec.output.to_document(),
            "data": {
                "rows_used": self.training_rows,
                "rows_without_target": self.skipped_rows,
                "evaluation_rows": self.evaluation_rows,
                "holdout_rows": self.holdout_rows,
                "features": len(self.spec.feature_names),
            },
            "schema": [report.to_document() for report in self.schema],
            "metrics": {
                f"cross_validation_{self.folds}_fold": self.cross_validation.to_document(),
                "holdout": None if self.holdout is None else self.holdout.to_document(),
            },
            "final_model": f"refitted on all {self.training_rows} rows after scoring",
            "warnings": list(self.warnings),
        }

    def scores(self) -> list[tuple[str, int, Scores]]:
        """Each evaluation: its name, the rows it scored, and the metrics."""
        scored: list[tuple[str, int, Scores]] = [
            (f"{self.folds}-fold CV", self.evaluation_rows, self.cross_validation)
        ]
        if self.holdout is not None:
            scored.append(("held out", self.holdout_rows, self.holdout))
        return scored

    def card_markdown(self) -> str:
        """The model card for people."""
        output = self.spec.output
        lines = [
            f"# Model card: {self.model.estimator} predicting {', '.join(output.targets)}",
            "",
            f"- Feature spec: `{self.spec.spec_id}` ({len(self.spec.feature_names)} model inputs)",
            f"- Task: {output.task}; output: {output.describe()}",
            f"- Rows: {self.training_rows} used, {self.skipped_rows} left out (no target)",
            f"- Final model: refitted on all {self.training_rows} rows after scoring",
            "",
            "## Scores",
            "",
        ]
        lines += _score_table(self.scores())
        if isinstance(self.cross_validation, ClassificationMetrics):
            lines += ["", f"## Per class ({self.folds}-fold CV)", ""]
            lines += _class_table(self.cross_validation)
        lines += [
            "",
            "## Columns",
            "",
            "| column | type | missing | unusual | categories | fill | note |",
            "| --- | --- | ---: | ---: | --- | --- | --- |",
        ]
        for report in self.schema:
            name, *cells = report.cells()
            lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
        if self.warnings:
            lines += ["", "## Warnings", ""] + [f"- {warning}" for warning in self.warnings]
        return "\n".join(lines) + "\n"


def _optional(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def score_columns(scored: Sequence[tuple[str, int, Scores]]) -> tuple[list[str], list[list[str]]]:
    """Headings and one row of cells per evaluation, for the terminal and the model card."""
    first = scored[0][2]
    if isinstance(first, ClassificationMetrics):
        headings = ["evaluation", "rows", "accuracy", "balanced accuracy", "log loss", "ROC AUC"]
        headings.append("macro F1")
        rows = [
            [
                name,
                str(count),
                f"{m.accuracy:.4f}",
                f"{m.balanced_accuracy:.4f}",
                _optional(m.log_loss),
                _optional(m.roc_auc),
                f"{m.macro_f1:.4f}",
            ]
            for name, count, m in scored
            if isinstance(m, ClassificationMetrics)
        ]
        return headings, rows
    log = first.log_r2 is not None
    headings = ["evaluation", "rows", "R²", "MAE", "RMSE"] + (["R² (log)"] if log else [])
    rows = []
    for name, count, m in scored:
        assert isinstance(m, Metrics)
        cells = [name, str(count), f"{m.r2:.4f}", f"{m.mae:,.4g}", f"{m.rmse:,.4g}"]
        if m.log_r2 is not None:
            cells.append(f"{m.log_r2:.4f}")
        rows.append(cells)
    return headings, rows


def _score_table(scored: Sequence[tuple[str, int, Scores]]) -> list[str]:
    headings, rows = score_columns(scored)
    return [
        "| " + " | ".join(headings) + " |",
        "| --- |" + " ---: |" * (len(headings) - 1),
        *("| " + " | ".join(cells) + " |" for cells in rows),
    ]


def _class_table(metrics: ClassificationMetrics) -> list[str]:
    classes = metrics.classes
    lines = [
        "| true class | F1 | " + " | ".join(f"predicted {_cell(c)}" for c in classes) + " |",
        "| --- | ---: |" + " ---: |" * len(classes),
    ]
    for name, f1, row in zip(classes, metrics.f1, metrics.confusion, strict=True):
        lines.append(f"| {_cell(name)} | {f1:.4f} | " + " | ".join(str(n) for n in row) + " |")
    return lines


def _cell(text: str) -> str:
    """Text in a markdown table cell: a ``|`` would end the cell, markup would render."""
    return "".join(f"\\{c}" if c in "\\|`*_[]<>#" else c for c in text)


def choose_recipe(
    table: CsvTable,
    rows: Sequence[Row],
    target: str | Sequence[str],
    recipe: str = "auto",
    choices: SchemaChoices | None = None,
) -> tuple[Recipe, list[ColumnReport]]:
    """The laptop recipe for laptop tables, else the generic one with an inferred schema."""
    targets = [target] if isinstance(target, str) else list(target)
    if recipe not in ("auto", "laptops", "generic"):
        raise SettingError("recipe must be auto, laptops or generic")
    has_laptop_columns = all(c in table.columns for c in LaptopRecipe.input_columns)
    if recipe == "laptops" or (recipe == "auto" and has_laptop_columns and choices is None):
        if not has_laptop_columns:
            missing = [c for c in LaptopRecipe.input_columns if c not in table.columns]
            raise DataError(f"missing laptop columns {missing}", path=table.path)
        if set(targets) & set(LaptopRecipe.input_columns):
            raise SettingError("the laptops recipe reads its target as an input; choose another")
        reports = [
            ColumnReport(
                name,
                "target" if name in targets else "ignored",
                note="read by the laptops recipe" if name in LaptopRecipe.input_columns else "",
            )
            for name in table.columns
        ]
        return LaptopRecipe(), reports
    choices = choices or SchemaChoices()
    others = frozenset(targets[1:])
    if others:
        # The other targets are no inputs: dropped from the schema, reported as targets.
        choices = dataclasses.replace(choices, drop=choices.drop | others)
    chosen, reports = infer_schema(rows, table.columns, targets[0], choices)
    for report in reports:
        if report.name in others:
            report.role, report.note = "target", ""
    return chosen, reports


def detect_task(values: Sequence[str]) -> Task:
    """Classification for text, yes/no or a few integer classes; regression otherwise."""
    words = {value.strip().lower() for value in values}
    if words <= _BOOLEAN_WORDS and len(words) == 2:
        return "classification"
    numbers, texts = [], 0
    for value in values:
        try:
            numbers.append(float(value))
        except ValueError:
            texts += 1
    distinct = set(numbers)
    if all(math.isfinite(v) and v.is_integer() for v in distinct) and (
        2 <= len(distinct) <= MAX_INTEGER_CLASSES
    ):
        return "classification"
    # Mostly measurements with a few words among them: typos for regression to
    # report by row, not classes.
    return "classification" if texts >= len(numbers) else "regression"


def _labels(texts: Sequence[str]) -> NDArray[Any]:
    """Class labels: integers when every label is one that a float holds exactly (so they
    sort as numbers: ``2`` before ``10``, ``1.0`` is ``1``), else the text as written."""
    stripped = [text.strip() for text in texts]
    try:
        numbers = [float(text) for text in stripped]
    except ValueError:
        return np.array(stripped, dtype=object)
    if all(v.is_integer() and abs(v) < _EXACT_INTEGERS for v in numbers):
        return np.array([int(v) for v in numbers], dtype=np.int64)
    return np.array(stripped, dtype=object)


def _check_rare(
    target: str, counts: Counter[Any], folds: int, where: str, path: str | Path
) -> None:
    """Refuse classes with fewer rows than stratified ``folds``-fold cross-validation needs."""
    rare = sorted(str(c) for c, n in counts.items() if n < folds)
    if rare:
        listed = ", ".join(map(repr, rare[:_LISTED]))
        more = f" and {len(rare) - _LISTED} more" if len(rare) > _LISTED else ""
        raise DataError(
            f"{target!r}: class(es) {listed}{more} have fewer than {folds} {where}, too few for "
            f"{folds}-fold cross-validation (pass fewer --folds, a smaller --holdout, or merge or "
            "drop those rows)",
            path=path,
        )


def _regression_metrics(
    output: Output, log_target: bool, truth: NDArray[np.float64], scores: NDArray[np.float64]
) -> Metrics:
    """Metrics in target units of a regressor's scores (rows x k) against ``truth`` (rows x k),
    both on the model's scale."""

    def r2(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
        totals = np.sum((a - a.mean(axis=0)) ** 2, axis=0)
        if np.any(totals <= 0):
            return math.nan
        return float(np.mean(1.0 - np.sum((a - b) ** 2, axis=0) / totals))

    truth_units = np.exp(truth) if log_target else truth
    predicted_units = output.inverse_link(scores)
    residual = truth_units - predicted_units
    return Metrics(
        r2(truth_units, predicted_units),
        float(np.mean(np.abs(residual))),
        float(np.mean(np.sqrt(np.mean(residual**2, axis=0)))),
        r2(truth, scores) if log_target else None,
    )


def _classification_metrics(
    classes: NDArray[Any],
    truth: NDArray[Any],
    labels: NDArray[Any],
    scores: NDArray[np.float64],
    probabilities: NDArray[np.float64] | None,
) -> ClassificationMetrics:
    """Metrics of a classifier's labels, scores and probabilities (columns in class order)."""
    with warnings.catch_warnings():
        # A fold without some class gives undefined recall there; it counts as 0.
        warnings.simplefilter("ignore", UserWarning)
        balanced = float(sk_metrics.balanced_accuracy_score(truth, labels))
    log_loss = roc_auc = None
    present = len(set(truth.tolist())) == len(classes)
    if probabilities is not None:
        clipped = np.clip(probabilities, 1e-15, 1.0)
        log_loss = float(
            sk_metrics.log_loss(truth, clipped / clipped.sum(axis=1, keepdims=True), labels=classes)
        )
        if present:
            if len(classes) == 2:
                roc_auc = float(sk_metrics.roc_auc_score(truth == classes[1], probabilities[:, 1]))
            else:
                roc_auc = float(
                    sk_metrics.roc_auc_score(
                        truth, probabilities, multi_class="ovr", labels=classes
                    )
                )
    elif len(classes) == 2 and present:
        roc_auc = float(sk_metrics.roc_auc_score(truth == classes[1], scores[:, 0]))
    f1 = sk_metrics.f1_score(truth, labels, labels=classes, average=None, zero_division=0.0)
    confusion = sk_metrics.confusion_matrix(truth, labels, labels=classes)
    return ClassificationMetrics(
        tuple(str(c) for c in classes),
        float(sk_metrics.accuracy_score(truth, labels)),
        balanced,
        log_loss,
        roc_auc,
        tuple(float(v) for v in f1),
        tuple(tuple(int(n) for n in row) for row in confusion),
    )


def _linear_on_inputs(pipeline: Pipeline) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Coefficients (k x d) and intercepts (k) on raw inputs of a StandardScaler + linear
    estimator pipeline: the scaling folded into the weights."""
    scaler = pipeline[0]
    form = linear_form(pipeline[-1])
    if form.coefficients.shape[1] != scaler.mean_.shape[0]:
        raise SettingError(f"{form.estimator} does not expose one coefficient per feature")
    weights = form.coefficients / scaler.scale_
    return weights, form.intercepts - weights @ scaler.mean_


@dataclass(frozen=True)
class _Predicted:
    """What a fitted pipeline said of some rows: its output function, scores (rows x k) and,
    for a classifier, labels and probabilities (columns: every class, in order)."""

    function: str
    scores: NDArray[np.float64]
    labels: NDArray[Any] | None
    probabilities: NDArray[np.float64] | None

    @staticmethod
    def concatenate(parts: Sequence[_Predicted]) -> _Predicted:
        """The predictions of several folds, one after the other."""
        labels = [p.labels for p in parts if p.labels is not None]
        probabilities = [p.probabilities for p in parts if p.probabilities is not None]
        return _Predicted(
            parts[0].function,
            np.vstack([p.scores for p in parts]),
            np.concatenate(labels) if len(labels) == len(parts) else None,
            np.vstack(probabilities) if len(probabilities) == len(parts) else None,
        )


def _scores_of(pipeline: Pipeline, x: NDArray[np.float64], task: Task) -> NDArray[np.float64]:
    """The fitted pipeline's scores (rows x k), before any output function: a classifier's
    ``decision_function``; a regressor's linear predictor (``predict`` of a log-link GLM is
    already the exponential of it)."""
    if task == "classification":
        values = np.asarray(pipeline.decision_function(x), dtype=np.float64)
        return values.reshape(len(x), -1)
    weights, intercepts = _linear_on_inputs(pipeline)
    return np.asarray(x @ weights.T + intercepts, dtype=np.float64)


def train(
    data: str | Path,
    target: str | Sequence[str],
    *,
    task: TaskChoice = "auto",
    recipe: str = "auto",
    estimator: str | None = None,
    params: dict[str, Any] | None = None,
    holdout: float = 0.2,
    folds: int = 5,
    seed: int = 0,
    target_transform: TargetTransformName | None = None,
    frac_bits: int = DEFAULT_FRAC_BITS,
    min_category_count: int = DEFAULT_MIN_CATEGORY_COUNT,
    precision_digits: int | None = None,
    csv_options: CsvOptions | None = None,
    schema: SchemaChoices | None = None,
) -> TrainingResult:
    """Fit a linear model on a CSV file, score it, then refit it on every row.

    ``target`` names the column to predict (several columns: a multi-target
    regressor). The task is ``task``, else the named estimator's, else read
    from the target (text, yes/no or at most 10 integer values: classes);
    the estimator defaults to LinearRegression or LogisticRegression. The
    laptop data gets its domain recipe, and a log target for regression;
    other tables get an inferred schema (``schema`` overrides it) and the
    target as it is. Rows whose target is missing are left out and counted.
    With ``holdout > 0`` a random fraction of the rows (stratified by class
    for a classifier) is kept out of the cross-validation and scored at the
    end; the spec and the model written are then fitted on all rows.
    """
    targets = [target] if isinstance(target, str) else list(target)
    if not targets or len(set(targets)) != len(targets):
        raise SettingError("name each target column once")
    if not 0 <= holdout < 1:
        raise SettingError("holdout must be in [0, 1)")
    if folds < 2:
        raise SettingError("cross-validation needs at least 2 folds")
    if precision_digits is not None and not 1 <= precision_digits <= MAX_PRECISION_DIGITS:
        raise SettingError(f"precision digits must be from 1 to {MAX_PRECISION_DIGITS}")
    if task not in ("auto", "regression", "classification"):
        raise SettingError("the task is auto, regression or classification")
    table = CsvTable(data, targets, csv_options)
    rows = list(table.rows())
    chosen, reports = choose_recipe(table, rows, targets, recipe, schema)
    missing_tokens = frozenset(
        v.strip().lower() for v in (schema or SchemaChoices()).missing_values
    )

    fields: list[Fields] = []
    labelled_rows: list[Row] = []
    unlabelled: list[Fields] = []
    for row in rows:
        try:
            if any(row.cells[name].strip().lower() in missing_tokens for name in targets):
                unlabelled.append(chosen.derive(row.cells))
                continue
            fields.append(chosen.derive(row.cells))
        except FieldError as error:
            raise error.at(row, table.path) from None
        labelled_rows.append(row)
    skipped = len(unlabelled)

    kind = kind_named(estimator) if estimator is not None else None
    chosen_task: Task
    if task != "auto":
        chosen_task = task
    elif kind is not None:
        chosen_task = kind.task
    else:
        chosen_task = detect_task([row.cells[targets[0]] for row in labelled_rows])
    if kind is not None and kind.task != chosen_task:
        raise SettingError(f"{kind.name} is a {kind.task} model, not a {chosen_task} one")
    estimator_name = estimator or DEFAULT_ESTIMATOR[chosen_task]
    if chosen_task == "classification" and len(targets) > 1:
        raise SettingError("a classifier predicts one target column")
    if chosen_task == "classification" and target_transform == "log":
        raise SettingError("a log target transform is for regression")
    transform: TargetTransformName = target_transform or (
        "log" if isinstance(chosen, LaptopRecipe) and chosen_task == "regression" else "none"
    )

    if len(fields) < folds * 2:
        raise DataError(
            f"only {len(fields)} rows with a target: too few to train and cross-validate",
            path=table.path,
        )
    y_all: NDArray[Any]
    if chosen_task == "regression":
        values = []
        for row in labelled_rows:
            try:
                values.append(
                    [parse_number(n, row.cells[n], positive=transform == "log") for n in targets]
                )
            except FieldError as error:
                raise error.at(row, table.path) from None
        y_matrix = np.asarray(values, dtype=np.float64)
        y_matrix = np.log(y_matrix) if transform == "log" else y_matrix
        y_all = y_matrix[:, 0] if len(targets) == 1 else y_matrix
        stratify = None
    else:
        y_all = _labels([row.cells[targets[0]] for row in labelled_rows])
        counts = Counter(y_all.tolist())
        if len(counts) > MAX_CLASSES:
            raise DataError(
                f"{targets[0]!r} holds {len(counts)} distinct values, more classes than a "
                f"classifier may have ({MAX_CLASSES}); is it a number to predict? "
                "(--task regression)",
                path=table.path,
            )
        if len(counts) < 2:
            raise DataError(
                f"{targets[0]!r} holds one class only ({next(iter(counts))!r}): nothing to "
                "tell apart",
                path=table.path,
            )
        _check_rare(targets[0], counts, folds, "rows", table.path)
        stratify = y_all

    unconverged: list[str] = []

    def fit(x: NDArray[np.float64], y: NDArray[Any]) -> Pipeline:
        pipeline = make_pipeline(StandardScaler(), make_estimator(estimator_name, params))
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                fitted = pipeline.fit(x, y)
            unconverged.extend(
                " ".join(str(w.message).split())
                for w in caught
                if issubclass(w.category, ConvergenceWarning)
            )
            return fitted
        except InvalidParameterError as error:
            # scikit-learn checks parameter values only when fitting.
            message = " ".join(str(error).split())
            raise SettingError(f"bad parameters for {estimator_name}: {message[:300]}") from None
        except ValueError as error:
            message = " ".join(str(error).split())
            raise SettingError(f"{estimator_name} cannot fit this data: {message[:300]}") from None

    # Scoring: the spec's bounds, categories and fills, and every model scored,
    # come from rows the scored predictions are not made for.
    indices = np.arange(len(fields))
    held_count = round(len(fields) * holdout)
    if held_count and stratify is None:
        order = np.random.default_rng(seed).permutation(len(fields))
        held, kept = np.sort(order[:held_count]), np.sort(order[held_count:])
    elif held_count:
        try:
            kept, held = train_test_split(
                indices, test_size=held_count, random_state=seed, shuffle=True, stratify=stratify
            )
        except ValueError as error:
            # A stratified split needs room for every class on both sides.
            raise SettingError(
                f"cannot hold out {held_count} of {len(fields)} rows with every class on both "
                f"sides ({' '.join(str(error).split())}); pass --holdout 0, or a fraction that "
                "leaves rows of every class on both sides"
            ) from None
        kept, held = np.sort(kept), np.sort(held)
    else:
        kept, held = indices, indices[:0]
    try:
        provisional = (
            Output.regression(targets)
            if chosen_task == "regression"
            else Output.classification(targets[0], [str(c) for c in np.unique(y_all)], "decision")
        )
    except ValueError as error:
        raise DataError(f"cannot predict {targets[0]!r}: {error}", path=table.path) from None
    evaluation_spec = FeatureSpec.fit(
        chosen, [fields[i] for i in kept], provisional, min_category_count=min_category_count
    )
    x_kept = np.array([evaluation_spec.vectorize(fields[i]) for i in kept])
    y_kept = y_all[kept]
    if chosen_task == "classification" and held_count:
        # The held-out rows leave fewer of each class to the folds.
        _check_rare(
            targets[0], Counter(y_kept.tolist()), folds, "rows left after the holdout", table.path
        )

    all_classes = np.unique(y_all) if chosen_task == "classification" else np.array([])

    def predict(pipeline: Pipeline, x: NDArray[np.float64]) -> _Predicted:
        form = linear_form(pipeline[-1])
        scores = _scores_of(pipeline, x, chosen_task)
        if chosen_task == "regression":
            return _Predicted(form.function, scores, None, None)
        probabilities = None
        if form.function != "decision":
            # Columns in the order of every class, even one a fold never saw.
            raw = np.asarray(pipeline.predict_proba(x), dtype=np.float64)
            probabilities = np.zeros((len(x), len(all_classes)))
            for column, label in enumerate(pipeline.classes_):
                probabilities[:, int(np.searchsorted(all_classes, label))] = raw[:, column]
        return _Predicted(form.function, scores, np.asarray(pipeline.predict(x)), probabilities)

    def evaluate(predicted: _Predicted, y: NDArray[Any]) -> Scores:
        if chosen_task == "regression":
            output = Output.regression(targets, "exp" if transform == "log" else predicted.function)
            truth = y.reshape(len(y), -1).astype(np.float64)
            return _regression_metrics(output, transform == "log", truth, predicted.scores)
        assert predicted.labels is not None
        return _classification_metrics(
            all_classes, y, predicted.labels, predicted.scores, predicted.probabilities
        )

    splitter = (
        StratifiedKFold(folds, shuffle=True, random_state=seed)
        if chosen_task == "classification"
        else KFold(folds, shuffle=True, random_state=seed)
    )
    fold_metrics: list[Scores] = []
    pooled: list[tuple[NDArray[np.int64], _Predicted]] = []
    for train_index, test_index in splitter.split(x_kept, y_kept):
        fitted = fit(x_kept[train_index], y_kept[train_index])
        predicted = predict(fitted, x_kept[test_index])
        if chosen_task == "regression":
            fold_metrics.append(evaluate(predicted, y_kept[test_index]))
        else:
            pooled.append((test_index, predicted))
    cross_validation: Scores
    if chosen_task == "regression":
        regression_folds = [m for m in fold_metrics if isinstance(m, Metrics)]
        cross_validation = Metrics(
            float(np.mean([m.r2 for m in regression_folds])),
            float(np.mean([m.mae for m in regression_folds])),
            float(np.mean([m.rmse for m in regression_folds])),
            None
            if transform != "log"
            else float(np.mean([m.log_r2 or 0.0 for m in regression_folds])),
        )
    else:
        # Every row's out-of-fold prediction scored together, so a rare class is
        # scored on all of its rows rather than averaged over folds that barely hold it.
        order = np.concatenate([index for index, _ in pooled])
        cross_validation = evaluate(_Predicted.concatenate([p for _, p in pooled]), y_kept[order])
    holdout_metrics = None
    if held_count:
        scored = fit(x_kept, y_kept)
        x_held = np.array([evaluation_spec.vectorize(fields[i]) for i in held])
        holdout_metrics = evaluate(predict(scored, x_held), y_all[held])

    # The model written: spec and weights from every row with a target.
    spec = FeatureSpec.fit(
        chosen,
        fields,
        provisional,
        frac_bits=frac_bits,
        min_category_count=min_category_count,
        unlabelled=unlabelled,
    )
    x_all = np.array([spec.vectorize(f) for f in fields])
    pipeline = fit(x_all, y_all)
    form = linear_form(pipeline[-1])
    if chosen_task == "regression":
        if transform == "log" and form.function == "exp":
            raise SettingError(
                f"{form.estimator} already predicts through a log link: use no log target"
            )
        output = Output.regression(targets, "exp" if transform == "log" else form.function)
    else:
        output = Output.classification(targets[0], form.classes, form.function)
    weights, intercepts = _linear_on_inputs(pipeline)
    # The packing layout is public, so customers can pack queries before they
    # see a result: slots are as wide as the largest input or score the
    # declared bounds and these weights allow (an all-zero model still needs
    # room for its inputs).
    capped = dataclasses.replace(spec, output=output, precision_digits=precision_digits)
    spec = dataclasses.replace(
        capped, slot_bits=capped.required_slot_bits(weights.tolist(), intercepts.tolist())
    )
    model = LinearModel.from_arrays(
        spec.spec_id, spec.feature_names, weights, intercepts, form.estimator
    )
    distinct = {
        name: len({f.categories[name] for f in fields} - {None})
        for name in chosen.categorical_fields
    }
    warning_lines = _describe(spec, reports, distinct, skipped, targets[0])
    folded = Counter(name.casefold() for name in output.classes)
    alike = [name for name in output.classes if folded[name.casefold()] > 1]
    if alike:
        warning_lines.append(
            f"classes {', '.join(map(repr, alike[:_LISTED]))} differ only in case: each is a "
            "class of its own"
        )
    if unconverged:
        warning_lines.append(
            f"{estimator_name} did not converge in {len(unconverged)} of its fits "
            f"({unconverged[-1].split('.')[0][:120]}); its scores may improve with more iterations "
            "(--param max_iter=...)"
        )
    return TrainingResult(
        spec,
        model,
        cross_validation,
        holdout_metrics,
        len(fields),
        len(kept),
        held_count,
        skipped,
        folds,
        reports,
        warning_lines,
        dict(pipeline[-1].get_params()) if params is None else dict(params),
        pipeline,
    )


def _describe(
    spec: FeatureSpec,
    reports: list[ColumnReport],
    distinct: dict[str, int],
    skipped: int,
    target: str,
) -> list[str]:
    """Fill the reports' category counts from the spec; the warnings a user should read."""
    by_name = {report.name: report for report in reports}
    for feature in spec.categorical:
        report = by_name.get(feature.name)
        if report is not None:
            report.categories_kept = len(feature.categories)
            report.categories_merged = distinct[feature.name] - len(feature.categories)
            if feature.other:
                report.note = (report.note + "; " if report.note else "") + (
                    f"{report.categories_merged} rare "
                    + (
                        "category goes into the 'other' feature"
                        if report.categories_merged == 1
                        else "categories share one 'other' feature"
                    )
                )
    warnings = []
    if skipped:
        warnings.append(f"{skipped} row(s) with no {target!r} were left out")
    for report in reports:
        if report.unusual:
            examples = ", ".join(repr(v) for v in report.unusual_examples)
            warnings.append(
                f"{report.name!r}: {report.unusual} unusual value(s) ({examples}) treated as "
                "missing"
            )
        if report.role == "identifier":
            warnings.append(f"{report.name!r}: {report.note}")
    return warnings

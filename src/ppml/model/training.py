"""Server-side training with scikit-learn: a public feature spec and a private model."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn import linear_model
from sklearn.base import RegressorMixin
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from ppml.errors import DataError, SettingError
from ppml.features.recipes import FieldError, LaptopRecipe, Recipe, parse_number
from ppml.features.schema import ColumnReport, SchemaChoices, infer_schema
from ppml.features.spec import (
    DEFAULT_FRAC_BITS,
    DEFAULT_MIN_CATEGORY_COUNT,
    MAX_PRECISION_DIGITS,
    FeatureSpec,
    Target,
    TargetTransformName,
)
from ppml.features.table import CsvOptions, CsvTable, Row
from ppml.model.linear import LinearModel

CARD_FORMAT = "ppml.model-card"
CARD_VERSION = 1
ESTIMATOR_ALIASES = {"linear": "LinearRegression", "ridge": "Ridge", "lasso": "Lasso"}


@dataclass(frozen=True)
class Metrics:
    """Quality of predictions in target units (R², MAE, RMSE), and R² on the log scale for a
    model fitted on log targets."""

    r2: float
    mae: float
    rmse: float
    log_r2: float | None = None

    def to_document(self) -> dict[str, float | None]:
        """The metrics as the model card stores them."""
        return {"r2": self.r2, "mae": self.mae, "rmse": self.rmse, "log_r2": self.log_r2}


@dataclass
class TrainingResult:
    """What ``train`` produces: the public spec, the private model, and how good it is.

    The scores come from rows the scored model never saw (cross-validation
    on the evaluation rows, then the held-out rows); the spec and the model
    are then refitted on every usable row.
    """

    spec: FeatureSpec
    model: LinearModel
    cross_validation: Metrics
    holdout: Metrics | None
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

    def card(self) -> dict[str, Any]:
        """The model card: public facts about the data, the schema and the scores (no weights)."""
        return {
            "format": CARD_FORMAT,
            "version": CARD_VERSION,
            "spec_id": self.spec.spec_id,
            "estimator": self.model.estimator,
            "parameters": {name: repr(value) for name, value in sorted(self.params.items())},
            "target": {"name": self.spec.target.name, "transform": self.spec.target.transform},
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

    def scores(self) -> list[tuple[str, int, Metrics]]:
        """Each evaluation: its name, the rows it scored, and the metrics."""
        scored = [(f"{self.folds}-fold CV", self.evaluation_rows, self.cross_validation)]
        if self.holdout is not None:
            scored.append(("held out", self.holdout_rows, self.holdout))
        return scored

    def card_markdown(self) -> str:
        """The model card for people."""
        target = self.spec.target
        log = target.transform == "log"
        lines = [
            f"# Model card: {self.model.estimator} predicting {target.name}",
            "",
            f"- Feature spec: `{self.spec.spec_id}` ({len(self.spec.feature_names)} model inputs)",
            f"- Target: `{target.name}`"
            + (" (fitted on its logarithm)" if target.transform == "log" else ""),
            f"- Rows: {self.training_rows} used, {self.skipped_rows} left out (no target)",
            f"- Final model: refitted on all {self.training_rows} rows after scoring",
            "",
            "## Scores",
            "",
            "| evaluation | rows | R² | MAE | RMSE |" + (" R² (log) |" if log else ""),
            "| --- | ---: | ---: | ---: | ---: |" + (" ---: |" if log else ""),
        ]
        for name, rows, metrics in self.scores():
            log_cell = f" {metrics.log_r2:.4f} |" if metrics.log_r2 is not None else ""
            lines.append(
                f"| {name} | {rows} | {metrics.r2:.4f} | {metrics.mae:,.4g} | "
                f"{metrics.rmse:,.4g} |{log_cell}"
            )
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


def make_estimator(name: str, params: dict[str, Any] | None = None) -> RegressorMixin:
    """A scikit-learn linear regressor by class name (or alias: linear, ridge, lasso)."""
    class_name = ESTIMATOR_ALIASES.get(name.lower(), name)
    candidate = getattr(linear_model, class_name, None)
    if not (isinstance(candidate, type) and issubclass(candidate, RegressorMixin)):
        raise SettingError(
            f"{name!r} is not a regressor of sklearn.linear_model "
            "(try LinearRegression, Ridge, Lasso, ElasticNet, HuberRegressor, BayesianRidge)"
        )
    known = set(candidate().get_params())
    unknown = sorted(set(params or {}) - known)
    if unknown:
        raise SettingError(
            f"{class_name} has no parameter {', '.join(map(repr, unknown))} "
            f"(its parameters: {', '.join(sorted(known))})"
        )
    estimator: RegressorMixin = candidate(**(params or {}))
    return estimator


def choose_recipe(
    table: CsvTable,
    rows: Sequence[Row],
    target: str,
    recipe: str = "auto",
    choices: SchemaChoices | None = None,
) -> tuple[Recipe, list[ColumnReport]]:
    """The laptop recipe for laptop tables, else the generic one with an inferred schema."""
    if recipe not in ("auto", "laptops", "generic"):
        raise SettingError("recipe must be auto, laptops or generic")
    has_laptop_columns = all(c in table.columns for c in LaptopRecipe.input_columns)
    if recipe == "laptops" or (recipe == "auto" and has_laptop_columns and choices is None):
        if not has_laptop_columns:
            missing = [c for c in LaptopRecipe.input_columns if c not in table.columns]
            raise DataError(f"missing laptop columns {missing}", path=table.path)
        reports = [
            ColumnReport(
                name,
                "target" if name == target else "ignored",
                note="read by the laptops recipe" if name in LaptopRecipe.input_columns else "",
            )
            for name in table.columns
        ]
        return LaptopRecipe(), reports
    return infer_schema(rows, table.columns, target, choices or SchemaChoices())


def _metrics(target: Target, truth: NDArray[np.float64], predicted: NDArray[np.float64]) -> Metrics:
    def r2(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
        total = float(np.sum((a - a.mean()) ** 2))
        return 1.0 - float(np.sum((a - b) ** 2)) / total if total > 0 else math.nan

    truth_units, predicted_units = target.inverse(truth), target.inverse(predicted)
    residual = truth_units - predicted_units
    return Metrics(
        r2(truth_units, predicted_units),
        float(np.mean(np.abs(residual))),
        float(np.sqrt(np.mean(residual**2))),
        r2(truth, predicted) if target.transform == "log" else None,
    )


def _fold_scaling(pipeline: Pipeline) -> tuple[NDArray[np.float64], float]:
    """Weights and intercept on raw inputs of a StandardScaler + linear regressor pipeline."""
    scaler, regressor = pipeline[0], pipeline[-1]
    coef = np.ravel(np.asarray(getattr(regressor, "coef_", None), dtype=np.float64))
    intercept = float(np.ravel(np.asarray(getattr(regressor, "intercept_", None)))[0])
    if coef.shape != scaler.mean_.shape:
        raise ValueError("the estimator does not expose one coef_ per feature")
    weights = coef / scaler.scale_
    return weights, intercept - float(np.dot(weights, scaler.mean_))


def train(
    data: str | Path,
    target: str,
    *,
    recipe: str = "auto",
    estimator: str = "LinearRegression",
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

    The laptop data gets its domain recipe and a log target by default; other
    tables get an inferred schema (``schema`` overrides it) and the target as
    it is. Rows whose target is missing are left out and counted. With
    ``holdout > 0`` a random fraction of the rows is kept out of the
    cross-validation and scored at the end; the spec and the model written
    are then fitted on all rows.
    """
    if not 0 <= holdout < 1:
        raise SettingError("holdout must be in [0, 1)")
    if folds < 2:
        raise SettingError("cross-validation needs at least 2 folds")
    if precision_digits is not None and not 1 <= precision_digits <= MAX_PRECISION_DIGITS:
        raise SettingError(f"precision digits must be from 1 to {MAX_PRECISION_DIGITS}")
    table = CsvTable(data, [target], csv_options)
    rows = list(table.rows())
    chosen, reports = choose_recipe(table, rows, target, recipe, schema)
    transform: TargetTransformName = target_transform or (
        "log" if isinstance(chosen, LaptopRecipe) else "none"
    )
    table_target = Target(target, transform)
    missing_tokens = frozenset(
        v.strip().lower() for v in (schema or SchemaChoices()).missing_values
    )
    fields, targets, unlabelled = [], [], []
    for row in rows:
        text = row.cells[target]
        try:
            if text.strip().lower() in missing_tokens:
                unlabelled.append(chosen.derive(row.cells))
                continue
            value = parse_number(target, text, positive=transform == "log")
            fields.append(chosen.derive(row.cells))
        except FieldError as error:
            raise error.at(row, table.path) from None
        targets.append(value)
    skipped = len(unlabelled)
    if len(fields) < folds * 2:
        raise DataError(
            f"only {len(fields)} rows with a target: too few to train and cross-validate",
            path=table.path,
        )
    y_all = table_target.forward(np.asarray(targets, dtype=np.float64))

    def fit(x: NDArray[np.float64], y: NDArray[np.float64]) -> Pipeline:
        pipeline = make_pipeline(StandardScaler(), make_estimator(estimator, params))
        try:
            return pipeline.fit(x, y)
        except InvalidParameterError as error:
            # scikit-learn checks parameter values only when fitting.
            message = " ".join(str(error).split())
            raise SettingError(f"bad parameters for {estimator}: {message[:300]}") from None

    # Scoring: the spec's bounds, categories and fills, and every model scored,
    # come from rows the scored predictions are not made for.
    order = np.random.default_rng(seed).permutation(len(fields))
    held_count = round(len(fields) * holdout)
    held, kept = order[:held_count], np.sort(order[held_count:])
    evaluation_spec = FeatureSpec.fit(
        chosen, [fields[i] for i in kept], table_target, min_category_count=min_category_count
    )
    x_kept = np.array([evaluation_spec.vectorize(fields[i]) for i in kept])
    y_kept = y_all[kept]
    fold_metrics = []
    for train_index, test_index in KFold(folds, shuffle=True, random_state=seed).split(x_kept):
        fitted = fit(x_kept[train_index], y_kept[train_index])
        predicted = np.asarray(fitted.predict(x_kept[test_index]), dtype=np.float64)
        fold_metrics.append(_metrics(table_target, y_kept[test_index], predicted))
    cross_validation = Metrics(
        float(np.mean([m.r2 for m in fold_metrics])),
        float(np.mean([m.mae for m in fold_metrics])),
        float(np.mean([m.rmse for m in fold_metrics])),
        None if transform != "log" else float(np.mean([m.log_r2 for m in fold_metrics])),
    )
    holdout_metrics = None
    if held_count:
        scored = fit(x_kept, y_kept)
        x_held = np.array([evaluation_spec.vectorize(fields[i]) for i in held])
        predicted = np.asarray(scored.predict(x_held), dtype=np.float64)
        holdout_metrics = _metrics(table_target, y_all[held], predicted)

    # The model written: spec and weights from every row with a target.
    spec = FeatureSpec.fit(
        chosen,
        fields,
        table_target,
        frac_bits=frac_bits,
        min_category_count=min_category_count,
        unlabelled=unlabelled,
    )
    pipeline = fit(np.array([spec.vectorize(f) for f in fields]), y_all)
    weights, intercept = _fold_scaling(pipeline)
    # The packing layout is public, so customers can pack queries before they
    # see a result: slots are as wide as the largest input or prediction the
    # declared bounds and these weights allow (an all-zero model still needs
    # room for its inputs).
    capped = dataclasses.replace(spec, precision_digits=precision_digits)
    spec = dataclasses.replace(
        capped, slot_bits=capped.required_slot_bits(list(weights), intercept)
    )
    model = LinearModel(
        spec.spec_id,
        spec.feature_names,
        tuple(float(w) for w in weights),
        intercept,
        type(pipeline[-1]).__name__,
    )
    distinct = {
        name: len({f.categories[name] for f in fields} - {None})
        for name in chosen.categorical_fields
    }
    warnings = _describe(spec, reports, distinct, skipped, target)
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
        warnings,
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

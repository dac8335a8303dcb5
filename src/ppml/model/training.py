"""Server-side training with scikit-learn: a public feature spec and a private model."""

from __future__ import annotations

import dataclasses
import math
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
from ppml.features.recipes import FieldError, GenericRecipe, LaptopRecipe, Recipe, parse_number
from ppml.features.spec import (
    DEFAULT_FRAC_BITS,
    DEFAULT_MIN_CATEGORY_COUNT,
    MAX_PRECISION_DIGITS,
    FeatureSpec,
    Target,
    TargetTransformName,
    UnseenPolicy,
)
from ppml.features.table import CsvTable
from ppml.model.linear import LinearModel

ESTIMATOR_ALIASES = {"linear": "LinearRegression", "ridge": "Ridge", "lasso": "Lasso"}


@dataclass(frozen=True)
class Metrics:
    """Quality of predictions: R^2 and MAE on the model's scale, MAE in target units."""

    r2: float
    mae: float
    mae_target_units: float


@dataclass
class TrainingResult:
    """What ``train`` produces: the public spec, the private model, and how good it is."""

    spec: FeatureSpec
    model: LinearModel
    cross_validation: Metrics
    holdout: Metrics | None
    training_rows: int
    holdout_rows: int
    estimator: Pipeline = field(repr=False)


def make_estimator(name: str, params: dict[str, Any] | None = None) -> RegressorMixin:
    """A scikit-learn linear regressor by class name (or alias: linear, ridge, lasso)."""
    class_name = ESTIMATOR_ALIASES.get(name.lower(), name)
    candidate = getattr(linear_model, class_name, None)
    if not (isinstance(candidate, type) and issubclass(candidate, RegressorMixin)):
        raise SettingError(
            f"{name!r} is not a regressor of sklearn.linear_model "
            "(try LinearRegression, Ridge, Lasso, ElasticNet, HuberRegressor, BayesianRidge)"
        )
    try:
        estimator: RegressorMixin = candidate(**(params or {}))
    except TypeError as error:
        raise SettingError(f"bad parameters for {class_name}: {error}") from None
    return estimator


def choose_recipe(table: CsvTable, target: str, recipe: str = "auto") -> Recipe:
    """The laptop recipe for laptop tables, else the generic one with typed columns."""
    if recipe not in ("auto", "laptops", "generic"):
        raise SettingError("recipe must be auto, laptops or generic")
    has_laptop_columns = all(c in table.columns for c in LaptopRecipe.input_columns)
    if recipe == "laptops" or (recipe == "auto" and has_laptop_columns):
        if not has_laptop_columns:
            missing = [c for c in LaptopRecipe.input_columns if c not in table.columns]
            raise DataError(f"missing laptop columns {missing}", path=table.path)
        return LaptopRecipe()
    candidates = [c for c in table.columns if c != target and c.strip() and c != "Unnamed: 0"]
    numeric = {c: True for c in candidates}
    for row in table.rows():
        for column in candidates:
            if numeric[column]:
                try:
                    parse_number(column, row.cells[column])
                except FieldError:
                    numeric[column] = False
    return GenericRecipe(
        tuple(c for c in candidates if numeric[c]), tuple(c for c in candidates if not numeric[c])
    )


def _metrics(target: Target, truth: NDArray[np.float64], predicted: NDArray[np.float64]) -> Metrics:
    residual = truth - predicted
    total = float(np.sum((truth - truth.mean()) ** 2))
    r2 = 1.0 - float(np.sum(residual**2)) / total if total > 0 else math.nan
    in_units = target.inverse(truth) - target.inverse(predicted)
    return Metrics(r2, float(np.mean(np.abs(residual))), float(np.mean(np.abs(in_units))))


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
    unseen: UnseenPolicy = "ignore",
    frac_bits: int = DEFAULT_FRAC_BITS,
    min_category_count: int = DEFAULT_MIN_CATEGORY_COUNT,
    precision_digits: int | None = None,
) -> TrainingResult:
    """Fit a linear model on a CSV file and evaluate it.

    The laptop data gets its domain recipe and a log target by default; other
    tables use the generic recipe and the target as it is. With
    ``holdout > 0`` a random fraction of the rows is kept out of training
    (and out of the spec's bounds and categories) and scored at the end; the
    cross-validation runs on the training rows.
    """
    if not 0 <= holdout < 1:
        raise SettingError("holdout must be in [0, 1)")
    if precision_digits is not None and not 1 <= precision_digits <= MAX_PRECISION_DIGITS:
        raise SettingError(f"precision digits must be from 1 to {MAX_PRECISION_DIGITS}")
    table = CsvTable(data, required=[target])
    chosen = choose_recipe(table, target, recipe)
    transform: TargetTransformName = target_transform or (
        "log" if isinstance(chosen, LaptopRecipe) else "none"
    )
    table_target = Target(target, transform)
    fields, targets = [], []
    for row in table.rows():
        try:
            fields.append(chosen.derive(row.cells))
            value = parse_number(target, row.cells[target], positive=transform == "log")
        except FieldError as error:
            raise error.at(row, table.path) from None
        targets.append(value)
    if len(fields) < max(folds, 2) * 2:
        raise DataError(f"only {len(fields)} rows: too few to train and cross-validate", path=data)

    order = np.random.default_rng(seed).permutation(len(fields))
    held_count = round(len(fields) * holdout)
    held, kept = order[:held_count], np.sort(order[held_count:])
    spec = FeatureSpec.fit(
        chosen,
        [fields[i] for i in kept],
        table_target,
        unseen=unseen,
        frac_bits=frac_bits,
        min_category_count=min_category_count,
    )
    y_all = table_target.forward(np.asarray(targets, dtype=np.float64))
    x_train = np.array([spec.vectorize(fields[i]) for i in kept])
    y_train = y_all[kept]

    def fresh() -> Pipeline:
        return make_pipeline(StandardScaler(), make_estimator(estimator, params))

    def fit(pipeline: Pipeline, x: NDArray[np.float64], y: NDArray[np.float64]) -> Pipeline:
        try:
            return pipeline.fit(x, y)
        except InvalidParameterError as error:
            # scikit-learn checks parameter values only when fitting.
            message = " ".join(str(error).split())
            raise SettingError(f"bad parameters for {estimator}: {message[:300]}") from None

    fold_metrics = []
    for train_index, test_index in KFold(folds, shuffle=True, random_state=seed).split(x_train):
        fitted = fit(fresh(), x_train[train_index], y_train[train_index])
        predicted = np.asarray(fitted.predict(x_train[test_index]), dtype=np.float64)
        fold_metrics.append(_metrics(table_target, y_train[test_index], predicted))
    cross_validation = Metrics(
        *(
            float(np.mean([getattr(m, name) for m in fold_metrics]))
            for name in Metrics.__dataclass_fields__
        )
    )

    pipeline = fit(fresh(), x_train, y_train)
    weights, intercept = _fold_scaling(pipeline)
    # The packing layout is public, so customers can pack queries before they
    # see a result: slots are as wide as the largest input or prediction the
    # declared bounds and these weights allow (an all-zero model still needs
    # room for its inputs).
    spec = dataclasses.replace(
        spec,
        precision_digits=precision_digits,
        slot_bits=dataclasses.replace(spec, precision_digits=precision_digits).required_slot_bits(
            list(weights), intercept
        ),
    )
    model = LinearModel(
        spec.spec_id,
        spec.feature_names,
        tuple(float(w) for w in weights),
        intercept,
        type(pipeline[-1]).__name__,
    )
    holdout_metrics = None
    if held_count:
        # Held-out rows may hold unseen categories: vectorize without the error policy.
        lenient = dataclasses.replace(spec, unseen="ignore")
        x_held = np.array([lenient.vectorize(fields[i]) for i in held])
        holdout_metrics = _metrics(table_target, y_all[held], model.predict(x_held))
    return TrainingResult(
        spec, model, cross_validation, holdout_metrics, len(kept), held_count, pipeline
    )

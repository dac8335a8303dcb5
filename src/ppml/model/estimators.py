"""The scikit-learn estimators ppml serves, and what each one's scores mean.

A linear estimator is served exactly when its predictions are an output
function of ``X @ coef_.T + intercept_``. This module is the one place that
knows, for each supported estimator class, whether it is a regressor or a
classifier and which output function of :mod:`ppml.features.outputs` turns its
scores into what its ``predict``/``predict_proba`` return. Training and model
import both read estimators through :func:`linear_form`; supporting a new
estimator means adding it here.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn import linear_model, svm
from sklearn.base import BaseEstimator

from ppml.errors import SettingError
from ppml.features.outputs import Task

FunctionOf = Callable[[Any, int], str]
"""``function(fitted_or_unfitted_estimator, classes)``: the output function's name."""


def _identity(estimator: Any, classes: int) -> str:
    return "identity"


def _log_link(estimator: Any, classes: int) -> str:
    return "exp"


def _tweedie_link(estimator: Any, classes: int) -> str:
    # scikit-learn's "auto" link is the identity for power <= 0 (normal), else log.
    link = estimator.get_params()["link"]
    if link == "auto":
        link = "identity" if estimator.get_params()["power"] <= 0 else "log"
    return "exp" if link == "log" else "identity"


def _logistic(estimator: Any, classes: int) -> str:
    if classes == 2:
        return "sigmoid"
    # Older scikit-learn releases can fit several classes one against the rest
    # (multi_class="ovr", or "auto" with liblinear), and normalise their sigmoids.
    params = estimator.get_params()
    multi_class = params.get("multi_class", "multinomial")
    if multi_class == "ovr" or (multi_class == "auto" and params.get("solver") == "liblinear"):
        return "ovr"
    return "softmax"


def _decision(estimator: Any, classes: int) -> str:
    return "decision"


def _sgd_classifier(estimator: Any, classes: int) -> str:
    loss = estimator.get_params()["loss"]
    if loss == "log_loss":
        # Several classes are fitted one against the rest, and their sigmoids normalised.
        return "sigmoid" if classes == 2 else "ovr"
    if loss == "modified_huber":
        return "modified_huber"
    return "decision"


@dataclass(frozen=True)
class EstimatorKind:
    """A supported estimator class, its task and its output function."""

    cls: type[BaseEstimator]
    task: Task
    function: FunctionOf

    @property
    def name(self) -> str:
        """The class name users give (``--estimator``)."""
        return self.cls.__name__


_KINDS = [
    EstimatorKind(linear_model.LinearRegression, "regression", _identity),
    EstimatorKind(linear_model.Ridge, "regression", _identity),
    EstimatorKind(linear_model.RidgeCV, "regression", _identity),
    EstimatorKind(linear_model.Lasso, "regression", _identity),
    EstimatorKind(linear_model.LassoCV, "regression", _identity),
    EstimatorKind(linear_model.ElasticNet, "regression", _identity),
    EstimatorKind(linear_model.ElasticNetCV, "regression", _identity),
    EstimatorKind(linear_model.Lars, "regression", _identity),
    EstimatorKind(linear_model.LassoLars, "regression", _identity),
    EstimatorKind(linear_model.LassoLarsIC, "regression", _identity),
    EstimatorKind(linear_model.OrthogonalMatchingPursuit, "regression", _identity),
    EstimatorKind(linear_model.BayesianRidge, "regression", _identity),
    EstimatorKind(linear_model.ARDRegression, "regression", _identity),
    EstimatorKind(linear_model.HuberRegressor, "regression", _identity),
    EstimatorKind(linear_model.QuantileRegressor, "regression", _identity),
    EstimatorKind(linear_model.TheilSenRegressor, "regression", _identity),
    EstimatorKind(linear_model.SGDRegressor, "regression", _identity),
    EstimatorKind(linear_model.MultiTaskLasso, "regression", _identity),
    EstimatorKind(linear_model.MultiTaskElasticNet, "regression", _identity),
    EstimatorKind(svm.LinearSVR, "regression", _identity),
    EstimatorKind(linear_model.PoissonRegressor, "regression", _log_link),
    EstimatorKind(linear_model.GammaRegressor, "regression", _log_link),
    EstimatorKind(linear_model.TweedieRegressor, "regression", _tweedie_link),
    EstimatorKind(linear_model.LogisticRegression, "classification", _logistic),
    EstimatorKind(linear_model.LogisticRegressionCV, "classification", _logistic),
    EstimatorKind(linear_model.SGDClassifier, "classification", _sgd_classifier),
    EstimatorKind(linear_model.RidgeClassifier, "classification", _decision),
    EstimatorKind(linear_model.RidgeClassifierCV, "classification", _decision),
    EstimatorKind(linear_model.Perceptron, "classification", _decision),
    EstimatorKind(svm.LinearSVC, "classification", _decision),
]
ESTIMATORS = {kind.name: kind for kind in _KINDS}
ALIASES = {
    "linear": "LinearRegression",
    "ridge": "Ridge",
    "lasso": "Lasso",
    "logistic": "LogisticRegression",
    "poisson": "PoissonRegressor",
    "gamma": "GammaRegressor",
    "tweedie": "TweedieRegressor",
    "svm": "LinearSVC",
}
DEFAULT_ESTIMATOR: dict[Task, str] = {
    "regression": "LinearRegression",
    "classification": "LogisticRegression",
}


def supported(task: Task | None = None) -> list[str]:
    """Names of the supported estimators (of one task), in a stable order."""
    return [kind.name for kind in _KINDS if task is None or kind.task == task]


def kind_of(estimator: Any) -> EstimatorKind:
    """The kind of an estimator object, or a :class:`SettingError` listing what is supported."""
    kind = ESTIMATORS.get(type(estimator).__name__)
    if kind is None or type(estimator) is not kind.cls:
        raise SettingError(
            f"{type(estimator).__name__} is not a linear model ppml can compute exactly; "
            f"supported: {', '.join(supported())}"
        )
    return kind


def kind_named(name: str) -> EstimatorKind:
    """The kind of an estimator by class name or alias (case-insensitive aliases)."""
    kind = ESTIMATORS.get(ALIASES.get(name.lower(), name))
    if kind is None:
        raise SettingError(
            f"{name!r} is not a linear model ppml can compute exactly; "
            f"supported: {', '.join(supported())}"
        )
    return kind


def make_estimator(name: str, params: dict[str, Any] | None = None) -> BaseEstimator:
    """A new supported estimator by name, with ``params`` checked against its parameters."""
    kind = kind_named(name)
    known = set(kind.cls().get_params())
    unknown = sorted(set(params or {}) - known)
    if unknown:
        raise SettingError(
            f"{kind.name} has no parameter {', '.join(map(repr, unknown))} "
            f"(its parameters: {', '.join(sorted(known))})"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        estimator: BaseEstimator = kind.cls(**(params or {}))
    return estimator


@dataclass(frozen=True)
class LinearForm:
    """A fitted estimator as ppml computes it: ``scores = X @ coefficients.T + intercepts``.

    ``coefficients`` is (k, d) and ``intercepts`` (k,); ``classes`` are the
    labels as text in score order (empty for a regressor).
    """

    coefficients: NDArray[np.float64]
    intercepts: NDArray[np.float64]
    task: Task
    function: str
    classes: tuple[str, ...]
    estimator: str


def linear_form(fitted: Any) -> LinearForm:
    """The scores and output function of a fitted supported estimator."""
    kind = kind_of(fitted)
    coef = getattr(fitted, "coef_", None)
    if coef is None:
        raise SettingError(f"{kind.name} is not fitted")
    coefficients = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    raw_intercept = getattr(fitted, "intercept_", 0.0)
    intercepts = np.ravel(np.asarray(raw_intercept, dtype=np.float64))
    if intercepts.size == 1 and coefficients.shape[0] > 1:
        intercepts = np.repeat(intercepts, coefficients.shape[0])
    if intercepts.shape[0] != coefficients.shape[0]:
        raise SettingError(f"{kind.name}: coef_ and intercept_ disagree on the number of scores")
    classes: tuple[str, ...] = ()
    if kind.task == "classification":
        classes = tuple(_label_text(c) for c in fitted.classes_)
        if len(set(classes)) != len(classes):
            raise SettingError(f"{kind.name}: two classes have the same text")
    function = kind.function(fitted, len(classes))
    if not (np.all(np.isfinite(coefficients)) and np.all(np.isfinite(intercepts))):
        raise SettingError(f"{kind.name}: the fitted coefficients are not all finite")
    return LinearForm(coefficients, intercepts, kind.task, function, classes, kind.name)


def _label_text(label: Any) -> str:
    """A class label as text: integers without a decimal point, booleans as true/false."""
    if isinstance(label, bool | np.bool_):
        return "true" if label else "false"
    if isinstance(label, float | np.floating) and float(label).is_integer():
        return str(int(label))
    return str(label)

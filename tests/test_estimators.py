"""Every supported estimator, end to end: decrypted scores equal scikit-learn's own.

Each case trains one estimator of the registry on a public data set bundled
with scikit-learn, encrypts a few rows of that data set under a small test
key, lets the server compute the model on the ciphertexts, decrypts, and
compares with the fitted pipeline that ``train`` returns:

- scores with ``decision_function`` (classifiers), ``predict`` (identity-link
  regressors) or the linear predictor (log-link regressors), to 1e-9 relative;
- predictions in target units with ``predict``, to 1e-9 relative;
- probabilities with ``predict_proba``, to 1e-9 absolute;
- labels with ``predict``, exactly.

The cases cover ``supported()`` exactly, so an estimator added to the registry
without a case here fails ``test_every_supported_estimator_has_a_case``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_linnerud
from sklearn.ensemble import RandomForestRegressor

from ppml.crypto import KeyPolicy, PrivateKey, PublicKey
from ppml.errors import SettingError
from ppml.features import FeatureSpec
from ppml.model.estimators import ALIASES, linear_form, make_estimator, supported
from ppml.model.linear import LinearModel
from ppml.model.training import TrainingResult, train
from ppml.roles import customer, server

TEST_POLICY = KeyPolicy(min_bits=512, require_proof=True)
QUERY_ROWS = 20
"""Rows of each data set sent through encryption (the first ones of its CSV file)."""
SEED = 0

# Small iteration budgets keep the file fast; a fit that stops early is still a
# fitted linear model, and the comparison is with that same fitted model.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@dataclass(frozen=True)
class Case:
    """One estimator trained on one data set, and the output function it must get."""

    estimator: str
    data: str
    function: str
    params: dict[str, Any] = field(default_factory=dict)
    label: str = ""

    @property
    def id(self) -> str:
        return "-".join(filter(None, (self.estimator, self.data, self.label)))


# Data sets: diabetes (regression, positive target), linnerud (three targets),
# breast cancer (two classes), iris (three classes).
CASES = [
    # Regressors with the identity link, on diabetes.
    Case("LinearRegression", "diabetes", "identity"),
    Case("Ridge", "diabetes", "identity", {"alpha": 3.0}),
    Case("RidgeCV", "diabetes", "identity", {"alphas": [0.1, 1.0, 10.0]}),
    Case("Lasso", "diabetes", "identity", {"alpha": 0.5}),
    Case("LassoCV", "diabetes", "identity", {"cv": 3}),
    Case("ElasticNet", "diabetes", "identity", {"alpha": 0.2, "l1_ratio": 0.5}),
    Case("ElasticNetCV", "diabetes", "identity", {"cv": 3, "l1_ratio": [0.2, 0.8]}),
    Case("Lars", "diabetes", "identity", {"n_nonzero_coefs": 6}),
    Case("LassoLars", "diabetes", "identity", {"alpha": 0.05}),
    Case("LassoLarsIC", "diabetes", "identity", {"criterion": "bic"}),
    Case("OrthogonalMatchingPursuit", "diabetes", "identity", {"n_nonzero_coefs": 5}),
    Case("BayesianRidge", "diabetes", "identity"),
    Case("ARDRegression", "diabetes", "identity"),
    Case("HuberRegressor", "diabetes", "identity", {"max_iter": 500}),
    Case("QuantileRegressor", "diabetes", "identity", {"quantile": 0.7, "alpha": 0.1}),
    Case(
        "TheilSenRegressor", "diabetes", "identity", {"max_subpopulation": 300, "random_state": 0}
    ),
    Case("SGDRegressor", "diabetes", "identity", {"max_iter": 50, "random_state": 0}),
    Case("LinearSVR", "diabetes", "identity", {"C": 10.0, "max_iter": 5000, "random_state": 0}),
    # Generalised linear models: scores on the log scale, or the identity for power 0.
    Case("PoissonRegressor", "diabetes", "exp", {"alpha": 0.1}),
    Case("GammaRegressor", "diabetes", "exp", {"alpha": 0.1}),
    Case("TweedieRegressor", "diabetes", "exp", {"power": 1.5, "alpha": 0.1}, "power1.5"),
    Case("TweedieRegressor", "diabetes", "identity", {"power": 0.0, "alpha": 0.1}, "power0"),
    Case(
        "TweedieRegressor",
        "diabetes",
        "exp",
        {"power": 0.0, "link": "log", "alpha": 0.1},
        "power0-log",
    ),
    # Several targets at once, on linnerud.
    Case("LinearRegression", "linnerud", "identity"),
    Case("Ridge", "linnerud", "identity", {"alpha": 1.0}),
    Case("MultiTaskLasso", "linnerud", "identity", {"alpha": 0.5}),
    Case("MultiTaskElasticNet", "linnerud", "identity", {"alpha": 0.5, "l1_ratio": 0.5}),
    # Two classes, on breast cancer: one score per row.
    Case("LogisticRegression", "cancer", "sigmoid"),
    Case("LogisticRegressionCV", "cancer", "sigmoid", {"Cs": 3, "cv": 3}),
    Case("SGDClassifier", "cancer", "sigmoid", {"loss": "log_loss", "random_state": 0}, "log"),
    Case(
        "SGDClassifier",
        "cancer",
        "modified_huber",
        {"loss": "modified_huber", "random_state": 0},
        "modified_huber",
    ),
    Case("SGDClassifier", "cancer", "decision", {"loss": "hinge", "random_state": 0}, "hinge"),
    Case("RidgeClassifier", "cancer", "decision"),
    Case("RidgeClassifierCV", "cancer", "decision", {"alphas": [0.1, 1.0, 10.0]}),
    Case("Perceptron", "cancer", "decision", {"random_state": 0}),
    Case("LinearSVC", "cancer", "decision", {"max_iter": 5000, "random_state": 0}),
    # Three classes, on iris: one score per class.
    Case("LogisticRegression", "iris", "softmax"),
    Case("LogisticRegressionCV", "iris", "softmax", {"Cs": 3, "cv": 3}),
    Case("SGDClassifier", "iris", "ovr", {"loss": "log_loss", "random_state": 0}, "log"),
    Case(
        "SGDClassifier",
        "iris",
        "modified_huber",
        {"loss": "modified_huber", "random_state": 0},
        "modified_huber",
    ),
    Case("SGDClassifier", "iris", "decision", {"loss": "hinge", "random_state": 0}, "hinge"),
    Case("RidgeClassifier", "iris", "decision"),
    Case("RidgeClassifierCV", "iris", "decision", {"alphas": [0.1, 1.0, 10.0]}),
    Case("Perceptron", "iris", "decision", {"random_state": 0}),
    Case("LinearSVC", "iris", "decision", {"max_iter": 5000, "random_state": 0}),
]
# The label of a case, where one estimator has several on a data set, tells them apart.
assert len({case.id for case in CASES}) == len(CASES)

TARGETS = {
    "diabetes": "progression",
    "linnerud": ["Weight", "Waist", "Pulse"],
    "cancer": "diagnosis",
    "iris": "species",
}


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _data_sets(folder: Path) -> dict[str, Path]:
    """The public data sets as CSV files, as a server would receive them."""
    diabetes = load_diabetes(scaled=False)
    linnerud = load_linnerud()
    cancer = load_breast_cancer()
    iris = load_iris()
    # Breast cancer: the first 8 measurements of the first 150 tumours (83 malignant,
    # 67 benign), with the diagnosis as text.
    cancer_columns = [name.replace(" ", "_") for name in cancer.feature_names[:8]]
    return {
        "diabetes": _write_csv(
            folder / "diabetes.csv",
            [*diabetes.feature_names, "progression"],
            [[*row, y] for row, y in zip(diabetes.data.tolist(), diabetes.target, strict=True)],
        ),
        "linnerud": _write_csv(
            folder / "linnerud.csv",
            [*linnerud.feature_names, *linnerud.target_names],
            [
                [*x, *y]
                for x, y in zip(linnerud.data.tolist(), linnerud.target.tolist(), strict=True)
            ],
        ),
        "cancer": _write_csv(
            folder / "cancer.csv",
            [*cancer_columns, "diagnosis"],
            [
                [*row[:8], cancer.target_names[y]]
                for row, y in zip(cancer.data[:150].tolist(), cancer.target[:150], strict=True)
            ],
        ),
        "iris": _write_csv(
            folder / "iris.csv",
            [name.replace(" (cm)", "").replace(" ", "_") for name in iris.feature_names]
            + ["species"],
            [
                [*row, iris.target_names[y]]
                for row, y in zip(iris.data.tolist(), iris.target, strict=True)
            ],
        ),
    }


@pytest.fixture(scope="module")
def data_sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _data_sets(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def queries(
    data_sets: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """The first rows of each data set: what the customer encrypts."""
    folder = tmp_path_factory.mktemp("queries")
    out = {}
    for name, path in data_sets.items():
        lines = path.read_text().splitlines(keepends=True)
        out[name] = folder / f"{name}.csv"
        out[name].write_text("".join(lines[: QUERY_ROWS + 1]))
    return out


def _train(case: Case, data: Path) -> TrainingResult:
    return train(
        data,
        TARGETS[case.data],
        estimator=case.estimator,
        params=case.params or None,
        folds=2,
        holdout=0.2,
        seed=SEED,
    )


def _round_trip(
    result: TrainingResult, rows: Path, keypair: tuple[PublicKey, PrivateKey], folder: Path
) -> tuple[NDArray[np.float64], list[tuple[Any, ...]]]:
    """Encrypt ``rows`` at the customer, compute at the server, decrypt: (scores, predictions)."""
    public_key, private_key = keypair
    spec, model = result.spec, result.model
    customer.encrypt_file(public_key, spec, rows, folder / "query.jsonl", jobs=1)
    server.predict_file(
        spec, model, folder / "query.jsonl", folder / "result.jsonl", jobs=1, policy=TEST_POLICY
    )
    options: dict[str, Any] = {"query": folder / "query.jsonl", "spec": spec, "jobs": 1}
    scores = np.vstack(
        list(customer.decrypt_scores(private_key, folder / "result.jsonl", **options))
    )
    predictions = list(
        customer.decrypt_predictions(private_key, folder / "result.jsonl", **options)
    )
    return scores, predictions


def _floor(
    spec: FeatureSpec, model: LinearModel, mean: NDArray[np.float64], x: NDArray[np.float64]
) -> NDArray[np.float64]:
    """The absolute error (rows x k) that the fixed-point encoding and float64 allow.

    The customer rounds each input to a multiple of 2^-f (f = spec.frac_bits, 40
    by default), the server each weight to 2^-g (g = spec.weight_frac_bits, 48)
    and each intercept to 2^-(f+g); its integer arithmetic is exact and the
    decoding is correctly rounded (within the 1e-9 relative tolerance). So
    |score error| <= sum_j (|w_j| 2^-(f+1) + |x_j| 2^-(g+1) + 2^-(f+g+2)) + 2^-(f+g+1),
    and the observed errors reach most of this bound when one weight dominates.
    The plaintext side rounds too: scikit-learn scales the inputs before its dot
    product and training folds the scaler into the weights, each rounding terms
    as large as |w||x|, |w||mean| and |b| at 2^-52 relative; 8 (d + 1) times
    that bounds it. A score near 0 is therefore equal to within this floor (about
    1e-10 on these data sets), not relatively.
    """
    weights = np.abs(np.asarray(model.weights, dtype=np.float64))
    intercepts = np.abs(np.asarray(model.intercepts, dtype=np.float64))
    f, g = spec.frac_bits, spec.weight_frac_bits
    d = weights.shape[1]
    encoding = (
        weights.sum(axis=1) * 2.0 ** -(f + 1)
        + np.abs(x).sum(axis=1, keepdims=True) * 2.0 ** -(g + 1)
        + (d * 2.0 ** -(f + g + 2) + 2.0 ** -(f + g + 1))
    )
    magnitude = np.abs(x) @ weights.T + weights @ np.abs(mean) + intercepts
    return np.asarray(encoding + 8 * (d + 1) * np.finfo(np.float64).eps * magnitude)


def _assert_close(
    actual: Any, desired: Any, *, rtol: float, atol: float | NDArray[np.float64]
) -> None:
    """|actual - desired| <= atol + rtol |desired| everywhere (``atol`` may vary by entry)."""
    actual = np.asarray(actual, dtype=np.float64)
    desired = np.asarray(desired, dtype=np.float64)
    assert actual.shape == desired.shape
    excess = np.abs(actual - desired) - (atol + rtol * np.abs(desired))
    worst = np.unravel_index(np.argmax(excess), excess.shape)
    assert np.all(excess <= 0), (
        f"at {worst}: {actual[worst]!r} for {desired[worst]!r} "
        f"(allowed {np.broadcast_to(atol, excess.shape)[worst]!r} + {rtol} relative)"
    )


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_decrypted_scores_equal_scikit_learn(
    case: Case,
    data_sets: dict[str, Path],
    queries: dict[str, Path],
    keypair: tuple[PublicKey, PrivateKey],
    tmp_path: Path,
) -> None:
    result = _train(case, data_sets[case.data])
    spec, pipeline = result.spec, result.estimator
    output = spec.output
    assert result.model.estimator == case.estimator
    assert output.function == case.function

    scores, predictions = _round_trip(result, queries[case.data], keypair, tmp_path)
    x = customer.read_inputs(spec, queries[case.data])
    assert scores.shape == (QUERY_ROWS, output.scores)
    floor = _floor(spec, result.model, pipeline[0].mean_, x)
    # The floor is a rounding error (about 1e-10 here), not a loose tolerance.
    assert np.all(floor < 1e-8)

    if output.task == "regression":
        in_units = np.asarray(pipeline.predict(x), dtype=np.float64).reshape(scores.shape)
        if output.function == "exp":
            # Log link: the scores are the linear predictor, predict() its exponential, whose
            # relative error is the scores' absolute one.
            fitted = pipeline[-1]
            linear = pipeline[0].transform(x) @ np.atleast_2d(fitted.coef_).T + fitted.intercept_
            _assert_close(scores, linear.reshape(scores.shape), rtol=1e-9, atol=floor)
            unit_floor = floor * np.abs(in_units)
        else:
            _assert_close(scores, in_units, rtol=1e-9, atol=floor)
            unit_floor = floor
        _assert_close(output.inverse_link(scores), in_units, rtol=1e-9, atol=unit_floor)
        _assert_close(predictions, in_units, rtol=1e-9, atol=unit_floor)
        return

    reference = np.asarray(pipeline.decision_function(x), dtype=np.float64)
    _assert_close(scores, reference.reshape(scores.shape), rtol=1e-9, atol=floor)
    labels = [str(label) for label in pipeline.predict(x)]
    assert output.labels(scores) == labels
    assert [row[0] for row in predictions] == labels
    # Probabilities exactly where scikit-learn has them.
    assert output.has_probabilities == hasattr(pipeline, "predict_proba")
    if output.has_probabilities:
        expected = pipeline.predict_proba(x)
        _assert_close(output.probabilities(scores), expected, rtol=0, atol=1e-9)
        _assert_close([row[1:] for row in predictions], expected, rtol=0, atol=1e-9)
    else:
        _assert_close([row[1:] for row in predictions], scores, rtol=0, atol=0)


def test_every_supported_estimator_has_a_case() -> None:
    assert {case.estimator for case in CASES} == set(supported())


def test_every_classifier_is_tested_on_two_and_on_three_classes() -> None:
    for name in supported("classification"):
        assert {case.data for case in CASES if case.estimator == name} == {"cancer", "iris"}


def test_aliases_name_supported_estimators() -> None:
    assert set(ALIASES.values()) <= set(supported())
    for alias, name in ALIASES.items():
        assert type(make_estimator(alias.upper())).__name__ == name


def test_a_non_linear_estimator_is_refused(data_sets: dict[str, Path]) -> None:
    listed = "supported: " + ", ".join(supported())
    with pytest.raises(SettingError, match="RandomForestRegressor") as error:
        train(data_sets["diabetes"], "progression", estimator="RandomForestRegressor")
    assert listed in str(error.value)
    # A fitted one, as a model import would meet it, is refused the same way.
    x, y = load_diabetes(return_X_y=True)
    forest = RandomForestRegressor(n_estimators=2, max_depth=2, random_state=SEED).fit(x, y)
    with pytest.raises(SettingError, match="RandomForestRegressor") as error:
        linear_form(forest)
    assert listed in str(error.value)

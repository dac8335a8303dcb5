"""Server-side training: quality on the laptops, generic tables, estimators and outputs."""

from __future__ import annotations

import csv
import stat
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_diabetes

from ppml.datasets import laptops_csv
from ppml.errors import DataError, SettingError
from ppml.features import GenericRecipe, LaptopRecipe
from ppml.model import LinearModel
from ppml.model.training import Metrics, TrainingResult, make_estimator, train


@pytest.fixture(scope="module")
def laptops() -> TrainingResult:
    return train(laptops_csv(), "Price")


def test_laptop_model_quality(laptops: TrainingResult) -> None:
    assert isinstance(laptops.spec.recipe, LaptopRecipe)
    assert laptops.spec.output.function == "exp"
    assert laptops.cross_validation.log_r2 is not None
    assert laptops.cross_validation.log_r2 >= 0.83
    assert laptops.holdout is not None and laptops.holdout.log_r2 is not None
    assert laptops.holdout.log_r2 >= 0.8
    # Scored on held-out rows, then refitted on every row.
    assert laptops.evaluation_rows + laptops.holdout_rows == laptops.training_rows == 1303
    # Collinear indicators (every Apple runs macOS) must not blow the weights up.
    assert np.max(np.abs(laptops.model.weights)) < 100


def test_folded_weights_reproduce_the_pipeline(laptops: TrainingResult) -> None:
    from ppml.roles.customer import read_inputs

    inputs = read_inputs(laptops.spec, laptops_csv())
    np.testing.assert_allclose(
        laptops.model.decision_function(inputs)[:, 0], laptops.estimator.predict(inputs), rtol=1e-12
    )


def test_holdout_zero_uses_every_row() -> None:
    result = train(laptops_csv(), "Price", holdout=0)
    assert result.training_rows == 1303 and result.holdout is None
    assert (result.cross_validation.log_r2 or 0.0) >= 0.83


@pytest.mark.parametrize("name", ["Ridge", "ridge", "Lasso", "HuberRegressor", "BayesianRidge"])
def test_other_estimators(name: str) -> None:
    params = (
        {"alpha": 1e-4}
        if name == "Lasso"
        else {"max_iter": 1000}
        if name == "HuberRegressor"
        else None
    )
    result = train(laptops_csv(), "Price", estimator=name, params=params, holdout=0.2)
    assert (result.cross_validation.log_r2 or 0.0) > 0.8
    assert result.model.estimator.lower() == make_estimator(name).__class__.__name__.lower()


@pytest.mark.parametrize("name", ["RandomForestRegressor", "LogisticRegression__x", "os.system"])
def test_unknown_estimators_are_refused(name: str) -> None:
    with pytest.raises(SettingError):
        make_estimator(name)


def test_bad_settings() -> None:
    with pytest.raises(SettingError, match=r"Ridge has no parameter 'nonsense' .*alpha"):
        make_estimator("Ridge", {"nonsense": 1})
    with pytest.raises(SettingError, match="holdout"):
        train(laptops_csv(), "Price", holdout=1.5)


def write_diabetes(path: Path) -> None:
    data = load_diabetes()
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*data.feature_names, "progression"])
        for features, target in zip(data.data, data.target, strict=True):
            writer.writerow([*(repr(float(v)) for v in features), repr(float(target))])


def test_generic_numeric_table(tmp_path: Path) -> None:
    write_diabetes(tmp_path / "diabetes.csv")
    result = train(tmp_path / "diabetes.csv", "progression")
    assert isinstance(result.spec.recipe, GenericRecipe)
    assert result.spec.output.function == "identity"
    assert np.shape(result.model.weights) == (1, 10)
    assert 0.3 < result.cross_validation.r2 < 0.6  # the data set's known difficulty


def test_generic_table_with_text_columns(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    path = tmp_path / "shop.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["size", "colour", "price"])
        for _ in range(200):
            size, colour = rng.uniform(1, 10), rng.choice(["red", "green", "blue"])
            bonus = {"red": 5.0, "green": 0.0, "blue": -3.0}[colour]
            writer.writerow([size, colour, 2 * size + bonus + rng.normal(0, 0.1)])
    result = train(path, "price", min_category_count=1)
    assert result.spec.recipe == GenericRecipe.of(("size",), ("colour",), fill=True)
    weights = dict(zip(result.model.feature_names, result.model.weights[0], strict=True))
    assert weights["size"] == pytest.approx(2.0, abs=0.05)
    assert weights["colour=red"] - weights["colour=blue"] == pytest.approx(8.0, abs=0.1)


def test_bad_training_data(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("x,y\n" + "".join(f"{i},{i}\n" for i in range(20)) + "3,lots\n")
    with pytest.raises(DataError, match=r"row 21 \(line 22\), column 'y': cannot read 'lots'"):
        train(path, "y")
    with pytest.raises(DataError, match="missing column 'price'"):
        train(path, "price")


def test_model_file(tmp_path: Path, laptops: TrainingResult) -> None:
    laptops.model.save(tmp_path / "model.json")
    assert stat.filemode((tmp_path / "model.json").stat().st_mode) == "-rw-------"
    assert LinearModel.load(tmp_path / "model.json") == laptops.model


def test_a_parameter_value_scikit_learn_refuses_is_a_setting_error() -> None:
    with pytest.raises(SettingError, match="bad parameters for Ridge: The 'alpha' parameter"):
        train(laptops_csv(), "Price", estimator="Ridge", params={"alpha": "[[[[[["})


@pytest.mark.parametrize("name", ["PoissonRegressor", "GammaRegressor"])
def test_log_link_models_are_scored_in_target_units(tmp_path: Path, name: str) -> None:
    """Found once: the metrics applied exp() to predict(), itself already exp(X w + b)."""
    write_diabetes(tmp_path / "diabetes.csv")
    result = train(tmp_path / "diabetes.csv", "progression", estimator=name, params={"alpha": 0.1})
    assert result.spec.output.function == "exp"
    assert isinstance(result.cross_validation, Metrics)
    assert 0.3 < result.cross_validation.r2 < 0.6
    assert 30 < result.cross_validation.mae < 60


def test_a_few_words_among_numbers_are_typos_not_classes(tmp_path: Path) -> None:
    path = tmp_path / "typo.csv"
    path.write_text("x,y\n" + "".join(f"{i},{i * 1.5}\n" for i in range(30)) + "3,n/a?\n")
    with pytest.raises(DataError, match=r"row 31 \(line 32\), column 'y': cannot read 'n/a\?'"):
        train(path, "y")


def test_a_class_the_holdout_leaves_too_few_rows_of_is_refused(tmp_path: Path) -> None:
    """Five rows pass a 5-fold check, but the stratified holdout takes one of them."""
    path = tmp_path / "rare.csv"
    labels = ["common"] * 60 + ["rare"] * 5
    path.write_text("x,label\n" + "".join(f"{i},{label}\n" for i, label in enumerate(labels)))
    with pytest.raises(DataError, match=r"'rare' have fewer than 5 rows left after the holdout"):
        train(path, "label")
    assert train(path, "label", holdout=0).spec.output.classes == ("common", "rare")


def test_a_refusal_lists_a_few_classes_not_all(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text("x,y\n" + "".join(f"{i},{i}\n" for i in range(400)))
    with pytest.raises(DataError) as refused:
        train(path, "y", task="classification")
    assert "and 390 more" in str(refused.value) and len(str(refused.value)) < 400

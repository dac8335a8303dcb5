"""``ppml model import``: models trained elsewhere, served as their own predictions say.

Each model is fitted here on the model inputs of a spec that ``ppml train``
wrote, saved with skops or converted with skl2onnx, imported, and compared
with the original estimator's ``predict_proba`` or ``predict``.
"""

from __future__ import annotations

import csv
import io
import json
import pickle
import stat
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import onnx
import pytest
import skops.io
from numpy.typing import NDArray
from onnx import TensorProto, helper
from skl2onnx import to_onnx
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge, SGDClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MaxAbsScaler,
    MinMaxScaler,
    PolynomialFeatures,
    StandardScaler,
)
from sklearn.tree import DecisionTreeClassifier

from ppml.cli.main import main
from ppml.datasets import iris_csv
from ppml.errors import FileFormatError, SettingError, SpecMismatchError
from ppml.features import FeatureSpec
from ppml.model.imports import ImportedModel, import_model
from ppml.model.linear import LinearModel
from ppml.model.training import train
from ppml.roles.customer import read_inputs

# float32 keeps 24 significant bits: rounding a float64 weight to it moves it
# by at most 2^-24 of its value (round to nearest).
FLOAT32_UNIT_ROUNDOFF = 2.0**-24


@dataclass(frozen=True)
class Data:
    """A table, the spec ``ppml train`` wrote for it, its model inputs and its target."""

    csv: Path
    spec_path: Path
    spec: FeatureSpec
    x: NDArray[np.float64]
    y: NDArray[Any]


def _write_csv(path: Path, names: Sequence[str], x: NDArray[Any], target: str, y: Any) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*names, target])
        for row, value in zip(x, y, strict=True):
            writer.writerow([*(repr(float(v)) for v in row), value])
    return path


def _data(folder: Path, table: Path, target: str) -> Data:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec = train(table, target, holdout=0, folds=2).spec
    spec_path = folder / "features.json"
    spec.save(spec_path)
    with open(table, newline="") as handle:
        y = np.array([row[target] for row in csv.DictReader(handle)])
    return Data(table, spec_path, spec, read_inputs(spec, table), y)


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory) -> Data:
    """Iris: 4 model inputs, 3 species."""
    return _data(tmp_path_factory.mktemp("iris"), iris_csv(), "species")


@pytest.fixture(scope="module")
def cancer(tmp_path_factory: pytest.TempPathFactory) -> Data:
    """Breast cancer: 30 model inputs, 2 diagnoses."""
    folder = tmp_path_factory.mktemp("cancer")
    data = load_breast_cancer()
    labels = data.target_names[data.target]
    table = _write_csv(folder / "cancer.csv", data.feature_names, data.data, "diagnosis", labels)
    return _data(folder, table, "diagnosis")


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory: pytest.TempPathFactory) -> Data:
    """Diabetes: 10 model inputs, a numeric target."""
    folder = tmp_path_factory.mktemp("diabetes")
    data = load_diabetes()
    table = _write_csv(folder / "d.csv", data.feature_names, data.data, "progression", data.target)
    return _data(folder, table, "progression")


def _skops(model: Any, path: Path) -> Path:
    skops.io.dump(model, path)
    return path


def _onnx(model: Any, x: NDArray[np.float64], path: Path) -> Path:
    path.write_bytes(to_onnx(model, x[:1].astype(np.float32)).SerializeToString())
    return path


def _probabilities(imported: ImportedModel, x: NDArray[np.float64]) -> NDArray[np.float64]:
    """What a customer decrypts and turns into probabilities, computed in the clear."""
    return imported.spec.output.probabilities(imported.model.decision_function(x))


def _float32_bound(weights: NDArray[np.float64], intercepts: Any, x: NDArray[np.float64]) -> float:
    """The most that rounding every weight and intercept to float32 can move any score.

    Softmax and sigmoid probabilities move by at most half the largest change
    of the scores (their derivatives sum to at most 1/2), so this bounds the
    probabilities too.
    """
    magnitude = np.abs(x) @ np.abs(np.atleast_2d(weights)).T + np.abs(np.ravel(intercepts))
    return float(FLOAT32_UNIT_ROUNDOFF * magnitude.max()) + 1e-12


def _unfitted() -> LogisticRegression:
    # Newton steps converge in a few iterations, on unscaled inputs too.
    return LogisticRegression(solver="newton-cholesky")


def _logistic(x: NDArray[np.float64], y: NDArray[Any]) -> LogisticRegression:
    return _unfitted().fit(x, y)


# --- the models are served as the original estimators predict -----------------------------


@pytest.mark.parametrize("name", ["iris", "cancer"])
def test_skops_logistic_regression_is_exact(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    data: Data = request.getfixturevalue(name)
    fitted = _logistic(data.x, data.y)
    imported = import_model(_skops(fitted, tmp_path / "m.skops"), data.spec)
    output = imported.spec.output
    assert output.classes == tuple(fitted.classes_)
    assert output.function == ("softmax" if len(fitted.classes_) > 2 else "sigmoid")
    assert imported.model.scores == output.scores == (1 if name == "cancer" else 3)
    assert imported.source_format == "skops" and imported.estimator == "LogisticRegression"
    assert np.max(np.abs(_probabilities(imported, data.x) - fitted.predict_proba(data.x))) <= 1e-9
    assert imported.model.spec_id == imported.spec.spec_id
    assert imported.spec.feature_names == data.spec.feature_names


@pytest.mark.parametrize("name", ["iris", "cancer"])
def test_onnx_logistic_regression_within_float32(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """skl2onnx stores float32 weights; the imported model computes exactly with those, so it
    is as far from the original as that rounding allows (see ``_float32_bound``)."""
    data: Data = request.getfixturevalue(name)
    fitted = _logistic(data.x, data.y)
    imported = import_model(_onnx(fitted, data.x, tmp_path / "m.onnx"), data.spec)
    output = imported.spec.output
    assert output.classes == tuple(fitted.classes_)
    # The binary model's two rows (the second class's and its negation) become one score.
    assert output.function == ("softmax" if len(fitted.classes_) > 2 else "sigmoid")
    assert imported.model.scores == output.scores
    assert np.array_equal(
        imported.model.weights, fitted.coef_.astype(np.float32).astype(np.float64)
    )
    difference = np.abs(_probabilities(imported, data.x) - fitted.predict_proba(data.x))
    bound = _float32_bound(fitted.coef_, fitted.intercept_, data.x)
    assert np.max(difference) <= bound
    assert any("float32" in note for note in imported.notes)


def test_skops_pipeline_with_scalers_is_folded_exactly(cancer: Data, tmp_path: Path) -> None:
    fitted = make_pipeline(StandardScaler(), _unfitted())
    fitted.fit(cancer.x, cancer.y)
    imported = import_model(_skops(fitted, tmp_path / "p.skops"), cancer.spec)
    assert imported.folded == ("StandardScaler",)
    assert np.max(np.abs(_probabilities(imported, cancer.x) - fitted.predict_proba(cancer.x))) <= (
        1e-9
    )


@pytest.mark.parametrize(
    "scalers",
    [
        (StandardScaler(with_mean=False),),
        (StandardScaler(with_std=False),),
        (MinMaxScaler(feature_range=(-2, 3)), MaxAbsScaler()),
        (StandardScaler(), MinMaxScaler(), MaxAbsScaler()),
    ],
    ids=["no-mean", "no-std", "minmax-maxabs", "all-three"],
)
def test_every_scaler_option_folds_exactly(
    iris: Data, tmp_path: Path, scalers: tuple[Any, ...]
) -> None:
    fitted = make_pipeline(*scalers, _unfitted()).fit(iris.x, iris.y)
    imported = import_model(_skops(fitted, tmp_path / "p.skops"), iris.spec)
    assert imported.folded == tuple(type(s).__name__ for s in scalers)
    assert np.max(np.abs(_probabilities(imported, iris.x) - fitted.predict_proba(iris.x))) <= 1e-9


def test_onnx_pipeline_scalers_are_folded(iris: Data, tmp_path: Path) -> None:
    """skl2onnx writes StandardScaler as a Scaler node, MinMaxScaler as Mul and Add."""
    fitted = make_pipeline(StandardScaler(), MinMaxScaler(), _unfitted())
    fitted.fit(iris.x, iris.y)
    imported = import_model(_onnx(fitted, iris.x, tmp_path / "p.onnx"), iris.spec)
    assert imported.folded[0] == "Scaler" and {"Mul", "Add"} <= set(imported.folded)
    # The scalers' float32 offsets and scales round too: a looser bound than the weights' alone.
    difference = np.abs(_probabilities(imported, iris.x) - fitted.predict_proba(iris.x))
    assert np.max(difference) <= 1e-5


def test_onnx_ridge_regressor(diabetes: Data, tmp_path: Path) -> None:
    fitted = Ridge(alpha=0.1).fit(diabetes.x, diabetes.y.astype(np.float64))
    imported = import_model(_onnx(fitted, diabetes.x, tmp_path / "r.onnx"), diabetes.spec)
    output = imported.spec.output
    assert (output.task, output.targets, output.function) == (
        "regression",
        ("progression",),
        "identity",
    )
    predictions = output.inverse_link(imported.model.decision_function(diabetes.x))[:, 0]
    bound = _float32_bound(fitted.coef_, fitted.intercept_, diabetes.x)
    assert np.max(np.abs(predictions - fitted.predict(diabetes.x))) <= bound


def test_multi_target_regressor_takes_its_targets(diabetes: Data, tmp_path: Path) -> None:
    targets = np.c_[diabetes.y.astype(np.float64), diabetes.x[:, 0]]
    fitted = Ridge().fit(diabetes.x, targets)
    path = _skops(fitted, tmp_path / "r.skops")
    with pytest.raises(SettingError, match="predicts 2 target"):
        import_model(path, diabetes.spec)
    imported = import_model(path, diabetes.spec, targets=["progression", "age"])
    assert imported.spec.output.targets == ("progression", "age")
    scores = imported.model.decision_function(diabetes.x)
    assert np.max(np.abs(scores - fitted.predict(diabetes.x))) <= 1e-9


def test_a_regressor_of_the_log_target_is_served_through_exp(
    diabetes: Data, tmp_path: Path
) -> None:
    logs = np.log(diabetes.y.astype(np.float64))
    fitted = Ridge(alpha=0.1).fit(diabetes.x, logs)
    path = _skops(fitted, tmp_path / "log.skops")
    imported = import_model(path, diabetes.spec, log_target=True)
    assert imported.spec.output.function == "exp"
    predictions = imported.spec.output.inverse_link(imported.model.decision_function(diabetes.x))
    np.testing.assert_allclose(predictions[:, 0], np.exp(fitted.predict(diabetes.x)), rtol=1e-9)
    classifier = _skops(_logistic(diabetes.x, diabetes.y.astype(float) > 140), tmp_path / "c.skops")
    with pytest.raises(SettingError, match="--log-target applies to a regressor"):
        import_model(classifier, diabetes.spec, log_target=True)


def test_sgd_one_vs_rest_via_skops(iris: Data, tmp_path: Path) -> None:
    fitted = SGDClassifier(loss="log_loss", random_state=0).fit(iris.x, iris.y)
    imported = import_model(_skops(fitted, tmp_path / "s.skops"), iris.spec)
    assert imported.spec.output.function == "ovr"
    assert np.max(np.abs(_probabilities(imported, iris.x) - fitted.predict_proba(iris.x))) <= 1e-9


def test_slot_width_follows_the_imported_weights(iris: Data, tmp_path: Path) -> None:
    fitted = _logistic(iris.x, iris.y)
    fitted.coef_ = fitted.coef_ * 1e6
    imported = import_model(_skops(fitted, tmp_path / "big.skops"), iris.spec)
    model = imported.model
    assert imported.spec.slot_bits == imported.spec.required_slot_bits(
        model.weights, model.intercepts
    )
    assert imported.spec.slot_bits is not None and iris.spec.slot_bits is not None
    assert imported.spec.slot_bits > iris.spec.slot_bits


# --- the command, end to end ------------------------------------------------------------


def _cli(*args: str | Path) -> int:
    return main([str(arg) for arg in args])


def test_cli_round_trip_gives_the_original_probabilities(
    iris: Data, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fitted = make_pipeline(StandardScaler(), _unfitted())
    fitted.fit(iris.x, iris.y)
    model_file = _skops(fitted, tmp_path / "iris.skops")
    served = tmp_path / "served"
    assert _cli("model", "import", model_file, "--spec", iris.spec_path, "--out", served) == 0
    err = capsys.readouterr().err
    spec = FeatureSpec.load(served / "features.json")
    assert "imported LogisticRegression" in err and "StandardScaler" in err
    assert spec.spec_id in err and "give this to customers" in err
    assert stat.S_IMODE((served / "model.json").stat().st_mode) == 0o600
    assert LinearModel.load(served / "model.json").spec_id == spec.spec_id

    keys, query, result = tmp_path / "keys", tmp_path / "q.jsonl", tmp_path / "r.jsonl"
    predictions = tmp_path / "p.csv"
    steps: list[list[str | Path]] = [
        ["keygen", "--out", keys, "--bits", "2048"],
        ["encrypt", "--private-key", keys / "private_key.json", "--features",
         served / "features.json", "--input", iris.csv, "--out", query, "--jobs", "1"],
        ["predict", "--model", served, "--input", query, "--out", result, "--jobs", "1"],
        ["decrypt", "--private-key", keys / "private_key.json", "--query", query,
         "--features", served / "features.json", "--input", result, "--out", predictions],
    ]  # fmt: skip
    for step in steps:
        assert _cli(*step) == 0, capsys.readouterr().err
    with open(predictions, newline="") as handle:
        rows = list(csv.DictReader(handle))
    classes = fitted.classes_
    assert list(rows[0]) == ["prediction", *(f"proba_{c}" for c in classes)]
    decrypted = np.array([[float(row[f"proba_{c}"]) for c in classes] for row in rows])
    assert np.max(np.abs(decrypted - fitted.predict_proba(iris.x))) <= 1e-9
    assert [row["prediction"] for row in rows] == list(fitted.predict(iris.x))


def test_cli_target_and_force(
    iris: Data, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fitted = _logistic(iris.x, iris.y == "virginica")
    model_file = _skops(fitted, tmp_path / "m.skops")
    out = tmp_path / "out"
    assert _cli("model", "import", model_file, "--spec", iris.spec_path, "--out", out) == 0
    assert _cli("model", "import", model_file, "--spec", iris.spec_path, "--out", out,
                "--target", "virginica", "--force") == 0  # fmt: skip
    spec = FeatureSpec.load(out / "features.json")
    assert spec.output.targets == ("virginica",) and spec.output.classes == ("false", "true")
    err = capsys.readouterr().err
    assert f"spec {spec.spec_id} (was {iris.spec.spec_id})" in err
    assert "publish this" in err and "the output was species: 3 classes" in err


# --- refusals: one line, a non-zero exit, nothing written ------------------------------


@pytest.fixture
def no_loading(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail the test if skops is asked to build any object."""

    def refuse(*args: object, **kwargs: object) -> object:
        raise AssertionError("skops.io.load was called")

    monkeypatch.setattr(skops.io, "load", refuse)
    yield


def refused(
    capsys: pytest.CaptureFixture[str], model_file: Path, spec: Path, out: Path, *extra: str
) -> str:
    """Run an import that must fail; its one-line message."""
    capsys.readouterr()
    code = _cli("model", "import", model_file, "--spec", spec, "--out", out, *extra)
    err = capsys.readouterr().err
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    assert not out.exists() or not any(out.iterdir()), "an output file was written"
    return lines[0]


@pytest.mark.parametrize("name", ["model.bin", "model.pkl", "model.onnx", "model.skops"])
def test_pickles_are_refused_unread(
    iris: Data, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    path = tmp_path / name
    path.write_bytes(pickle.dumps(_logistic(iris.x, iris.y)))
    line = refused(capsys, path, iris.spec_path, tmp_path / "out")
    assert str(path) in line and "pickle" in line and "run any code" in line
    assert "skops.io.dump" in line and "ONNX" in line


@pytest.mark.parametrize("compress", [0, 3])
def test_joblib_files_are_refused_unread(
    iris: Data, tmp_path: Path, capsys: pytest.CaptureFixture[str], compress: int
) -> None:
    path = tmp_path / "model.joblib"
    joblib.dump(_logistic(iris.x, iris.y), path, compress=compress)
    assert "pickle" in refused(capsys, path, iris.spec_path, tmp_path / "out")


@pytest.mark.parametrize(
    ("make", "named"),
    [
        (lambda: RandomForestClassifier(n_estimators=2, random_state=0), "RandomForestClassifier"),
        (lambda: DecisionTreeClassifier(random_state=0), "DecisionTreeClassifier"),
        (lambda: make_pipeline(PolynomialFeatures(), _unfitted()), "PolynomialFeatures"),
        (
            lambda: make_pipeline(FunctionTransformer(np.log1p), _unfitted()),
            "FunctionTransformer",
        ),
    ],
    ids=["forest", "tree", "polynomial", "function"],
)
def test_skops_types_outside_the_allow_list_are_refused_before_loading(
    iris: Data,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_loading: None,
    make: Any,
    named: str,
) -> None:
    path = _skops(make().fit(iris.x, iris.y), tmp_path / "m.skops")
    line = refused(capsys, path, iris.spec_path, tmp_path / "out")
    assert named in line and "supported: LinearRegression" in line and "LogisticRegression" in line


def test_a_forged_skops_function_node_is_refused_before_loading(
    iris: Data, tmp_path: Path, capsys: pytest.CaptureFixture[str], no_loading: None
) -> None:
    """A schema edited by hand to fetch a function (``os.system``) is refused unbuilt."""
    genuine = skops.io.dumps(_logistic(iris.x, iris.y))
    forged = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(genuine)) as source, zipfile.ZipFile(forged, "w") as target:
        for member in source.infolist():
            content = source.read(member)
            if member.filename == "schema.json":
                schema = json.loads(content)
                schema["content"]["content"]["solver"] = {
                    "__class__": "function",
                    "__module__": "builtins",
                    "__loader__": "FunctionNode",
                    "content": {"module_path": "os", "function": "system"},
                }
                content = json.dumps(schema).encode()
            target.writestr(member, content)
    path = tmp_path / "forged.skops"
    path.write_bytes(forged.getvalue())
    assert "FunctionNode" in refused(capsys, path, iris.spec_path, tmp_path / "out")


def test_an_onnx_tree_model_is_refused(
    iris: Data, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = DecisionTreeClassifier(random_state=0).fit(iris.x, iris.y)
    path = _onnx(tree, iris.x, tmp_path / "tree.onnx")
    line = refused(capsys, path, iris.spec_path, tmp_path / "out")
    assert "TreeEnsembleClassifier" in line and "LinearClassifier" in line


def test_an_onnx_graph_of_plain_operators_is_refused(
    iris: Data, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """skl2onnx writes SGDClassifier as MatMul, Add, ...: not a graph ppml reads."""
    fitted = SGDClassifier(loss="log_loss", random_state=0).fit(iris.x, iris.y)
    path = _onnx(fitted, iris.x, tmp_path / "sgd.onnx")
    assert "MatMul" in refused(capsys, path, iris.spec_path, tmp_path / "out")


def _graph(nodes: list[onnx.NodeProto], outputs: list[str], width: int = 4) -> bytes:
    graph = helper.make_graph(
        nodes,
        "handmade",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, width])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in outputs],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 1)]
    return bytes(helper.make_model(graph, opset_imports=opsets).SerializeToString())


def _regressor(source: str = "X", output: str = "Y") -> onnx.NodeProto:
    return helper.make_node(
        "LinearRegressor",
        [source],
        [output],
        domain="ai.onnx.ml",
        coefficients=[1.0, 2.0, 3.0, 4.0],
        intercepts=[0.5],
    )


@pytest.mark.parametrize(
    ("nodes", "outputs", "named"),
    [
        ([_regressor(output="S"), helper.make_node("Abs", ["S"], ["Y"])], ["Y"], "Abs"),
        ([helper.make_node("Abs", ["X"], ["A"]), _regressor("A")], ["Y"], "Abs"),
        (
            [
                _regressor(output="S"),
                helper.make_node("Normalizer", ["S"], ["Y"], domain="ai.onnx.ml", norm="L1"),
            ],
            ["Y"],
            "Normalizer",
        ),
        ([_regressor(), _regressor(output="Z")], ["Y", "Z"], "2 linear models"),
    ],
    ids=["after", "before", "normalized-regressor", "two-models"],
)
def test_handmade_onnx_graphs_with_other_operators_are_refused(
    iris: Data,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    nodes: list[onnx.NodeProto],
    outputs: list[str],
    named: str,
) -> None:
    path = tmp_path / "graph.onnx"
    path.write_bytes(_graph(nodes, outputs))
    assert named in refused(capsys, path, iris.spec_path, tmp_path / "out")


def test_a_handmade_onnx_regressor_is_read(iris: Data, tmp_path: Path) -> None:
    path = tmp_path / "graph.onnx"
    path.write_bytes(_graph([_regressor()], ["Y"]))
    imported = import_model(path, iris.spec)
    assert imported.model.weights == ((1.0, 2.0, 3.0, 4.0),)
    assert imported.model.intercepts == (0.5,)


@pytest.mark.parametrize("kind", ["skops", "onnx"])
def test_a_model_of_other_inputs_is_refused(
    iris: Data, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    fitted = _logistic(iris.x[:, :3], iris.y)
    path = (
        _skops(fitted, tmp_path / "m.skops")
        if kind == "skops"
        else _onnx(fitted, iris.x[:, :3], tmp_path / "m.onnx")
    )
    line = refused(capsys, path, iris.spec_path, tmp_path / "out")
    assert "reads 3 inputs" in line and "4 model inputs" in line
    with pytest.raises(SpecMismatchError):
        import_model(path, iris.spec)


def test_inputs_named_otherwise_are_refused(
    iris: Data, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fitted = _logistic(iris.x, iris.y)
    names = list(iris.spec.feature_names)
    fitted.feature_names_in_ = np.array([names[1], names[0], *names[2:]], dtype=object)
    path = _skops(fitted, tmp_path / "m.skops")
    line = refused(capsys, path, iris.spec_path, tmp_path / "out")
    assert f"input 1 is {names[1]!r}" in line


def test_what_cannot_be_computed_exactly_is_refused(
    iris: Data, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clipped = make_pipeline(MinMaxScaler(clip=True), _unfitted()).fit(iris.x, iris.y)
    line = refused(capsys, _skops(clipped, tmp_path / "c.skops"), iris.spec_path, tmp_path / "o")
    assert "clip=True" in line
    infinite = _logistic(iris.x, iris.y)
    infinite.coef_[0, 0] = np.inf
    line = refused(capsys, _skops(infinite, tmp_path / "i.skops"), iris.spec_path, tmp_path / "o")
    assert "not all finite" in line
    ridge = Ridge().fit(iris.x, iris.x[:, 0])
    two = Pipeline([("ridge", ridge), ("logistic", _logistic(iris.x, iris.y))])
    line = refused(capsys, _skops(two, tmp_path / "t.skops"), iris.spec_path, tmp_path / "o")
    assert "Ridge is not the last step" in line


@pytest.mark.parametrize("kind", ["skops", "onnx"])
def test_truncated_and_corrupt_files_are_refused(
    iris: Data, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    fitted = _logistic(iris.x, iris.y)
    whole = (
        _skops(fitted, tmp_path / f"whole.{kind}")
        if kind == "skops"
        else _onnx(fitted, iris.x, tmp_path / f"whole.{kind}")
    ).read_bytes()
    truncated = tmp_path / f"truncated.{kind}"
    truncated.write_bytes(whole[: len(whole) // 2])
    line = refused(capsys, truncated, iris.spec_path, tmp_path / "out")
    assert line.startswith(f"error: {truncated}: not a readable")
    with pytest.raises(FileFormatError):
        import_model(truncated, iris.spec)
    garbled = tmp_path / f"garbled.{kind}"
    garbled.write_bytes(whole[:40] + bytes(range(256)) * 4)
    refused(capsys, garbled, iris.spec_path, tmp_path / "out")


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("empty.onnx", b"", "empty file"),
        ("notes.txt", b"sepalLength,species\n", "not a skops (.skops) or ONNX (.onnx) model"),
        ("archive.skops", b"PK\x05\x06" + bytes(18), "without one schema.json"),
    ],
)
def test_files_of_other_kinds_are_refused(
    iris: Data,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: bytes,
    expected: str,
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    line = refused(capsys, path, iris.spec_path, tmp_path / "out")
    assert line.startswith(f"error: {path}: ") and expected in line


def test_oversized_files_are_refused_unread(
    iris: Data, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "huge.onnx"
    with open(path, "wb") as handle:
        handle.truncate((64 << 20) + 1)  # sparse: no disk space used
    assert "64 MiB" in refused(capsys, path, iris.spec_path, tmp_path / "out")


def test_existing_output_is_kept_without_force(
    iris: Data, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.json").write_text("kept")
    path = _skops(_logistic(iris.x, iris.y), tmp_path / "m.skops")
    capsys.readouterr()
    assert _cli("model", "import", path, "--spec", iris.spec_path, "--out", out) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "--force" in err and len(err.splitlines()) == 1
    assert (out / "model.json").read_text() == "kept"
    assert not (out / "features.json").exists()


def test_a_classifier_needs_one_target(iris: Data, tmp_path: Path) -> None:
    path = _skops(_logistic(iris.x, iris.y), tmp_path / "m.skops")
    with pytest.raises(SettingError, match="one label column"):
        import_model(path, iris.spec, targets=["a", "b"])

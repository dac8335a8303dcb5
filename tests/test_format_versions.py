"""Format versions: what this ppml writes is what docs/ specifies, and files of the previous
versions are read (the model) or refused with a message naming the version (spec, result)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from ppml.cli.main import main
from ppml.datasets import iris_csv
from ppml.errors import FileFormatError, UnsupportedVersionError
from ppml.features import FeatureSpec, spec
from ppml.model import LinearModel, linear
from ppml.model.training import CARD_VERSION, TrainingResult, train
from ppml.wire import messages

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.fixture(scope="module")
def iris() -> TrainingResult:
    return train(iris_csv(), "species", folds=3)


@pytest.mark.parametrize(
    ("document", "written"),
    [
        ("feature-spec.md", f'"format": "ppml.feature-spec",\n  "version": {spec.SPEC_VERSION}'),
        ("wire-format.md", f'"format":"ppml.query","version":{messages.QUERY_VERSION}'),
        ("wire-format.md", f'"format":"ppml.result","version":{messages.RESULT_VERSION}'),
        ("feature-spec.md", f'`"ppml.model-card"`, `{CARD_VERSION}`'),
        ("model-import.md", f'"format": "ppml.linear-model",\n  "version": {linear.MODEL_VERSION}'),
    ],
)
def test_the_docs_specify_the_versions_this_ppml_writes(document: str, written: str) -> None:
    assert written in (DOCS / document).read_text()


def test_a_version_3_spec_is_refused_with_what_to_do(
    iris: TrainingResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A spec of the one-output era: ``target`` instead of ``output``."""
    document = iris.spec.to_document()
    document["version"] = 3
    del document["output"]
    document["target"] = {"name": "species", "transform": "none"}
    path = tmp_path / "features.json"
    path.write_text(json.dumps(document))
    with pytest.raises(UnsupportedVersionError) as refused:
        FeatureSpec.load(path)
    assert str(refused.value) == (
        f"{path}: format version 3 is not supported (this ppml reads version "
        f"{spec.SPEC_VERSION}); re-run ppml train to write this version"
    )
    # The command line says the same in one line, and writes nothing.
    out = tmp_path / "query.jsonl"
    code = main(["encrypt", "--public-key", str(tmp_path / "absent.json"), "--features", str(path),
                 "--input", str(iris_csv()), "--out", str(out)])  # fmt: skip
    error = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and not out.exists()
    assert len(error) == 1 and error[0].startswith("error: ")


def test_a_version_1_model_is_read_as_a_model_of_one_score(tmp_path: Path) -> None:
    """What ppml wrote before models had several scores: one weight row, one intercept."""
    path = tmp_path / "model.json"
    path.write_text(
        json.dumps(
            {
                "format": "ppml.linear-model",
                "version": 1,
                "spec_id": "0" * 32,
                "estimator": "Ridge",
                "features": ["a", "b"],
                "weights": [0.5, -2],
                "intercept": 3.25,
            }
        )
    )
    model = LinearModel.load(path)
    assert model.weights == ((0.5, -2.0),) and model.intercepts == (3.25,)
    np.testing.assert_array_equal(model.decision_function([[2.0, 1.0]]), [[2.25]])
    # Saved again, it is written in the current version and reads back the same.
    model.save(tmp_path / "again.json")
    assert json.loads((tmp_path / "again.json").read_text())["version"] == linear.MODEL_VERSION
    assert LinearModel.load(tmp_path / "again.json") == model


@pytest.mark.parametrize(
    "members",
    [
        {"version": 1, "weights": [[0.5, -2]], "intercept": 3.25},  # version 1 holds one row
        {"version": 2, "weights": [0.5, -2], "intercepts": [3.25]},  # version 2 holds rows
        {"version": 2, "weights": [[0.5, -2]], "intercepts": [3.25, 1]},
        {"version": 2, "weights": [[0.5, -2], [1]], "intercepts": [3.25, 1]},
        {"version": 2, "weights": [], "intercepts": []},
        {"version": 3, "weights": [[0.5, -2]], "intercepts": [3.25]},
    ],
)
def test_a_malformed_or_newer_model_is_refused(tmp_path: Path, members: dict[str, object]) -> None:
    path = tmp_path / "model.json"
    document = {"format": "ppml.linear-model", "spec_id": "0" * 32, "estimator": "Ridge"}
    path.write_text(json.dumps({**document, "features": ["a", "b"], **members}))
    with pytest.raises(FileFormatError, match=re.escape(str(path))):
        LinearModel.load(path)


def test_a_version_3_result_is_refused_naming_the_versions(tmp_path: Path) -> None:
    """Version 3 results held one ciphertext per block and a ``target``; the decrypting
    customer is told what happened and what to do."""
    path = tmp_path / "result.jsonl"
    header = {"format": messages.RESULT_FORMAT, "version": 3, "target": {"name": "Price"}}
    path.write_text(json.dumps(header) + "\n" + json.dumps({"rows": 1, "ciphertext": "AQ=="}))
    with pytest.raises(UnsupportedVersionError) as refused:
        messages.BlockFileReader(path, messages.RESULT_FORMAT, messages.RESULT_VERSION)
    assert str(refused.value) == (
        f"{path}: ppml.result version 3 is not supported: this ppml reads version "
        f"{messages.RESULT_VERSION} (the file was written by an older ppml; send the query "
        "again to a server running this version)"
    )

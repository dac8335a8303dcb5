"""A server that publishes a hostile output, or answers with scores of its choosing, gets a
one-line refusal from the customer: never a traceback, an infinite value or a partial file.
Names of classes and targets are printed and written as plain text."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from crafting import craft_result

from ppml.cli.main import main
from ppml.crypto import PrivateKey, PublicKey
from ppml.datasets import iris_csv
from ppml.errors import DataError, FileFormatError, SettingError
from ppml.features import FeatureSpec, Output
from ppml.model.training import train
from ppml.roles import customer

ROWS = 3


@pytest.fixture(scope="module")
def iris_spec() -> FeatureSpec:
    return train(iris_csv(), "species", folds=3).spec


def _rows(tmp_path: Path) -> Path:
    lines = iris_csv().read_text().splitlines()
    rows = tmp_path / "mine.csv"
    rows.write_text("\n".join(lines[: ROWS + 1]) + "\n")
    return rows


def _decrypt(
    keypair: tuple[PublicKey, PrivateKey], spec: FeatureSpec, scores: list[int], tmp_path: Path
) -> Path:
    """Encrypt three rows under ``spec``, answer each with ``scores``, decrypt; the output path
    (which must not exist: the caller expects a refusal)."""
    public_key, private_key = keypair
    customer.encrypt_file(public_key, spec, _rows(tmp_path), tmp_path / "q.jsonl", jobs=1)
    craft_result(tmp_path / "q.jsonl", spec, [scores] * ROWS, tmp_path / "r.jsonl")
    out = tmp_path / "out.csv"
    customer.decrypt_file(
        private_key, tmp_path / "r.jsonl", out, query=tmp_path / "q.jsonl", spec=spec, jobs=1
    )
    return out


def test_a_crafted_result_decrypts_to_what_the_server_chose(
    real_keypair: tuple[PublicKey, PrivateKey], iris_spec: FeatureSpec, tmp_path: Path
) -> None:
    """The crafting is real: in-bound scores come out as chosen (so the refusals below are
    the checks at work, not a broken result)."""
    scale = 1 << iris_spec.prediction_fixed_point.frac_bits
    out = _decrypt(real_keypair, iris_spec, [2 * scale, 0, -scale], tmp_path)
    lines = out.read_text().splitlines()
    assert lines[0] == "prediction,proba_setosa,proba_versicolor,proba_virginica"
    assert all(line.startswith("setosa,") for line in lines[1:])


def test_scores_no_float_holds_are_refused(
    real_keypair: tuple[PublicKey, PrivateKey], iris_spec: FeatureSpec, tmp_path: Path
) -> None:
    """Slots of 1500 bits let a score reach 2^1400: beyond every float."""
    wide = dataclasses.replace(iris_spec, slot_bits=1500)
    with pytest.raises(FileFormatError, match="row 1: a score beyond the range of a floating"):
        _decrypt(real_keypair, wide, [2**1400, 0, -(2**1400)], tmp_path)
    assert not (tmp_path / "out.csv").exists()


def test_an_exp_output_beyond_every_float_is_refused_not_written_as_inf(
    real_keypair: tuple[PublicKey, PrivateKey], iris_spec: FeatureSpec, tmp_path: Path
) -> None:
    regression = dataclasses.replace(iris_spec, output=Output.regression("y", "exp"), slot_bits=200)
    scale = 1 << regression.prediction_fixed_point.frac_bits
    with pytest.raises(FileFormatError, match="row 1: the prediction is beyond the range"):
        _decrypt(real_keypair, regression, [800 * scale], tmp_path)
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize(
    "name",
    [
        '=HYPERLINK("http://example.invalid")',
        "@SUM(A1)",
        "+1+cmd",
        "-2+3",
        "a\nb",
        "a\x1b[31mb",
        "\u202eevil",
        "zero\u200bwidth",
        "",
        " padded",
        "x" * 300,
    ],
)
def test_a_class_name_a_spreadsheet_or_terminal_would_misread_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="class"):
        Output.classification("y", ["fine", name], "sigmoid")
    with pytest.raises(ValueError, match="target"):
        Output.regression(name or "\t")


@pytest.mark.parametrize("name", ["-1", "+", "-", "+2.5", "10", "Ünïcödé", "a b", "x" * 256])
def test_ordinary_class_names_are_kept(name: str) -> None:
    assert Output.classification("y", [name, "other"], "sigmoid").classes[0] == name


def test_class_names_are_printed_as_text_not_markup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rich would read ``[/]`` as a closing tag and ``[bold]`` as a style."""
    data = tmp_path / "tags.csv"
    data.write_text(
        "a,label\n" + "".join(f"{i},{'[/]' if i % 2 else '[bold]b'}\n" for i in range(20))
    )
    assert (
        main(["train", "--data", str(data), "--target", "label", "--out", str(tmp_path / "m")]) == 0
    )
    captured = capsys.readouterr()
    assert "predicts label: 2 classes ([/], [bold]b)" in captured.err
    assert "→ [bold]b" in captured.out
    card = (tmp_path / "m" / "card.md").read_text()
    assert "| \\[/\\] | " in card  # escaped in the markdown table, so it stays one cell


def test_id_columns_named_like_prediction_columns_are_refused(
    keypair: tuple[PublicKey, PrivateKey], iris_spec: FeatureSpec, tmp_path: Path
) -> None:
    with pytest.raises(SettingError, match="'proba_setosa' have the name of a prediction"):
        customer.write_predictions(
            tmp_path / "out.csv",
            [("setosa", 1.0, 0.0, 0.0)],
            columns=iris_spec.output.columns,
            ids=[["7"]],
            id_columns=["proba_setosa"],
        )
    assert not (tmp_path / "out.csv").exists()


def test_a_target_of_more_classes_than_a_classifier_may_have_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "many.csv"
    data.write_text("a,label\n" + "".join(f"{i},c{i // 2}\n" for i in range(2100)))
    with pytest.raises(DataError, match=r"1050 distinct values, more classes .*--task regression"):
        train(data, "label", folds=2, holdout=0, estimator="RidgeClassifier")


def test_integer_labels_beyond_float_precision_stay_apart(tmp_path: Path) -> None:
    data = tmp_path / "ids.csv"
    labels = ["9007199254740993", "9007199254740992", "5"]
    data.write_text("a,label\n" + "".join(f"{i},{labels[i % 3]}\n" for i in range(60)))
    result = train(data, "label", folds=2, holdout=0)
    assert sorted(result.spec.output.classes) == sorted(labels)


def test_classes_that_differ_only_in_case_are_flagged(tmp_path: Path) -> None:
    data = tmp_path / "case.csv"
    words = ["yes", "No", "no"]
    data.write_text("a,label\n" + "".join(f"{i},{words[i % 3]}\n" for i in range(60)))
    result = train(data, "label", folds=2, holdout=0)
    assert any("'No', 'no' differ only in case" in w for w in result.warnings)
    assert len(result.spec.output.classes) == 3

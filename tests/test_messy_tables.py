"""A data scientist's own CSV through the CLI: missing values, column types, dialects, habits.

Each test is one friction point a new user met: it fails on a ppml that guessed
silently, broke on a BOM or overwrote a model without asking.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ppml.features import FeatureSpec
from ppml.features.recipes import GenericRecipe
from ppml.model import LinearModel

ROWS = 60


def ppml(*args: str | Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("ppml")), *map(str, args)],
        capture_output=True,
        timeout=300,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


def ok(*args: str | Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    completed = ppml(*args, stdin=stdin)
    assert completed.returncode == 0, completed.stderr.decode()
    return completed


def one_line_error(completed: subprocess.CompletedProcess[bytes]) -> str:
    assert completed.returncode != 0
    text = completed.stderr.decode()
    assert "Traceback" not in text
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def messy_rows() -> list[list[str]]:
    """A small table with every kind of mess: NA, empty cells, a stray word, dates, an id,
    an integer-coded category, a boolean, a rare category, a missing target."""
    rng = np.random.default_rng(7)
    rows = [["name", "size", "cylinders", "colour", "made", "smoker", "price"]]
    for i in range(ROWS):
        size = round(float(rng.uniform(1, 10)), 2)
        cylinders = int(rng.choice([4, 6, 8]))
        colour = str(rng.choice(["red", "blue", "green"])) if i != 5 else "mauve"  # rare
        made = f"20{10 + i % 12:02d}-{1 + i % 12:02d}-{1 + i % 27:02d}"
        smoker = "Yes" if i % 3 else "No"
        price = 3 * size + cylinders + {"red": 4, "blue": 0, "green": -2, "mauve": 9}[colour]
        rows.append([f"item {i}", str(size), str(cylinders), colour, made, smoker, f"{price:.3f}"])
    rows[3][1] = "NA"  # R-style missing number
    rows[4][1] = ""  # empty cell
    rows[6][1] = "rotary"  # a stray word among numbers
    rows[7][3] = ""  # missing category
    rows[8][6] = "NA"  # missing target
    return rows


def write(path: Path, rows: list[list[str]], delimiter: str = ",", bom: bool = False) -> Path:
    with open(path, "w", newline="", encoding="utf-8-sig" if bom else "utf-8") as handle:
        csv.writer(handle, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return path


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("keys")
    ok("keygen", "--out", folder)
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    folder = tmp_path_factory.mktemp("messy")
    data = write(folder / "messy.csv", messy_rows(), delimiter=";", bom=True)
    completed = ok(
        "train", "--data", data, "--target", "price", "--out", folder / "model",
        "--categorical", "cylinders",
    )  # fmt: skip
    return {"folder": folder, "data": data, "completed": completed}


def test_schema_is_printed_and_stored(trained: dict[str, object]) -> None:
    completed = trained["completed"]
    assert isinstance(completed, subprocess.CompletedProcess)
    folder = trained["folder"]
    assert isinstance(folder, Path)
    out = completed.stdout.decode()
    for column, kind in [("size", "number"), ("cylinders", "category"), ("made", "date")]:
        assert any(column in line and kind in line for line in out.splitlines()), out
    card = json.loads((folder / "model" / "card.json").read_text())
    schema = {entry["name"]: entry for entry in card["schema"]}
    assert schema["name"]["type"] == "identifier"
    assert schema["size"]["type"] == "number"
    assert schema["size"]["missing"] == 2 and schema["size"]["unusual"] == 1
    assert schema["size"]["unusual_examples"] == ["rotary"]
    assert schema["cylinders"]["type"] == "category"
    assert schema["made"]["type"] == "date"
    assert schema["smoker"]["type"] == "boolean"
    assert schema["colour"]["categories_merged_into_other"] == 1
    assert card["data"] == {
        "rows_used": ROWS - 1,
        "rows_without_target": 1,
        "evaluation_rows": card["data"]["evaluation_rows"],
        "holdout_rows": card["data"]["holdout_rows"],
        "features": card["data"]["features"],
    }
    assert "weights" not in json.dumps(card)
    assert (folder / "model" / "card.md").read_text().startswith("# Model card")
    err = completed.stderr.decode()
    assert "1 row(s) with no 'price' were left out" in err
    assert "'rotary'" in err and "identifier" in err
    assert f"refitted on all {ROWS - 1} rows" in err


def test_missing_values_are_filled_in_as_the_spec_says(trained: dict[str, object]) -> None:
    folder = trained["folder"]
    assert isinstance(folder, Path)
    spec = FeatureSpec.load(folder / "model" / "features.json")
    fills = {f.name: f.fill for f in spec.numeric}
    sizes = [
        float(row[1])
        for row in messy_rows()[1:]
        if row[1] not in ("NA", "", "rotary") and row[6] != "NA"
    ]
    assert fills["size"] == pytest.approx(float(np.median(sizes)))
    colour = next(f for f in spec.categorical if f.name == "colour")
    assert colour.other and "mauve" not in colour.categories
    assert spec.feature_names[-1] == "colour:other"
    assert "made:days" in spec.feature_names and "made:day_of_week" in spec.feature_names


def test_encrypt_reports_unseen_categories_and_strict_refuses(
    trained: dict[str, object], keys: Path, tmp_path: Path
) -> None:
    folder = trained["folder"]
    assert isinstance(folder, Path)
    rows = messy_rows()
    rows[1][3] = "purple"
    rows[2][3] = "purple"
    rows[3][2] = "12"
    data = write(tmp_path / "mine.tsv", rows, delimiter="\t")
    common = [
        "--private-key", keys / "private_key.json", "--features",
        folder / "model" / "features.json", "--input", data,
    ]  # fmt: skip
    completed = ok("encrypt", *common, "--out", tmp_path / "query.jsonl")
    err = completed.stderr.decode()
    assert "read " + str(data) + " as tab-separated" in err
    assert (
        "colour: 3 row(s) with categories the spec does not list ('purple' x2, 'mauve' x1), encoded as 'other'"
        in err
    )
    assert "cylinders: 1 row(s)" in err
    assert "size: 1 unusual value(s) treated as missing ('rotary' x1)" in err
    line = one_line_error(ppml("encrypt", *common, "--out", tmp_path / "strict.jsonl", "--strict"))
    assert "row 1" in line and "'colour'" in line and "purple" in line
    assert not (tmp_path / "strict.jsonl").exists()


def test_a_date_outside_years_1_to_9999_in_utc_is_unusual(
    trained: dict[str, object], keys: Path, tmp_path: Path
) -> None:
    folder = trained["folder"]
    assert isinstance(folder, Path)
    rows = messy_rows()
    rows[2][4] = "0001-01-01T00:00+01:00"  # 0000-12-31T23:00 in UTC: before year 1
    data = write(tmp_path / "mine.csv", rows)
    common = [
        "--private-key", keys / "private_key.json", "--features",
        folder / "model" / "features.json", "--input", data,
    ]  # fmt: skip
    err = ok("encrypt", *common, "--out", tmp_path / "query.jsonl").stderr.decode()
    assert "made: 1 unusual value(s) treated as missing ('0001-01-01T00:00+01:00' x1)" in err
    line = one_line_error(ppml("encrypt", *common, "--out", tmp_path / "strict.jsonl", "--strict"))
    assert line.startswith(f"error: {data}: row 2 (line 3), column 'made': ")
    assert "unusual value '0001-01-01T00:00+01:00' in 'made'" in line


def test_a_yes_no_column_may_spell_its_words_in_several_cases(keys: Path, tmp_path: Path) -> None:
    rows = messy_rows()
    for i, row in enumerate(rows[1:]):
        row[5] = {0: row[5].lower(), 1: row[5].upper()}.get(i % 4, row[5])
    data = write(tmp_path / "cased.csv", rows)
    out = tmp_path / "model"
    ok("train", "--data", data, "--target", "price", "--out", out)
    spec = FeatureSpec.load(out / "features.json")
    assert isinstance(spec.recipe, GenericRecipe)
    smoker = next(column for column in spec.recipe.columns if column.name == "smoker")
    assert (smoker.kind, smoker.true_values, smoker.false_values) == ("boolean", ("Yes",), ("No",))
    rows[1][5], rows[2][5] = "yES", "nO"
    mine = write(tmp_path / "mine.csv", rows)
    err = ok(
        "encrypt", "--private-key", keys / "private_key.json", "--features",
        out / "features.json", "--input", mine, "--out", tmp_path / "q.jsonl",
    ).stderr.decode()  # fmt: skip
    assert "size: 1 unusual value(s)" in err and "smoker" not in err


def test_round_trip_through_stdin_and_stdout_with_ids(
    trained: dict[str, object], keys: Path, tmp_path: Path
) -> None:
    folder = trained["folder"]
    data = trained["data"]
    assert isinstance(folder, Path) and isinstance(data, Path)
    features = folder / "model" / "features.json"
    private = keys / "private_key.json"
    query = ok(
        "encrypt", "--private-key", private, "--features", features, "--input", "-",
        "--out", "-", stdin=data.read_bytes(),
    ).stdout  # fmt: skip
    (tmp_path / "query.jsonl").write_bytes(query)
    ok("predict", "--model", folder / "model", "--input", tmp_path / "query.jsonl",
       "--out", tmp_path / "result.jsonl")  # fmt: skip
    prices = ok(
        "decrypt", "--private-key", private, "--query", tmp_path / "query.jsonl",
        "--features", features, "--input", "-", "--out", "-",
        "--id-column", "name", "--data", data,
        stdin=(tmp_path / "result.jsonl").read_bytes(),
    ).stdout.decode()  # fmt: skip
    table = list(csv.DictReader(prices.splitlines()))
    assert [row["name"] for row in table] == [row[0] for row in messy_rows()[1:]]

    spec = FeatureSpec.load(features)
    model = LinearModel.load(folder / "model" / "model.json")
    from ppml.roles.customer import read_inputs

    expected = model.decision_function(read_inputs(spec, data))[:, 0]
    np.testing.assert_allclose(
        [float(row["prediction"]) for row in table], expected, rtol=1e-9, atol=1e-9
    )


def test_semicolon_and_bom_are_detected_and_overrides_work(tmp_path: Path) -> None:
    rows = messy_rows()
    data = write(tmp_path / "euro.csv", rows, delimiter=";", bom=True)
    from ppml.features.table import CsvOptions, CsvTable

    table = CsvTable(data, ["price"])
    assert table.columns[0] == "name"  # the BOM is not part of the first name
    assert table.description == "semicolon-separated, UTF-8 with BOM (detected)"
    forced = CsvTable(data, [], CsvOptions(delimiter=";", encoding="utf-8"))
    assert forced.columns == table.columns
    piped = write(tmp_path / "piped.txt", rows, delimiter="|")
    assert CsvTable(piped, ["price"]).delimiter == "|"
    latin = tmp_path / "latin.csv"
    latin.write_bytes("city,price\nZürich,1\nGenève,2\n".encode("latin-1"))
    line = one_line_error(
        ppml("train", "--data", latin, "--target", "price", "--out", tmp_path / "m")
    )
    assert line.startswith(f"error: {latin}") and "--encoding" in line
    assert next(iter(CsvTable(latin, [], CsvOptions(encoding="latin-1")).rows())).cells == {
        "city": "Zürich",
        "price": "1",
    }


def test_train_refuses_to_overwrite_and_parses_literal_params(tmp_path: Path) -> None:
    data = write(tmp_path / "plain.csv", messy_rows())
    out = tmp_path / "model"
    ok("train", "--data", data, "--target", "price", "--out", out, "--param", "fit_intercept=False")
    card = json.loads((out / "card.json").read_text())
    assert card["parameters"] == {"fit_intercept": "False"}
    line = one_line_error(ppml("train", "--data", data, "--target", "price", "--out", out))
    assert "--force" in line
    ok("train", "--data", data, "--target", "price", "--out", out, "--force",
       "--estimator", "Ridge", "--param", "alpha=0.5")  # fmt: skip
    line = one_line_error(
        ppml(
            "train",
            "--data",
            data,
            "--target",
            "price",
            "--out",
            out,
            "--force",
            "--estimator",
            "Ridge",
            "--param",
            "alhpa=0.5",
        )
    )
    assert "Ridge has no parameter 'alhpa'" in line and "alpha" in line


def test_impute_error_and_missing_indicators(tmp_path: Path, keys: Path) -> None:
    rows = messy_rows()
    data = write(tmp_path / "plain.csv", rows)
    complete = [
        [*row[:1], "5.0", *row[2:]] if row[1] in ("NA", "", "rotary") else row for row in rows
    ]
    training = write(tmp_path / "complete.csv", complete)
    out = tmp_path / "model"
    ok("train", "--data", training, "--target", "price", "--out", out,
       "--impute", "size=error", "--missing-indicator", "colour")  # fmt: skip
    spec = FeatureSpec.load(out / "features.json")
    assert isinstance(spec.recipe, GenericRecipe)
    assert "colour:missing" in spec.feature_names
    assert next(f for f in spec.numeric if f.name == "size").fill is None
    line = one_line_error(
        ppml(
            "encrypt",
            "--private-key",
            keys / "private_key.json",
            "--features",
            out / "features.json",
            "--input",
            data,
            "--out",
            tmp_path / "q.jsonl",
        )
    )
    assert f"{data}: row 3" in line and "column 'size'" in line and "missing value" in line


def test_delimiter_and_encoding_options_reach_the_reader(tmp_path: Path) -> None:
    data = write(tmp_path / "euro.csv", messy_rows(), delimiter=";", bom=True)
    line = one_line_error(
        ppml(
            "train",
            "--data",
            data,
            "--target",
            "price",
            "--out",
            tmp_path / "m",
            "--delimiter",
            ",",
        )
    )
    assert "missing column 'price'" in line and "read as comma-separated" in line
    latin = tmp_path / "latin.csv"
    rows = messy_rows()
    rows[1][3] = "rosé"
    with open(latin, "w", newline="", encoding="latin-1") as handle:
        csv.writer(handle, delimiter="\t").writerows(rows)
    ok("train", "--data", latin, "--target", "price", "--out", tmp_path / "m",
       "--encoding", "latin-1", "--delimiter", "tab")  # fmt: skip
    assert "price" in FeatureSpec.load(tmp_path / "m" / "features.json").output.target


def test_param_values_are_read_without_evaluating_anything() -> None:
    from ppml.cli.roles import _parse_params

    assert _parse_params(
        [
            "fit_intercept=False",
            "copy_X=True",
            "random_state=None",
            "max_iter=200",
            "alpha=1e-3",
            "solver='lbfgs'",
            "quantiles=[0.1, 0.9]",
            "solver2=lbfgs",
            "expression=__import__('os').getcwd()",
        ]
    ) == {
        "fit_intercept": False,
        "copy_X": True,
        "random_state": None,
        "max_iter": 200,
        "alpha": 1e-3,
        "solver": "lbfgs",
        "quantiles": [0.1, 0.9],
        "solver2": "lbfgs",
        "expression": "__import__('os').getcwd()",
    }

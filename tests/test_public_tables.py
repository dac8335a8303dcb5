"""Real public tables (tests/data/public, attributed in SOURCE.md) go train -> encrypt -> predict
-> decrypt, and every prediction equals a scikit-learn pipeline built here independently.

The pipeline reads the file with the csv module and its stated delimiter, parses each cell
itself, imputes with ``SimpleImputer``, one-hot encodes with ``OneHotEncoder`` (rare and
unknown categories into one "infrequent" column), standardises and fits the same regressor;
only the column types are taken from the spec ppml inferred, and those are checked against
what each data set's manifest says they are.
"""

from __future__ import annotations

import csv
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ppml.crypto import PrivateKey, PublicKey
from ppml.features.columns import DEFAULT_MISSING_VALUES, ISO_DATE
from ppml.features.recipes import GenericRecipe
from ppml.features.schema import SchemaChoices
from ppml.features.spec import DEFAULT_MIN_CATEGORY_COUNT, EncodingReport, FeatureSpec
from ppml.model.training import train
from ppml.roles import customer, server

PUBLIC = Path(__file__).parent / "data" / "public"
MANIFEST = json.loads((PUBLIC / "datasets.json").read_text())
UNSEEN = "zz-never-seen"
MISSING = {v.lower() for v in DEFAULT_MISSING_VALUES}


def read_rows(entry: dict[str, Any], path: Path | None = None) -> tuple[list[str], list[list[str]]]:
    """The file as the csv module reads it with the manifest's delimiter (BOM removed)."""
    encoding = "utf-8-sig" if entry.get("bom") else "utf-8"
    delimiter = entry.get("delimiter") or ("\t" if entry["file"].endswith(".tsv") else ",")
    with open(path or PUBLIC / entry["file"], newline="", encoding=encoding) as handle:
        rows = list(csv.reader(handle, delimiter=delimiter))
    return rows[0], [row for row in rows[1:] if row]


def with_unseen_rows(entry: dict[str, Any], path: Path, spec: FeatureSpec) -> Path:
    """The data set plus two rows whose categories no training row had."""
    header, rows = read_rows(entry)
    extra = []
    for source in rows[:2]:
        row = list(source)
        for feature in spec.categorical:
            row[header.index(feature.name)] = UNSEEN
        extra.append(row)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *rows, *extra])
    return path


def cell_value(column: Any, text: str) -> Any:
    """What the independent pipeline makes of one cell (NaN or None when missing)."""
    text = text.strip()
    missing = text.lower() in MISSING
    if column.kind == "category":
        return None if missing else text
    if missing:
        return [math.nan] * len(column.numeric_fields)
    try:
        if column.kind == "number":
            return [float(text)]
        if column.kind == "boolean":
            return [1.0 if text.lower() in {v.lower() for v in column.true_values} else 0.0]
        if column.date_format == ISO_DATE:
            moment = datetime.fromisoformat(text)
        else:
            moment = datetime.strptime(text, column.date_format)
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        days = (moment - datetime(1970, 1, 1)).total_seconds() / 86400
        return [moment.year, moment.month, moment.weekday(), days]
    except ValueError:
        if column.kind == "boolean" or column.kind == "number" or column.kind == "date":
            return [math.nan] * len(column.numeric_fields)
        raise


def design(recipe: GenericRecipe, header: list[str], rows: list[list[str]]) -> tuple[Any, Any]:
    """Numeric matrix (NaN for missing) and category matrix (None for missing)."""
    numbers, categories = [], []
    for row in rows:
        number_row: list[float] = []
        category_row: list[str | None] = []
        for column in recipe.columns:
            value = cell_value(column, row[header.index(column.name)])
            if column.kind == "category":
                category_row.append(value)
            else:
                number_row.extend(value)
        numbers.append(number_row)
        categories.append(category_row)
    width = sum(len(c.numeric_fields) for c in recipe.columns)
    return (
        np.array(numbers, dtype=np.float64).reshape(len(rows), width),
        np.array(categories, dtype=object).reshape(len(rows), -1),
    )


def reference_predictions(entry: dict[str, Any], spec: FeatureSpec, score_path: Path) -> np.ndarray:
    recipe = spec.recipe
    assert isinstance(recipe, GenericRecipe)
    header, rows = read_rows(entry)
    target = header.index(entry["target"])
    labelled = [row for row in rows if row[target].strip().lower() not in MISSING]
    x_numbers, x_categories = design(recipe, header, labelled)
    y = np.array([float(row[target]) for row in labelled])
    indicators = [
        i
        for i, column in enumerate(c for c in recipe.columns if c.kind != "category")
        if column.indicator
    ]
    assert not indicators, "default settings add no missing indicators"
    numbers = SimpleImputer(strategy="median").fit(x_numbers)
    categories = make_pipeline(
        SimpleImputer(strategy="most_frequent", missing_values=None),
        OneHotEncoder(
            min_frequency=DEFAULT_MIN_CATEGORY_COUNT,
            handle_unknown="infrequent_if_exist",
            sparse_output=False,
        ),
    )
    if x_categories.shape[1]:
        categories.fit(x_categories)

    def features(x_n: np.ndarray, x_c: np.ndarray) -> np.ndarray:
        parts = [numbers.transform(x_n)] if x_n.shape[1] else []
        if x_c.shape[1]:
            parts.append(categories.transform(x_c))
        return np.hstack(parts)

    regression = make_pipeline(StandardScaler(), LinearRegression())
    regression.fit(features(x_numbers, x_categories), y)
    score_header, score_rows = read_rows({"file": "score.csv"}, score_path)
    s_numbers, s_categories = design(recipe, score_header, score_rows)
    return np.asarray(regression.predict(features(s_numbers, s_categories)))


@pytest.mark.parametrize("entry", MANIFEST, ids=[entry["name"] for entry in MANIFEST])
def test_public_table_end_to_end(
    entry: dict[str, Any], tmp_path: Path, real_keypair: tuple[PublicKey, PrivateKey]
) -> None:
    _, private_key = real_keypair
    choices = None
    if entry.get("categorical"):
        choices = SchemaChoices(categorical=frozenset(entry["categorical"]))
    result = train(PUBLIC / entry["file"], entry["target"], schema=choices)
    spec, model = result.spec, result.model
    recipe = spec.recipe
    assert isinstance(recipe, GenericRecipe)

    # The schema is what a data scientist would declare.
    kinds = {column.name: column.kind for column in recipe.columns}
    for name in entry.get("id_columns", []):
        assert name not in kinds, f"identifier {name!r} was used as a feature"
    for name in entry.get("categorical", []):
        assert kinds[name] == "category"
    for name in entry.get("dates", []):
        assert kinds[name] == "date"
    header, rows = read_rows(entry)
    target = header.index(entry["target"])
    skipped = sum(row[target].strip().lower() in MISSING for row in rows)
    assert result.skipped_rows == skipped
    assert result.training_rows == len(rows) - skipped

    scored = with_unseen_rows(entry, tmp_path / "score.csv", spec)
    spec.save(tmp_path / "features.json")
    report = EncodingReport()
    customer.encrypt_file(private_key, spec, scored, tmp_path / "query.jsonl", report=report)
    if spec.categorical:
        assert all(report.unseen[f.name][UNSEEN] == 2 for f in spec.categorical)
    server.predict_file(spec, model, tmp_path / "query.jsonl", tmp_path / "result.jsonl")
    customer.decrypt_file(
        private_key,
        tmp_path / "result.jsonl",
        tmp_path / "prices.csv",
        query=tmp_path / "query.jsonl",
        spec=spec,
    )
    with open(tmp_path / "prices.csv", newline="") as handle:
        decrypted = np.array([float(row["prediction"]) for row in csv.DictReader(handle)])

    expected = reference_predictions(entry, spec, scored)
    assert decrypted.shape == expected.shape == (len(rows) + 2,)
    scale = float(np.max(np.abs(expected)))
    np.testing.assert_allclose(decrypted, expected, rtol=1e-9, atol=1e-9 * scale)


def test_the_samples_exercise_every_defect() -> None:
    defects = {defect for entry in MANIFEST for defect in entry["defects"]}
    assert len(MANIFEST) >= 10
    assert defects >= {
        "R-style NA",
        "empty cells",
        "missing target",
        "iso date",
        "other date format",
        "identifier",
        "integer-coded categories",
        "stray word",
        "rare categories",
        "boolean",
        "semicolon",
        "bom",
        "tsv",
    }

"""Laptop feature engineering, the generic recipe and the public feature spec."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from ppml.datasets import laptops_csv
from ppml.errors import DataError, FileFormatError
from ppml.features import CsvTable, FeatureSpec, GenericRecipe, LaptopRecipe, Output
from ppml.features.recipes import FieldError
from ppml.features.spec import EncodingReport, fields_of_table

HEADER = ",Company,TypeName,Inches,ScreenResolution,Cpu,Ram,Memory,Gpu,OpSys,Weight,Price"
GOOD = (
    "0,Apple,Ultrabook,13.3,IPS Panel Retina Display 2560x1600,Intel Core i5 2.3GHz,8GB,"
    "128GB SSD,Intel Iris Plus Graphics 640,macOS,1.37kg,71378.6832"
)


def laptop(**changes: str) -> dict[str, str]:
    cells = dict(zip(HEADER.split(","), GOOD.split(","), strict=True))
    cells.update(changes)
    return cells


class TestLaptopRecipe:
    def test_a_full_row(self) -> None:
        numbers, categories, _ = LaptopRecipe().derive(laptop())
        assert numbers["ram_gb"] == 8 and numbers["weight_kg"] == 1.37
        assert numbers["ips"] == 1 and numbers["touchscreen"] == 0
        assert numbers["ppi"] == pytest.approx(math.hypot(2560, 1600) / 13.3)
        assert numbers["ssd_gb"] == 128 and numbers["hdd_gb"] == 0
        assert numbers["cpu_ghz"] == 2.3
        assert categories == {
            "company": "Apple",
            "type": "Ultrabook",
            "os": "macOS",
            "cpu_family": "Intel Core i5",
            "cpu_class": "other",
            "gpu_line": "Intel Iris",
        }

    @pytest.mark.parametrize(
        ("memory", "expected"),
        [
            ("256GB SSD +  1TB HDD", {"ssd_gb": 256, "hdd_gb": 1000}),
            ("1.0TB Hybrid", {"hybrid_gb": 1000}),
            ("64GB Flash Storage +  1TB HDD", {"flash_gb": 64, "hdd_gb": 1000}),
            ("512GB SSD +  512GB SSD", {"ssd_gb": 1024}),
        ],
    )
    def test_storage(self, memory: str, expected: dict[str, float]) -> None:
        numbers, *_ = LaptopRecipe().derive(laptop(Memory=memory))
        for kind in ("ssd_gb", "hdd_gb", "flash_gb", "hybrid_gb"):
            assert numbers[kind] == expected.get(kind, 0)

    @pytest.mark.parametrize(
        ("cpu", "family", "ghz", "cpu_class", "generation"),
        [
            ("Intel Core i7 7700HQ 2.8GHz", "Intel Core i7", 2.8, "H", 7),
            ("Intel Core i3 6006U 2GHz", "Intel Core i3", 2.0, "U", 6),
            ("AMD A9-Series 9420 3GHz", "AMD A-Series", 3.0, "other", 0),
            ("Samsung Cortex A72&A53 2.0GHz", "Samsung Cortex", 2.0, "other", 0),
            ("Intel Core M m3-7Y30 1.0GHz", "Intel Core M", 1.0, "other", 0),
        ],
    )
    def test_cpus(self, cpu: str, family: str, ghz: float, cpu_class: str, generation: int) -> None:
        numbers, categories, _ = LaptopRecipe().derive(laptop(Cpu=cpu))
        assert categories["cpu_family"] == family and categories["cpu_class"] == cpu_class
        assert numbers["cpu_ghz"] == ghz and numbers["cpu_generation"] == generation

    @pytest.mark.parametrize(
        ("gpu", "line"),
        [
            ("Nvidia GeForce GTX 1050 Ti", "Nvidia GeForce GTX"),
            ("Nvidia GTX 980 SLI", "Nvidia GeForce GTX"),
            ("Intel HD Graphics", "Intel HD"),
            ("AMD R17M-M1-70", "AMD Radeon R"),
            ("ARM Mali T860 MP4", "ARM Mali"),
        ],
    )
    def test_gpus(self, gpu: str, line: str) -> None:
        assert LaptopRecipe().derive(laptop(Gpu=gpu))[1]["gpu_line"] == line

    def test_touchscreen(self) -> None:
        numbers, *_ = LaptopRecipe().derive(
            laptop(ScreenResolution="IPS Panel Full HD / Touchscreen 1920x1080", Inches="15.6")
        )
        assert numbers["touchscreen"] == 1 and numbers["ppi"] == pytest.approx(141.21, abs=0.01)

    @pytest.mark.parametrize(
        ("column", "value"),
        [
            ("Ram", "8 gigs"),
            ("Weight", "4s"),
            ("Weight", "-1kg"),
            ("Inches", "?"),
            ("Inches", "0"),
            ("Memory", "256GB SSD + lots"),
            ("ScreenResolution", "Full HD"),
            ("Cpu", "Intel Core i5"),
            ("Gpu", " "),
        ],
    )
    def test_malformed_values(self, column: str, value: str) -> None:
        with pytest.raises(FieldError) as caught:
            LaptopRecipe().derive(laptop(**{column: value}))
        assert caught.value.column == column and repr(value) in str(caught.value)

    def test_every_bundled_laptop_parses(self) -> None:
        table = CsvTable(laptops_csv(), LaptopRecipe.input_columns)
        rows = list(fields_of_table(LaptopRecipe(), table))
        assert len(rows) == 1303
        for _, (numbers, _, unusual) in rows:
            assert not unusual
            assert all(math.isfinite(v) for v in numbers.values())


class TestTableErrors:
    def test_error_names_file_row_line_and_column(self, tmp_path: Path) -> None:
        path = tmp_path / "laptops.csv"
        bad = GOOD.replace("8GB", "8 gigs")
        path.write_text(f"{HEADER}\n{GOOD}\n{bad}\n")
        spec = trained_spec()
        with pytest.raises(DataError) as caught:
            list(spec.transform_table(spec.open_table(path)))
        message = str(caught.value)
        assert message.startswith(f"{path}: row 2 (line 3), column 'Ram': cannot read '8 gigs'")
        assert "\n" not in message

    def test_missing_columns(self, tmp_path: Path) -> None:
        path = tmp_path / "laptops.csv"
        path.write_text("Company,Ram\nApple,8GB\n")
        with pytest.raises(DataError, match="missing columns 'TypeName', 'Inches'"):
            trained_spec().open_table(path)

    def test_ragged_and_empty_files(self, tmp_path: Path) -> None:
        path = tmp_path / "t.csv"
        path.write_text("a,b\n1,2\n3\n")
        with pytest.raises(DataError, match=r"row 2 \(line 3\): expected 2 fields, found 1"):
            list(CsvTable(path).rows())
        path.write_text("")
        with pytest.raises(DataError, match="empty"):
            CsvTable(path)
        with pytest.raises(DataError, match="no such file"):
            CsvTable(tmp_path / "absent.csv")


_SPEC: list[FeatureSpec] = []


def trained_spec() -> FeatureSpec:
    if not _SPEC:
        table = CsvTable(laptops_csv(), LaptopRecipe.input_columns)
        fields = [f for _, f in fields_of_table(LaptopRecipe(), table)]
        _SPEC.append(FeatureSpec.fit(LaptopRecipe(), fields, Output.regression("Price", "exp")))
    return _SPEC[0]


class TestFeatureSpec:
    def test_shape(self) -> None:
        spec = trained_spec()
        assert len(spec.feature_names) == len(spec.bounds)
        assert spec.feature_names[:2] == ("inches", "touchscreen")
        assert "company=Apple" in spec.feature_names
        assert "company=Huawei" not in spec.feature_names  # 2 rows: below the minimum count

    def test_document_round_trip_and_no_weights(self, tmp_path: Path) -> None:
        spec = trained_spec()
        spec.save(tmp_path / "features.json")
        loaded = FeatureSpec.load(tmp_path / "features.json")
        assert loaded == spec and loaded.spec_id == spec.spec_id
        document = json.loads((tmp_path / "features.json").read_text())
        assert not {"weights", "intercept", "coef", "model"} & set(document)
        assert "intercept" not in json.dumps(document).lower()

    def test_altered_spec_is_detected(self, tmp_path: Path) -> None:
        spec = trained_spec()
        document = spec.to_document()
        document["numeric"][0]["high"] = 99.0
        (tmp_path / "features.json").write_text(json.dumps(document))
        with pytest.raises(FileFormatError, match="spec_id does not match"):
            FeatureSpec.load(tmp_path / "features.json")

    def test_unseen_categories(self) -> None:
        spec = trained_spec()
        fields = LaptopRecipe().derive(laptop(Company="Framework"))
        report = EncodingReport()
        vector = spec.vectorize(fields, report)
        company = [i for i, n in enumerate(spec.feature_names) if n.startswith("company")]
        other = spec.feature_names.index("company:other")
        # Counted, and encoded as the rare companies are: the "other" feature.
        assert [spec.feature_names[i] for i in company if vector[i]] == ["company:other"]
        assert vector[other] == 1.0
        assert report.unseen == {"company": {"Framework": 1}}
        with pytest.raises(FieldError, match="company category 'Framework' is not in the"):
            spec.vectorize(fields, strict=True)

    def test_bounds(self, tmp_path: Path) -> None:
        path = tmp_path / "laptops.csv"
        path.write_text(f"{HEADER}\n{GOOD.replace('8GB', '4096GB')}\n")
        spec = trained_spec()
        with pytest.raises(DataError, match="ram_gb = 4096 is outside the declared bounds"):
            list(spec.transform_table(spec.open_table(path)))
        ips = spec.bounds[spec.feature_names.index("ips")]
        assert ips == (0.0, 1.0)


def test_generic_recipe() -> None:
    recipe = GenericRecipe.of(("x",), ("colour",))
    assert recipe.derive({"x": " 2.5 ", "colour": " red "}) == ({"x": 2.5}, {"colour": "red"}, {})
    with pytest.raises(FieldError, match="cannot read 'abc' as a number"):
        recipe.derive({"x": "abc", "colour": "red"})
    with pytest.raises(FieldError, match="a missing value in 'colour'"):
        recipe.derive({"x": "1", "colour": ""})
    spec = FeatureSpec.fit(
        recipe,
        [recipe.derive({"x": "1", "colour": "red"}), recipe.derive({"x": "3", "colour": "blue"})],
        Output.regression("y"),
        min_category_count=1,
    )
    np.testing.assert_array_equal(
        spec.vectorize(recipe.derive({"x": "2", "colour": "blue"})), [2.0, 1.0, 0.0]
    )
    assert FeatureSpec.parse(json.dumps(spec.to_document()).encode()) == spec


def test_an_older_spec_version_is_refused_with_what_to_do(tmp_path: Path) -> None:
    document = trained_spec().to_document()
    document["version"] = 2
    (tmp_path / "features.json").write_text(json.dumps(document))
    with pytest.raises(FileFormatError, match=r"version 2 is not supported.*re-run ppml train"):
        FeatureSpec.load(tmp_path / "features.json")

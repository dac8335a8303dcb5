"""Laptop feature engineering, the generic recipe and the public feature spec."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ppml.datasets import laptops_csv
from ppml.errors import DataError, FileFormatError
from ppml.features import CsvTable, FeatureSpec, GenericRecipe, LaptopRecipe, Output
from ppml.features.columns import DATE_FORMATS, Column, UnusualValueError, read_date
from ppml.features.recipes import FieldError
from ppml.features.schema import SchemaChoices, infer_schema
from ppml.features.spec import EncodingReport, fields_of_table
from ppml.features.table import Row

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

    @pytest.mark.parametrize(
        "memory",
        # Python's re.IGNORECASE lets these match SSD, Hybrid and Flash Storage, but their
        # lower case (str.lower()) is no storage kind: such a cell is refused, not misread.
        ["256GB \u017fSD", "1.0TB Hybr\u0130d", "1.0TB Hybr\u0131d", "32GB Fla\u017fh Storage"],
    )
    def test_storage_kinds_compare_as_lowercase(self, memory: str) -> None:
        with pytest.raises(FieldError) as caught:
            LaptopRecipe().derive(laptop(Memory=memory))
        assert caught.value.column == "Memory"
        assert str(caught.value) == (
            f"cannot read {memory!r} as storage such as '256GB SSD + 1TB HDD'"
        )

    @given(cells=st.data())
    @example(cells={"Memory": "256GB \u017fSD"})
    @example(cells={"Memory": "1TB HDD + 1.0TB Hybr\u0131d"})
    @example(cells={"Ram": "\uff18\uff27\uff22", "Weight": "1.37\u212ag"})
    @example(cells={"Memory": "9" * 400 + "GB SSD", "Ram": "1e400GB"})
    @example(cells={"Cpu": "Intel Core i5 7200U nanGHz", "Inches": "inf"})
    def test_any_spelling_is_read_or_refused_naming_its_column(
        self, cells: st.DataObject | dict[str, str]
    ) -> None:
        if isinstance(cells, st.DataObject):
            column = cells.draw(st.sampled_from(LaptopRecipe.input_columns))
            cells = {column: cells.draw(spelling_of(laptop()[column]))}
        try:
            numbers, _, unusual = LaptopRecipe().derive(laptop(**cells))
        except FieldError as error:
            assert error.column in cells
        else:
            assert not unusual and all(not math.isnan(v) for v in numbers.values())

    def test_every_bundled_laptop_parses(self) -> None:
        table = CsvTable(laptops_csv(), LaptopRecipe.input_columns)
        rows = list(fields_of_table(LaptopRecipe(), table))
        assert len(rows) == 1303
        for _, (numbers, _, unusual) in rows:
            assert not unusual
            assert all(math.isfinite(v) for v in numbers.values())


# Characters that Unicode case folding, or float(), treats like an ASCII one: other cases,
# the long s, the dotless and dotted i, the Kelvin and Angstrom signs, fullwidth letters and
# digits, Arabic-Indic digits, spaces that are not ASCII.
_LOOKALIKES = {
    "s": "sS\u017f",
    "i": "iI\u0131\u0130",
    "k": "kK\u212a",
    "a": "aA\u212b\u00e5",
    "g": "gG\uff47",
    "b": "bB\uff22",
    "0": "0\uff10\u0660",
    "1": "1\uff11\u0661",
    "2": "2\uff12",
    "5": "5\uff15\u0665",
    "8": "8\uff18",
    " ": " \u3000\u00a0",
    "x": "xX\u00d7",
}


@st.composite
def spelling_of(draw: st.DrawFn, text: str) -> str:
    """``text`` with some characters swapped for a look-alike (case, script, width)."""
    return "".join(
        draw(st.sampled_from(_LOOKALIKES.get(ch.lower(), ch + ch.swapcase()))) for ch in text
    )


class TestTableErrors:
    def test_storage_a_lookalike_letter_spells_is_refused_naming_the_row(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "laptops.csv"
        row = GOOD.replace("128GB SSD", "128GB \u017fSD")
        path.write_text(f"{HEADER}\n{row}\n")
        spec = trained_spec()
        with pytest.raises(DataError) as caught:
            list(spec.transform_table(spec.open_table(path)))
        assert str(caught.value) == (
            f"{path}: row 1 (line 2), column 'Memory': cannot read '128GB \u017fSD' as "
            "storage such as '256GB SSD + 1TB HDD'"
        )

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


class TestGenericCells:
    @pytest.mark.parametrize(
        "text",
        # Aware times whose UTC date falls before year 1 or after 9999.
        ["0001-01-01T00:00+01:00", "00010101T0000+0001", "9999-12-31T23:59-01:00"],
    )
    def test_an_aware_time_outside_years_1_to_9999_is_unusual(self, text: str) -> None:
        with pytest.raises(UnusualValueError):
            read_date(text, "ISO 8601")
        refusing = GenericRecipe((Column("opened", "date", "error", date_format="ISO 8601"),))
        with pytest.raises(FieldError) as caught:
            refusing.derive({"opened": text})
        assert caught.value.column == "opened"
        assert str(caught.value) == f"cannot read {text!r} as a date (ISO 8601)"
        filling = GenericRecipe((Column("opened", "date", "median", date_format="ISO 8601"),))
        numbers, _, unusual = filling.derive({"opened": text})
        assert unusual == {"opened": text} and all(math.isnan(v) for v in numbers.values())

    @given(fmt=st.sampled_from(DATE_FORMATS), text=st.data())
    @example(fmt="ISO 8601", text="0001-01-01T00:00+01:00")
    @example(fmt="ISO 8601", text="9999-12-31T23:59:59.999999-00:00:01")
    @example(fmt="%b %d %Y", text="\u017fep 4 2021")
    @example(fmt="%d/%m/%Y", text="\uff10\uff14/03/2021")
    def test_read_date_reads_or_finds_the_cell_unusual(
        self, fmt: str, text: st.DataObject | str
    ) -> None:
        if isinstance(text, st.DataObject):
            text = text.draw(
                st.sampled_from(
                    [
                        "2021-03-04T10:30:00+02:00",
                        "0001-01-01T00:30+01:00",
                        "9999-12-31T23:30-01:00",
                        "Mar 4 2021",
                        "4 March 2021",
                        "Sep 4, 2021",
                        "04/03/2021",
                        "04.03.2021",
                        "03/04/21",
                    ]
                ).flatmap(spelling_of)
            )
        try:
            moment = read_date(text, fmt)
        except UnusualValueError:
            return
        assert moment.tzinfo is None and 1 <= moment.year <= 9999

    @pytest.mark.parametrize(
        ("cells", "true", "false"),
        [
            (["yes", "Yes", "no", "YES"], "yes", "no"),
            (["True", "false", "FALSE", "False", "true", "True"], "True", "false"),
            (["Y", "y", "N"], "Y", "N"),
        ],
    )
    def test_a_yes_no_column_may_spell_a_word_several_ways(
        self, cells: list[str], true: str, false: str
    ) -> None:
        rows = [Row(i + 1, i + 2, {"flag": cell}) for i, cell in enumerate(cells)]
        recipe, reports = infer_schema(rows, ["flag"], "", SchemaChoices())
        (column,) = recipe.columns
        assert reports[0].role == "boolean"
        # The most frequent spelling (the first seen on a tie) names each word; every
        # spelling reads, ignoring case.
        assert (column.true_values, column.false_values) == ((true,), (false,))
        for cell in cells:
            numbers, _, unusual = recipe.derive({"flag": cell})
            assert not unusual
            assert numbers["flag"] == float(cell.lower() == true.lower())

    @pytest.mark.parametrize(("true", "false"), [(("yes", "Yes"), ("no",)), (("y",), ("Y",))])
    def test_a_spec_lists_each_boolean_word_once(
        self, true: tuple[str, ...], false: tuple[str, ...]
    ) -> None:
        with pytest.raises(ValueError, match="each listed once, ignoring case"):
            Column("flag", "boolean", "median", true_values=true, false_values=false)

    @given(words=st.data())
    @example(words=["yes", "Yes", "no"])
    @example(words=["t", "T", "f", "F", "\u0131"])
    @example(words=["yes", "ye\u017f", "no"])
    @example(words=["\uff59\uff45\uff53", "no"])
    def test_inferred_columns_read_their_own_training_cells(
        self, words: st.DataObject | list[str]
    ) -> None:
        if isinstance(words, st.DataObject):
            seeds = ["yes", "no", "true", "false", "t", "f", "1.5", "2021-03-04", "Mar 4 2021"]
            words = words.draw(st.lists(st.sampled_from(seeds).flatmap(spelling_of), min_size=1))
        rows = [Row(i + 1, i + 2, {"c": word}) for i, word in enumerate(words)]
        recipe, reports = infer_schema(rows, ["c"], "", SchemaChoices())
        for word in words:
            fields = recipe.derive({"c": word})
            if reports[0].role in ("boolean", "date"):
                assert not fields.unusual, (reports[0].role, word)


def test_an_older_spec_version_is_refused_with_what_to_do(tmp_path: Path) -> None:
    document = trained_spec().to_document()
    document["version"] = 2
    (tmp_path / "features.json").write_text(json.dumps(document))
    with pytest.raises(FileFormatError, match=r"version 2 is not supported.*re-run ppml train"):
        FeatureSpec.load(tmp_path / "features.json")

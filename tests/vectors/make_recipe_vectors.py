"""Write tests/vectors/recipes.json: ppml's model inputs for raw rows, for a second implementation.

ppml itself computes every expected value here (its recipes are the first implementation; the
browser client's JavaScript is the second). The file holds:

- ``laptops``: the feature spec ``ppml train`` makes from the bundled laptop data, rows of that
  data chosen for variety (SSD + HDD, flash, hybrid, touchscreens, IPS panels, unusual CPUs and
  GPUs, every operating system spelling), rows written to probe the parser (Unicode digits,
  case, spacing), and rows ppml refuses with the column and the message;
- ``generic``: a spec trained on a small table made here (dates in two formats, categories,
  an integer-coded category, a yes/no column, numbers with missing values and a missing
  indicator, a number without a fill), with rows that have missing cells, unusual cells and
  unseen categories, and rows ppml refuses;
- ``log2``: ``math.log2`` on every RAM size and every 1 + SSD size of the bundled data and on
  a few inputs where the C library's log2 is not correctly rounded: there the member
  ``correctly_rounded`` gives the correctly rounded double, which differs from ppml's in the
  last bit.

Run from the repository root; the output depends on nothing but ppml and its data:

    python tests/vectors/make_recipe_vectors.py
"""

from __future__ import annotations

import csv
import json
import math
import sys
import tempfile
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

from ppml.datasets import LAPTOPS_TARGET, laptops_csv
from ppml.errors import DataError
from ppml.features.schema import SchemaChoices
from ppml.features.spec import FeatureSpec
from ppml.features.table import Row
from ppml.model.training import train

OUTPUT = Path(__file__).with_name("recipes.json")

# Bundled laptops by their index (the data's first column), each for what it shows.
LAPTOP_ROWS = {
    "0": "IPS Retina panel, Core i5 without a model number, Iris GPU, macOS",
    "1": "flash storage, a bare resolution",
    "2": "Core i5 7200U (class U, generation 7), no OS",
    "14": "Core M",
    "18": "1TB HDD only",
    "19": "IPS panel and touchscreen",
    "20": "Atom, 2GB RAM",
    "21": "SSD + HDD, Core i7 HQ",
    "22": "AMD E-Series, AMD Radeon R GPU",
    "44": "6GB RAM",
    "47": "AMD Ryzen",
    "50": "Android",
    "70": "Windows 10 S",
    "90": "AMD FX",
    "146": "4K screen",
    "151": "1.0TB hybrid drive",
    "177": "Nvidia GTX without GeForce, over 4 kg",
    "196": "Core i7 HK",
    "204": "Xeon, Quadro",
    "229": "AMD FirePro",
    "290": "Chrome OS",
    "1088": "class Y",
    "1191": "Samsung CPU, ARM Mali GPU",
    "30": "a company merged into other",
    "6": "Mac OS X",
    "3": "AMD Radeon Pro",
    "8": "Nvidia GeForce MX",
}

GOOD_LAPTOP = {
    "Company": "HP",
    "TypeName": "Notebook",
    "Inches": "15.6",
    "ScreenResolution": "Full HD 1920x1080",
    "Cpu": "Intel Core i5 7200U 2.5GHz",
    "Ram": "8GB",
    "Memory": "256GB SSD",
    "Gpu": "Intel HD Graphics 620",
    "OpSys": "Windows 10",
    "Weight": "1.86kg",
}

# Rows written to probe the parser: each changes some cells of GOOD_LAPTOP.
LAPTOP_PROBES = [
    ("Unicode digits are read as digits", {"Ram": "\uff18GB", "Inches": "\u0661\u0665.\u0666"}),
    ("units in any case, spaces around", {"Ram": " 8 gb ", "Weight": " 1.86 KG "}),
    ("the Kelvin sign lowercases to k", {"Weight": "1.86\u212ag"}),
    (
        "storage spelled loosely, summed",
        {"Memory": "  128gb  ssd +  1.0tb hdd + 32GB flash storage + 0.5TB Hybrid "},
    ),
    ("1 + SSD where the C library's log2 is not correctly rounded", {"Memory": "1620GB SSD"}),
    ("an unknown CPU and GPU keep two words", {"Cpu": "Apple  M1  Pro 3.2ghz", "Gpu": "Apple M1"}),
    ("a model number needs word boundaries", {"Cpu": "Intel Core i7 8650UXY 1.9GHz"}),
    ("a model number in Unicode digits", {"Cpu": "Intel Core i5 \u0668\u0662\u0665\u0660U 1.6GHz"}),
    (
        "the resolution needs not follow a space",
        {"ScreenResolution": "Touchscreen/IPS2560 x 1440 "},
    ),
    ("an unknown company, type and OS", {"Company": "Framework", "OpSys": "FreeBSD"}),
    ("a clock without a decimal point", {"Cpu": "Intel Core i3 6006U 2GHz"}),
    ("underscores in a number", {"Inches": "1_5.6"}),
    ("fullwidth digits before a unit", {"Ram": "\uff11\uff16GB", "Weight": "\uff12kg"}),
]

BAD_LAPTOPS = [
    {"Ram": "8"},
    {"Ram": "0GB"},
    {"Ram": "eightGB"},
    {"Ram": "nanGB"},
    {"Ram": "5000GB"},
    {"Inches": "-13.3"},
    {"Inches": "99"},
    {"Inches": "15,6"},
    {"Weight": "1.86"},
    {"Weight": "1.86 kilograms"},
    {"ScreenResolution": "Full HD"},
    {"ScreenResolution": "000x1080"},
    {"ScreenResolution": "1920X1080"},
    {"Cpu": "Intel Core i5 7200U"},
    {"Cpu": "Intel Core i5 0GHz"},
    {"Memory": "256GB SSD + "},
    {"Memory": "256 GB NVMe"},
    {"Gpu": "  "},
    {"OpSys": ""},
    {"Company": " "},
    {"TypeName": ""},
    {"Company": "", "Ram": "8"},
    # Letters that match a storage kind only through Unicode case folding: refused, since
    # their lower case is no storage kind.
    {"Memory": "256GB \u017fSD"},
    {"Memory": "1TB HDD + 1.0TB Hybr\u0130d"},
    {"Memory": "1.0TB Hybr\u0131d"},
    {"Memory": "32GB Fla\u017fh Storage"},
    {"Ram": "8\uff27\uff22"},
    {"Ram": "1e400GB"},
    {"Weight": "-infkg"},
    {"Memory": "9" * 400 + "GB SSD"},
]


def _spelled(word: str, i: int) -> str:
    """Some yes/no cells capitalised or in capitals: one word in any case."""
    return word.capitalize() if i % 8 == 6 else word.upper() if i % 13 == 12 else word


def _generic_table() -> list[dict[str, str]]:
    """A small table: dates (ISO and day.month.year), categories, an integer-coded plan,
    a yes/no column (in several cases), visits with missing cells, a score without missing
    cells, the target."""
    regions = ["north"] * 14 + ["east"] * 10 + ["south"] * 8 + ["west"] * 2 + ["Nord"]
    rows = []
    for i, region in enumerate(regions):
        visits = "" if i % 7 == 3 else ("NA" if i % 11 == 5 else str((i * 5) % 17))
        rows.append(
            {
                "opened": f"20{20 + i % 4}-{1 + i % 12:02d}-{1 + (i * 3) % 28:02d}"
                + ("T10:30:00+02:00" if i % 5 == 0 else ""),
                "renewed": f"{1 + (i * 7) % 28:02d}.{1 + (i * 5) % 12:02d}.{2022 + i % 2}",
                "region": region,
                "plan": str(1 + (i * 7) % 3),
                "member": _spelled(["yes", "no", "no"][i % 3], i) if i % 9 != 4 else "?",
                "visits": visits,
                "score": f"{(i * 37) % 100 / 10}",
                "spend": f"{100 + i * 13 % 70 + (i % 3) * 20}.5",
            }
        )
    return rows


GENERIC_GOOD = {
    "opened": "2022-06-15",
    "renewed": "15.06.2022",
    "region": "east",
    "plan": "2",
    "member": "yes",
    "visits": "4",
    "score": "5.5",
}

# (what it shows, cells changed, strict)
GENERIC_ROWS = [
    ("a complete row", {}),
    (
        "missing cells everywhere a fill exists",
        {
            "opened": "",
            "renewed": "NA",
            "region": " n/a ",
            "plan": "?",
            "member": "None",
            "visits": "null",
        },
    ),
    (
        "unusual cells count as missing",
        {"opened": "soon", "renewed": "31.02.2022", "member": "maybe", "visits": "many"},
    ),
    ("an unseen category goes to other", {"region": "west"}),
    ("categories are compared exactly", {"region": "North"}),
    ("a plan outside the spec has no other: all zeros", {"plan": "4"}),
    (
        "cells are stripped, words compared ignoring case",
        {"region": "  south ", "visits": " 7 ", "member": " NO "},
    ),
    ("numbers as float() reads them", {"visits": "1_0", "score": "\u0665.\u0665"}),
    ("a number with an exponent", {"visits": "1.2e1", "score": ".5"}),
    ("an aware time is converted to UTC", {"opened": "2021-03-04T10:30:00+02:00"}),
    ("a time with a fraction of a second", {"opened": "2021-03-04 10:30:00.5"}),
    ("a week date and a basic date", {"opened": "2021-W09-4", "renewed": "4.3.2021"}),
    ("a basic date-time with Z", {"opened": "20210304T083000Z"}),
    ("an offset with seconds and microseconds", {"opened": "2021-03-04T10:30+01:02:03.000004"}),
    ("a zero offset keeps no microseconds", {"opened": "2021-03-04T10:30+00:00:00.5"}),
    ("hour 24 is unusual", {"opened": "2021-03-04T24:00"}),
    ("an ordinal date is unusual", {"opened": "2021-063"}),
    ("a reduced date is unusual", {"opened": "2021-03"}),
    ("a leap day", {"opened": "2020-02-29T23:59:59.999999", "renewed": "29.02.2024"}),
    ("an aware time before year 1 in UTC is unusual", {"opened": "0001-01-01T00:00+01:00"}),
    ("an aware time after year 9999 in UTC is unusual", {"opened": "9999-12-31T23:59-01:00"}),
    ("a boolean word in any case", {"member": "yEs"}),
    ("a long s is no s: unusual", {"member": "ye\u017f"}),
    ("a missing word in any case", {"plan": "nUlL", "region": "n/A"}),
    ("fullwidth digits", {"visits": "\uff11\uff12"}),
    ("infinite and overflowing numbers are unusual", {"visits": "-Infinity"}),
    ("a number that overflows a double is unusual", {"visits": "1e400"}),
]

GENERIC_BAD = [
    ("a missing score, which has no fill", {"score": ""}, False),
    ("an unreadable score", {"score": "high"}, False),
    ("a visit count outside the bounds", {"visits": "1e6"}, False),
    ("a negative score outside the bounds", {"score": "-250"}, False),
    ("a date before 1970: days below the bounds", {"opened": "1969-07-20T20:17:40-05:00"}, False),
    ("strict: an unusual cell", {"visits": "many"}, True),
    ("strict: an unseen category", {"region": "west"}, True),
    (
        "strict: an aware time outside years 1-9999 in UTC",
        {"opened": "0001-01-01T00:00+01:00"},
        True,
    ),
    (
        "year 1 in UTC is read, and below the bounds",
        {"opened": "0001-01-01T00:00-01:00"},
        False,
    ),
    ("an infinite score, which has no fill", {"score": "inf"}, False),
    ("a huge score outside the bounds", {"score": "1e308"}, False),
]


def _exact(value: float) -> Any:
    return float(value)


def _inputs(spec: FeatureSpec, cells: dict[str, str], *, strict: bool = False) -> list[float]:
    return [float(v) for v in spec.transform_row(Row(1, 2, dict(cells)), strict=strict)]


def _refusal(spec: FeatureSpec, cells: dict[str, str], *, strict: bool = False) -> dict[str, str]:
    try:
        spec.transform_row(Row(1, 2, dict(cells)), strict=strict)
    except DataError as error:
        assert error.column is not None
        return {"column": error.column, "problem": error.problem}
    raise AssertionError(f"ppml accepts {cells!r}")


def _correct_log2(x: float) -> float:
    with localcontext() as context:
        context.prec = 80
        exact = Decimal(x).ln() / Decimal(2).ln()
    return float(exact)


def _log2_table(rows: list[dict[str, str]]) -> list[dict[str, float]]:
    inputs = {float(row["Ram"][:-2]) for row in rows}
    for row in rows:
        ssd = 0.0
        for part in row["Memory"].split("+"):
            size, _, kind = part.strip().partition(" ")
            if kind == "SSD":
                ssd += float(size[:-2]) * (1000.0 if size.endswith("TB") else 1.0)
        inputs.add(1.0 + ssd)
    # Inputs where glibc's log2 misses the correctly rounded double by one unit.
    inputs |= {1621.0, 57803.0, 104703.0, 112705.0, 186767.0}
    table = []
    for x in sorted(inputs):
        entry = {"x": x, "python": math.log2(x)}
        if _correct_log2(x) != entry["python"]:
            entry["correctly_rounded"] = _correct_log2(x)
        table.append(entry)
    return table


def _laptops() -> tuple[dict[str, Any], list[dict[str, str]]]:
    result = train(laptops_csv(), LAPTOPS_TARGET)
    spec = result.spec
    columns = list(spec.recipe.input_columns)
    with open(laptops_csv(), newline="", encoding="utf-8") as file:
        data = {row[""]: row for row in csv.DictReader(file)}
    cases = []
    for index, note in LAPTOP_ROWS.items():
        cells = {name: data[index][name] for name in columns}
        cases.append(
            {
                "note": f"bundled laptop {index}: {note}",
                "row": cells,
                "inputs": _inputs(spec, cells),
            }
        )
    for note, change in LAPTOP_PROBES:
        cells = {**GOOD_LAPTOP, **change}
        cases.append({"note": note, "row": cells, "inputs": _inputs(spec, cells)})
    refused = []
    for change in BAD_LAPTOPS:
        cells = {**GOOD_LAPTOP, **change}
        refused.append({"row": cells, "strict": False, "error": _refusal(spec, cells)})
    section = {"spec": spec.to_document(), "rows": cases, "refused": refused}
    return section, list(data.values())


def _generic() -> dict[str, Any]:
    table = _generic_table()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "accounts.csv"
        with open(path, "w", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, fieldnames=list(table[0]))
            writer.writeheader()
            writer.writerows(table)
        schema = SchemaChoices(
            categorical=frozenset({"plan"}),
            indicators=frozenset({"visits"}),
            fill={"score": "error"},
        )
        spec = train(path, "spend", schema=schema, min_category_count=3, folds=2).spec
    cases = []
    for note, change in GENERIC_ROWS:
        cells = {**GENERIC_GOOD, **change}
        cases.append({"note": note, "row": cells, "inputs": _inputs(spec, cells)})
    refused = []
    for note, change, strict in GENERIC_BAD:
        cells = {**GENERIC_GOOD, **change}
        refused.append(
            {
                "note": note,
                "row": cells,
                "strict": strict,
                "error": _refusal(spec, cells, strict=strict),
            }
        )
    return {"spec": spec.to_document(), "rows": cases, "refused": refused}


def build() -> dict[str, Any]:
    """The whole vector document."""
    laptops, laptop_rows = _laptops()
    return {
        "about": "ppml's model inputs for raw rows: see tests/vectors/make_recipe_vectors.py",
        "laptops": laptops,
        "generic": _generic(),
        "log2": _log2_table(laptop_rows),
    }


def render(document: dict[str, Any]) -> str:
    """The file's text: ASCII JSON, floats as Python's repr writes them (exact round trip)."""
    return json.dumps(document, indent=1, ensure_ascii=True, allow_nan=False) + "\n"


def main() -> int:
    OUTPUT.write_text(render(build()), encoding="ascii")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

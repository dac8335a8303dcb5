"""Recipes: how a raw table row becomes named numeric and categorical fields.

A recipe is public: the customer runs it on its own rows, the server ran it on
its training data. ``laptops`` is the domain recipe for laptop specification
sheets; ``generic`` uses numeric columns as they are and text columns as
categories.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, Protocol

from ppml.errors import DataError
from ppml.features.columns import (
    DEFAULT_MISSING_VALUES,
    Column,
    FillStrategy,
    UnusualValueError,
)
from ppml.features.table import Row


class FieldError(ValueError):
    """A cell cannot be parsed; carries the column so the caller can add file and row."""

    def __init__(self, column: str, value: str, expected: str, *, problem: str = "") -> None:
        self.column, self.value = column, value
        super().__init__(problem or f"cannot read {value!r} as {expected}")

    def at(self, row: Row, path: str | Path | None) -> DataError:
        """The user-facing error: this problem, located at ``row`` of the file ``path``."""
        return DataError(str(self), path=path, row=row.number, line=row.line, column=self.column)


class Fields(NamedTuple):
    """One row's fields: numbers (NaN: missing), categories (None: missing), and the cells
    that held an unusual value (text where a number or date belongs), by column, which
    count as missing."""

    numbers: dict[str, float]
    categories: dict[str, str | None]
    unusual: dict[str, str]


class Recipe(Protocol):
    """What a recipe offers the feature spec."""

    name: ClassVar[str]

    @property
    def input_columns(self) -> tuple[str, ...]: ...

    @property
    def numeric_fields(self) -> tuple[str, ...]: ...

    @property
    def categorical_fields(self) -> tuple[str, ...]: ...

    def derive(self, cells: Mapping[str, str]) -> Fields:
        """Numeric and categorical fields of one row."""
        ...

    def parameters(self) -> dict[str, Any]:
        """The recipe's settings, as stored in the feature spec."""
        ...

    def fill_strategy(self, field: str) -> FillStrategy | None:
        """How a missing value of ``field`` is filled in (None: it never is)."""
        ...

    def source_column(self, field: str) -> str:
        """The input column messages name for a problem with ``field``."""
        ...


def parse_number(column: str, text: str, *, unit: str = "", positive: bool = False) -> float:
    """Read a finite number, optionally followed by ``unit`` ("8GB", "1.37kg")."""
    body = text.strip()
    if unit:
        if not body.lower().endswith(unit.lower()):
            raise FieldError(column, text, f"a number in {unit}")
        body = body[: -len(unit)].strip()
    try:
        value = float(body)
    except ValueError:
        raise FieldError(column, text, f"a number{' in ' + unit if unit else ''}") from None
    if not math.isfinite(value) or (positive and value <= 0):
        raise FieldError(column, text, "a positive number" if positive else "a finite number")
    return value


_STORAGE_PART = re.compile(
    r"(\d+(?:\.\d+)?)\s*(GB|TB)\s+(SSD|HDD|Flash Storage|Hybrid)", re.IGNORECASE
)
_STORAGE_KIND = {
    "ssd": "ssd_gb",
    "hdd": "hdd_gb",
    "flash storage": "flash_gb",
    "hybrid": "hybrid_gb",
}
_RESOLUTION = re.compile(r"(\d{3,5})\s*x\s*(\d{3,5})\s*$")
_CPU = re.compile(r"^(.*?)\s+(\d+(?:\.\d+)?)\s*GHz\s*$", re.IGNORECASE)
_CPU_MODEL = re.compile(r"\b(\d{4})([A-Z]{0,2})\b")

# Ordered: the first matching prefix wins, so longer prefixes come first.
_CPU_FAMILIES = (
    ("Intel Core i7", "Intel Core i7"),
    ("Intel Core i5", "Intel Core i5"),
    ("Intel Core i3", "Intel Core i3"),
    ("Intel Core M", "Intel Core M"),
    ("Intel Celeron", "Intel Celeron"),
    ("Intel Pentium", "Intel Pentium"),
    ("Intel Atom", "Intel Atom"),
    ("Intel Xeon", "Intel Xeon"),
    ("AMD Ryzen", "AMD Ryzen"),
    ("AMD A", "AMD A-Series"),
    ("AMD E-Series", "AMD E-Series"),
    ("AMD FX", "AMD FX"),
)
_GPU_LINES = (
    ("Nvidia GeForce GTX", "Nvidia GeForce GTX"),
    ("Nvidia GTX", "Nvidia GeForce GTX"),
    ("Nvidia GeForce MX", "Nvidia GeForce MX"),
    ("Nvidia GeForce", "Nvidia GeForce"),
    ("Nvidia Quadro", "Nvidia Quadro"),
    ("AMD Radeon RX", "AMD Radeon RX"),
    ("AMD Radeon Pro", "AMD Radeon Pro"),
    ("AMD Radeon R", "AMD Radeon R"),
    ("AMD R", "AMD Radeon R"),
    ("AMD Radeon", "AMD Radeon"),
    ("AMD FirePro", "AMD FirePro"),
    ("Intel Iris", "Intel Iris"),
    ("Intel UHD", "Intel UHD"),
    ("Intel HD", "Intel HD"),
    ("Intel Graphics", "Intel HD"),
)
_OS_FAMILIES = {
    "macos": "macOS",
    "mac os x": "macOS",
    "windows 10": "Windows 10",
    "windows 10 s": "Windows 10",
    "windows 7": "Windows 7",
    "linux": "Linux",
    "chrome os": "Chrome OS",
    "no os": "No OS",
    "android": "Android",
}


def _by_prefix(text: str, table: tuple[tuple[str, str], ...]) -> str:
    lowered = text.lower()
    for prefix, name in table:
        if lowered.startswith(prefix.lower()):
            return name
    # An unknown brand keeps its first two words, so the spec's unseen-category
    # policy decides what happens to it.
    return " ".join(text.split()[:2]) or text


@dataclass(frozen=True)
class LaptopRecipe:
    """Domain features of a laptop specification sheet.

    Numeric: screen size, touchscreen and IPS flags, pixels per inch, CPU clock
    and Intel generation, RAM (and its log2), SSD (and log2(1 + GB)), HDD,
    flash and hybrid capacities, weight. Categorical: manufacturer, type, OS
    family, CPU family, CPU power class (H, U, Y or other), GPU line.
    """

    name: ClassVar[str] = "laptops"
    input_columns: ClassVar[tuple[str, ...]] = (
        "Company",
        "TypeName",
        "Inches",
        "ScreenResolution",
        "Cpu",
        "Ram",
        "Memory",
        "Gpu",
        "OpSys",
        "Weight",
    )
    numeric_fields: ClassVar[tuple[str, ...]] = (
        "inches",
        "touchscreen",
        "ips",
        "ppi",
        "cpu_ghz",
        "cpu_generation",
        "ram_gb",
        "log2_ram_gb",
        "ssd_gb",
        "log2_ssd_gb",
        "hdd_gb",
        "flash_gb",
        "hybrid_gb",
        "weight_kg",
    )
    categorical_fields: ClassVar[tuple[str, ...]] = (
        "company",
        "type",
        "os",
        "cpu_family",
        "cpu_class",
        "gpu_line",
    )

    def parameters(self) -> dict[str, Any]:
        """The laptop recipe has no settings."""
        return {}

    def fill_strategy(self, field: str) -> FillStrategy | None:
        """Laptop rows are complete: a missing or unreadable cell is an error."""
        return None

    def source_column(self, field: str) -> str:
        """Laptop fields are parsed from several columns at once: the field names itself."""
        return field

    def derive(self, cells: Mapping[str, str]) -> Fields:
        """Parse one laptop row into fields."""
        inches = parse_number("Inches", cells["Inches"], positive=True)
        screen = cells["ScreenResolution"]
        resolution = _RESOLUTION.search(screen)
        if resolution is None:
            raise FieldError("ScreenResolution", screen, "a screen description ending in WxH")
        width, height = int(resolution[1]), int(resolution[2])
        if width == 0 or height == 0:
            raise FieldError("ScreenResolution", screen, "a non-zero resolution")

        cpu_text = cells["Cpu"]
        cpu = _CPU.match(cpu_text.strip())
        if cpu is None:
            raise FieldError("Cpu", cpu_text, "a CPU name followed by its clock in GHz")
        cpu_name, cpu_ghz = cpu[1], parse_number("Cpu", cpu[2], positive=True)
        family = _by_prefix(cpu_name, _CPU_FAMILIES)
        model = _CPU_MODEL.search(cpu_name)
        is_core = family.startswith("Intel Core") and model is not None
        suffix = model[2] if is_core and model is not None else ""
        cpu_class = {"H": "H", "HQ": "H", "HK": "H", "U": "U", "Y": "Y"}.get(suffix, "other")
        generation = float(model[1][0]) if is_core and model is not None else 0.0

        ram = parse_number("Ram", cells["Ram"], unit="GB", positive=True)
        storage = dict.fromkeys(_STORAGE_KIND.values(), 0.0)
        for part in cells["Memory"].split("+"):
            piece = _STORAGE_PART.fullmatch(part.strip())
            # re.IGNORECASE also matches letters whose lower case is not ASCII (the long s
            # of "\u017fSD", the dotted and dotless i of "Hybr\u0131d"): the kind is looked up
            # by str.lower(), as every other word of a row is compared, and such a spelling is
            # refused like any unreadable storage.
            kind = None if piece is None else _STORAGE_KIND.get(piece[3].lower())
            if piece is None or kind is None:
                raise FieldError("Memory", cells["Memory"], "storage such as '256GB SSD + 1TB HDD'")
            size = float(piece[1]) * (1000.0 if piece[2].upper() == "TB" else 1.0)
            storage[kind] += size

        gpu = cells["Gpu"].strip()
        if not gpu:
            raise FieldError("Gpu", cells["Gpu"], "a graphics processor name")
        os_text = cells["OpSys"].strip()
        if not os_text:
            raise FieldError("OpSys", cells["OpSys"], "an operating system name")
        weight = parse_number("Weight", cells["Weight"], unit="kg", positive=True)
        company, laptop_type = cells["Company"].strip(), cells["TypeName"].strip()
        if not company:
            raise FieldError("Company", cells["Company"], "a manufacturer name")
        if not laptop_type:
            raise FieldError("TypeName", cells["TypeName"], "a laptop type")

        numeric = {
            "inches": inches,
            "touchscreen": float("touchscreen" in screen.lower()),
            "ips": float("ips" in screen.lower()),
            "ppi": math.hypot(width, height) / inches,
            "cpu_ghz": cpu_ghz,
            "cpu_generation": generation,
            "ram_gb": ram,
            "log2_ram_gb": math.log2(ram),
            "ssd_gb": storage["ssd_gb"],
            "log2_ssd_gb": math.log2(1.0 + storage["ssd_gb"]),
            "hdd_gb": storage["hdd_gb"],
            "flash_gb": storage["flash_gb"],
            "hybrid_gb": storage["hybrid_gb"],
            "weight_kg": weight,
        }
        categorical = {
            "company": company,
            "type": laptop_type,
            "os": _OS_FAMILIES.get(os_text.lower(), os_text),
            "cpu_family": family,
            "cpu_class": cpu_class,
            "gpu_line": _by_prefix(gpu, _GPU_LINES),
        }
        return Fields(numeric, dict(categorical), {})


@dataclass(frozen=True)
class GenericRecipe:
    """Any table: typed columns (numbers, categories, booleans, dates) with missing values.

    A cell whose text is one of ``missing_values`` (ignoring case and
    surrounding spaces) is missing; so is an unusual one (text in a number,
    boolean or date column), which is also reported. Missing cells become NaN
    numbers or a ``None`` category, filled in later from the feature spec, or
    refused where the column's fill is ``error``.
    """

    columns: tuple[Column, ...]
    missing_values: tuple[str, ...] = DEFAULT_MISSING_VALUES
    name: ClassVar[str] = "generic"
    _missing: frozenset[str] = field(init=False, repr=False, compare=False)
    _by_field: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [column.name for column in self.columns]
        if len(set(names)) != len(names):
            raise ValueError("column names must be distinct")
        fields = [*self.numeric_fields, *self.categorical_fields]
        if len(set(fields)) != len(fields):
            raise ValueError("two columns give fields of the same name")
        object.__setattr__(
            self, "_missing", frozenset(v.strip().lower() for v in self.missing_values)
        )
        object.__setattr__(
            self,
            "_by_field",
            {
                field: column
                for column in self.columns
                for field in (*column.numeric_fields, column.indicator_field, column.name)
            },
        )

    @classmethod
    def of(
        cls, numeric: tuple[str, ...], text: tuple[str, ...], *, fill: bool = False
    ) -> GenericRecipe:
        """Numeric and category columns with the default fills (or none: ``fill=False``)."""
        return cls(
            tuple(Column(n, "number", "median" if fill else "error") for n in numeric)
            + tuple(Column(t, "category", "most_frequent" if fill else "error") for t in text)
        )

    @property
    def input_columns(self) -> tuple[str, ...]:
        """Every column the recipe reads."""
        return tuple(column.name for column in self.columns)

    @property
    def numeric_fields(self) -> tuple[str, ...]:
        """Numbers, booleans and date parts, in column order, then the missing indicators."""
        return tuple(f for column in self.columns for f in column.numeric_fields) + tuple(
            column.indicator_field for column in self.columns if column.indicator
        )

    @property
    def categorical_fields(self) -> tuple[str, ...]:
        """Category columns: each field carries its column's name."""
        return tuple(column.name for column in self.columns if column.kind == "category")

    def column_of(self, field: str) -> Column:
        """The column a field comes from."""
        return self._by_field[field]

    def source_column(self, field: str) -> str:
        """The column a field comes from."""
        return self.column_of(field).name

    def fill_strategy(self, field: str) -> FillStrategy | None:
        """The fill of the field's column (None for indicators, which are never missing)."""
        column = self.column_of(field)
        if field == column.indicator_field and column.indicator:
            return None
        return None if column.fill == "error" else column.fill

    def parameters(self) -> dict[str, Any]:
        """The typed columns and the texts that mean "missing"."""
        return {
            "columns": [column.to_document() for column in self.columns],
            "missing_values": list(self.missing_values),
        }

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any]) -> GenericRecipe:
        """Rebuild the recipe from the spec (ValueError/TypeError/KeyError when malformed)."""
        if set(parameters) != {"columns", "missing_values"}:
            raise ValueError("the generic recipe has columns and missing_values")
        columns, missing = parameters["columns"], parameters["missing_values"]
        if not isinstance(columns, list) or not isinstance(missing, list):
            raise TypeError("columns and missing_values are lists")
        if not all(isinstance(v, str) for v in missing):
            raise TypeError("missing_values are strings")
        return cls(tuple(Column.from_document(item) for item in columns), tuple(missing))

    def is_missing(self, text: str) -> bool:
        """Whether a cell's text means "no value"."""
        return text.strip().lower() in self._missing

    def derive(self, cells: Mapping[str, str]) -> Fields:
        """Typed fields of one row; missing and unusual cells become NaN or None."""
        numbers: dict[str, float] = {}
        categories: dict[str, str | None] = {}
        unusual: dict[str, str] = {}
        for column in self.columns:
            text = cells[column.name].strip()
            value: dict[str, float] | str | None = None
            if not self.is_missing(text):
                try:
                    value = column.read(text)
                except UnusualValueError:
                    unusual[column.name] = cells[column.name]
            if value is None and column.fill == "error":
                problem = (
                    f"a missing value in {column.name!r}, which the feature spec does not fill in"
                    if column.name not in unusual
                    else f"cannot read {text!r} as a {column.kind}"
                    + (f" ({column.date_format})" if column.date_format else "")
                )
                raise FieldError(column.name, cells[column.name], "", problem=problem)
            if column.kind == "category":
                categories[column.name] = value if isinstance(value, str) else None
            elif isinstance(value, dict):
                numbers.update(value)
            else:
                numbers.update(dict.fromkeys(column.numeric_fields, math.nan))
            if column.indicator:
                numbers[column.indicator_field] = float(value is None)
        return Fields(numbers, categories, unusual)


def recipe_from_parameters(name: str, parameters: Mapping[str, Any]) -> Recipe:
    """Rebuild a recipe from its name and stored settings."""
    if name == LaptopRecipe.name:
        if parameters:
            raise ValueError("the laptops recipe has no settings")
        return LaptopRecipe()
    if name == GenericRecipe.name:
        return GenericRecipe.from_parameters(parameters)
    raise ValueError(f"unknown recipe {name!r}")

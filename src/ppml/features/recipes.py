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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from ppml.errors import DataError
from ppml.features.table import Row


class FieldError(ValueError):
    """A cell cannot be parsed; carries the column so the caller can add file and row."""

    def __init__(self, column: str, value: str, expected: str, *, problem: str = "") -> None:
        self.column, self.value = column, value
        super().__init__(problem or f"cannot read {value!r} as {expected}")

    def at(self, row: Row, path: str | Path | None) -> DataError:
        """The user-facing error: this problem, located at ``row`` of the file ``path``."""
        return DataError(str(self), path=path, row=row.number, line=row.line, column=self.column)


Fields = tuple[dict[str, float], dict[str, str]]


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
            if piece is None:
                raise FieldError("Memory", cells["Memory"], "storage such as '256GB SSD + 1TB HDD'")
            size = float(piece[1]) * (1000.0 if piece[2].upper() == "TB" else 1.0)
            storage[_STORAGE_KIND[piece[3].lower()]] += size

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
        return numeric, categorical


@dataclass(frozen=True)
class GenericRecipe:
    """Any table: numeric columns as they are, text columns as categories."""

    numeric_columns: tuple[str, ...]
    text_columns: tuple[str, ...]
    name: ClassVar[str] = "generic"

    @property
    def input_columns(self) -> tuple[str, ...]:
        """Every column the recipe reads."""
        return self.numeric_columns + self.text_columns

    @property
    def numeric_fields(self) -> tuple[str, ...]:
        """Numeric fields carry their column's name."""
        return self.numeric_columns

    @property
    def categorical_fields(self) -> tuple[str, ...]:
        """Categorical fields carry their column's name."""
        return self.text_columns

    def parameters(self) -> dict[str, Any]:
        """Which columns are numeric and which are text."""
        return {
            "numeric_columns": list(self.numeric_columns),
            "text_columns": list(self.text_columns),
        }

    def derive(self, cells: Mapping[str, str]) -> Fields:
        """Read the numeric cells; keep the text cells, stripped."""
        numeric = {name: parse_number(name, cells[name]) for name in self.numeric_columns}
        categorical = {}
        for name in self.text_columns:
            value = cells[name].strip()
            if not value:
                raise FieldError(name, cells[name], "a non-empty category")
            categorical[name] = value
        return numeric, categorical


def recipe_from_parameters(name: str, parameters: Mapping[str, Any]) -> Recipe:
    """Rebuild a recipe from its name and stored settings."""
    if name == LaptopRecipe.name:
        return LaptopRecipe()
    if name == GenericRecipe.name:
        numeric, text = parameters.get("numeric_columns"), parameters.get("text_columns")
        if not (isinstance(numeric, list) and isinstance(text, list)) or not all(
            isinstance(c, str) for c in [*numeric, *text]
        ):
            raise ValueError("generic recipe needs lists of numeric_columns and text_columns")
        return GenericRecipe(tuple(numeric), tuple(text))
    raise ValueError(f"unknown recipe {name!r}")

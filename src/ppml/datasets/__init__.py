"""Data sets shipped with ppml (see SOURCE.md beside this file for provenance)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

LAPTOPS_TARGET = "Price"
IRIS_TARGET = "species"


def laptops_csv() -> Path:
    """Path of the bundled laptop price data set (1303 laptops, 12 columns)."""
    return Path(str(resources.files(__name__).joinpath("laptop_data.csv")))


def iris_csv() -> Path:
    """Path of the bundled iris data set (150 flowers, 4 measurements, 3 species)."""
    return Path(str(resources.files(__name__).joinpath("iris.csv")))

"""The public feature spec: everything a customer needs to turn its rows into model inputs.

It names the recipe, the numeric fields with their declared bounds, the
categories of each categorical field (one-hot encoded, in order), what
happens to a category the spec does not list, the fixed-point precision of
every encrypted feature, and the target's transform. It holds no weights.
Its ``spec_id`` is a hash of its content, so query files can name it.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from ppml.encoding import FixedPoint
from ppml.encoding.packing import slot_bits_for
from ppml.errors import DataError, FileFormatError
from ppml.features.recipes import FieldError, Recipe, recipe_from_parameters
from ppml.features.table import CsvOptions, CsvTable, Row
from ppml.fileio import write_atomic
from ppml.wire.document import (
    DocumentReader,
    canonical_json,
    dump_document,
    parse_document,
    read_document_bytes,
)

SPEC_FORMAT = "ppml.feature-spec"
SPEC_VERSION = 2
DEFAULT_FRAC_BITS = 40
DEFAULT_WEIGHT_FRAC_BITS = 48
DEFAULT_MIN_CATEGORY_COUNT = 10
MAX_PRECISION_DIGITS = 30

UnseenPolicy = Literal["ignore", "error"]
TargetTransformName = Literal["none", "log"]


@dataclass(frozen=True, slots=True)
class NumericFeature:
    """A numeric field and the closed interval its values must lie in."""

    name: str
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class CategoricalFeature:
    """A categorical field and its known categories, one one-hot feature each."""

    name: str
    categories: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Target:
    """The predicted column and the transform the model was fitted on (``log``: ln y)."""

    name: str
    transform: TargetTransformName = "none"

    def forward(self, values: NDArray[np.float64]) -> NDArray[np.float64]:
        """From target units to the model's scale."""
        if self.transform == "log":
            return np.log(values)
        return values

    def inverse(self, values: NDArray[np.float64]) -> NDArray[np.float64]:
        """From the model's scale back to target units."""
        if self.transform == "log":
            return np.exp(values)
        return values


def _widened(low: float, high: float) -> tuple[float, float]:
    # Declared bounds reach one observed range beyond the observed values, so
    # ordinary new rows pass while absurd ones (a 5000 GB RAM typo) are refused.
    span = max(high - low, abs(high), 1.0)
    new_low = low - span
    if low >= 0:
        new_low = max(new_low, 0.0)
    return new_low, high + span


@dataclass(frozen=True)
class FeatureSpec:
    """The public description of a model's inputs (see the module docstring)."""

    recipe: Recipe
    numeric: tuple[NumericFeature, ...]
    categorical: tuple[CategoricalFeature, ...]
    target: Target
    unseen: UnseenPolicy = "ignore"
    frac_bits: int = DEFAULT_FRAC_BITS
    weight_frac_bits: int = DEFAULT_WEIGHT_FRAC_BITS
    slot_bits: int | None = None
    """Width of a packed slot; set by training once the weights are known (None: no packing)."""
    precision_digits: int | None = None
    """The optional precision cap: predictions carry uniform noise of up to the prediction
    bound / 10^digits (None: exact results)."""

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Model inputs in order: numeric fields, then ``field=category`` indicators."""
        return tuple(f.name for f in self.numeric) + tuple(
            f"{field.name}={category}"
            for field in self.categorical
            for category in field.categories
        )

    @property
    def bounds(self) -> tuple[tuple[float, float], ...]:
        """Declared (low, high) of every model input, in order."""
        indicator = (0.0, 1.0)
        return tuple((f.low, f.high) for f in self.numeric) + tuple(
            indicator for field in self.categorical for _ in field.categories
        )

    @property
    def fixed_point(self) -> FixedPoint:
        """The encoding of every encrypted feature."""
        return FixedPoint(self.frac_bits)

    @property
    def weight_fixed_point(self) -> FixedPoint:
        """The encoding of the server's weights."""
        return FixedPoint(self.weight_frac_bits)

    @property
    def prediction_fixed_point(self) -> FixedPoint:
        """The encoding of a prediction: a feature times a weight."""
        return self.fixed_point.times(self.weight_fixed_point)

    def input_bounds(self) -> tuple[int, ...]:
        """Encoded bound ``B_j >= |X_j|`` of every model input, from the declared bounds."""
        fmt = self.fixed_point
        return tuple(fmt.encode(max(abs(low), abs(high))) for low, high in self.bounds)

    def prediction_bound(self, weights: Sequence[float], intercept: float) -> int:
        """Encoded bound on ``|sum_j W_j X_j + B|`` for every input within the declared bounds."""
        weight_fmt = self.weight_fixed_point
        total = sum(
            abs(weight_fmt.encode(w)) * bound
            for w, bound in zip(weights, self.input_bounds(), strict=True)
        )
        return total + abs(self.prediction_fixed_point.encode(intercept))

    def noise_amplitude(self, bound: int) -> int:
        """Encoded amplitude of the precision cap's noise for a model whose predictions satisfy
        ``|X| <= bound`` (0 when the cap is off)."""
        if self.precision_digits is None:
            return 0
        scale: int = 10**self.precision_digits
        return bound // scale

    def required_slot_bits(self, weights: Sequence[float], intercept: float) -> int:
        """Slot width that holds every encoded input within its declared bounds, and every
        prediction of this model (plus the precision cap's noise), with its sign."""
        bound = self.prediction_bound(weights, intercept)
        largest_input = max(self.input_bounds(), default=0)
        return slot_bits_for(max(bound + self.noise_amplitude(bound), largest_input))

    @property
    def spec_id(self) -> str:
        """A fingerprint of the spec's content."""
        return hashlib.sha256(canonical_json(self._content())).hexdigest()[:32]

    @classmethod
    def fit(
        cls,
        recipe: Recipe,
        fields: Sequence[tuple[dict[str, float], dict[str, str]]],
        target: Target,
        *,
        unseen: UnseenPolicy = "ignore",
        frac_bits: int = DEFAULT_FRAC_BITS,
        min_category_count: int = DEFAULT_MIN_CATEGORY_COUNT,
    ) -> FeatureSpec:
        """Learn bounds and categories from training rows' fields.

        Categories seen fewer than ``min_category_count`` times are left out,
        so they are treated like unseen ones (under ``ignore``: all indicators
        zero, the intercept's baseline).
        """
        if not fields:
            raise DataError("no training rows")
        numeric = []
        for name in recipe.numeric_fields:
            values = [numbers[name] for numbers, _ in fields]
            if set(values) <= {0.0, 1.0}:
                numeric.append(NumericFeature(name, 0.0, 1.0))  # a flag stays a flag
            else:
                numeric.append(NumericFeature(name, *_widened(min(values), max(values))))
        categorical = []
        for name in recipe.categorical_fields:
            counts = Counter(categories[name] for _, categories in fields)
            kept = sorted(
                (value for value, count in counts.items() if count >= min_category_count),
                key=lambda value: (-counts[value], value),
            )
            categorical.append(CategoricalFeature(name, tuple(kept)))
        return cls(recipe, tuple(numeric), tuple(categorical), target, unseen, frac_bits)

    def vectorize(self, fields: tuple[dict[str, float], dict[str, str]]) -> NDArray[np.float64]:
        """The model inputs of one row's fields (no bounds check)."""
        numbers, categories = fields
        vector = [numbers[f.name] for f in self.numeric]
        for field in self.categorical:
            value = categories[field.name]
            if self.unseen == "error" and value not in field.categories:
                raise FieldError(
                    field.name, value, "", problem=f"unknown {field.name} category {value!r}"
                )
            vector.extend(float(value == category) for category in field.categories)
        return np.array(vector, dtype=np.float64)

    def check_bounds(self, vector: NDArray[np.float64]) -> None:
        """Raise :class:`FieldError` for the first input outside its declared bounds."""
        for feature, value in zip(self.numeric, vector, strict=False):
            if not feature.low <= value <= feature.high:
                raise FieldError(
                    feature.name,
                    repr(float(value)),
                    "",
                    problem=f"{feature.name} = {float(value):g} is outside the declared bounds "
                    f"[{feature.low:g}, {feature.high:g}]",
                )

    def transform_row(self, row: Row, path: str | Path | None = None) -> NDArray[np.float64]:
        """Model inputs of one raw row, with every problem reported as a :class:`DataError`."""
        try:
            vector = self.vectorize(self.recipe.derive(row.cells))
            self.check_bounds(vector)
        except FieldError as error:
            raise error.at(row, path) from None
        return vector

    def transform_table(self, table: CsvTable) -> Iterator[NDArray[np.float64]]:
        """Model inputs of every row of a table, in order."""
        for row in table.rows():
            yield self.transform_row(row, table.path)

    def open_table(self, path: str | Path, options: CsvOptions | None = None) -> CsvTable:
        """Open a CSV file (``-``: standard input), checking it has every column the recipe reads."""
        return CsvTable(path, self.recipe.input_columns, options)

    def _content(self) -> dict[str, Any]:
        return {
            "recipe": {"name": self.recipe.name, **self.recipe.parameters()},
            "input_columns": list(self.recipe.input_columns),
            "numeric": [{"name": f.name, "low": f.low, "high": f.high} for f in self.numeric],
            "categorical": [
                {"name": f.name, "categories": list(f.categories)} for f in self.categorical
            ],
            "unseen_categories": self.unseen,
            "encoding": {
                "frac_bits": self.frac_bits,
                "weight_frac_bits": self.weight_frac_bits,
                "slot_bits": self.slot_bits,
                # Written only when set, so specs without a cap keep their ids.
                **(
                    {}
                    if self.precision_digits is None
                    else {"precision_digits": self.precision_digits}
                ),
            },
            "target": {"name": self.target.name, "transform": self.target.transform},
            "features": list(self.feature_names),
        }

    def to_document(self) -> dict[str, Any]:
        """The JSON document of the spec."""
        return {
            "format": SPEC_FORMAT,
            "version": SPEC_VERSION,
            "spec_id": self.spec_id,
            **self._content(),
        }

    def save(self, path: str | Path) -> None:
        """Write ``features.json`` atomically."""
        write_atomic(path, dump_document(self.to_document()))

    @classmethod
    def parse(cls, data: bytes, path: str | Path | None = None) -> FeatureSpec:
        """Parse a spec document, checking that its id matches its content."""
        document = parse_document(
            data,
            path,
            expected_format=SPEC_FORMAT,
            supported_versions=frozenset({SPEC_VERSION}),
            error=FileFormatError,
        )
        try:
            spec = _spec_from_document(document)
        except (KeyError, TypeError, ValueError) as error:
            raise document.fail(f"invalid feature spec ({error})") from None
        if spec.spec_id != document.get("spec_id", str):
            raise document.fail("spec_id does not match the content (the file was altered)")
        return spec

    @classmethod
    def load(cls, path: str | Path) -> FeatureSpec:
        """Load ``features.json``."""
        return cls.parse(read_document_bytes(path, FileFormatError), path)


def _spec_from_document(document: DocumentReader) -> FeatureSpec:
    recipe_members = dict(document.get("recipe", dict))
    recipe = recipe_from_parameters(str(recipe_members.pop("name")), recipe_members)
    numeric = tuple(
        NumericFeature(str(item["name"]), float(item["low"]), float(item["high"]))
        for item in document.get("numeric", list)
    )
    categorical = tuple(
        CategoricalFeature(str(item["name"]), tuple(str(c) for c in item["categories"]))
        for item in document.get("categorical", list)
    )
    if [f.name for f in numeric] != list(recipe.numeric_fields) or [
        f.name for f in categorical
    ] != list(recipe.categorical_fields):
        raise ValueError("fields do not match the recipe")
    if any(
        not (math.isfinite(f.low) and math.isfinite(f.high) and f.low <= f.high) for f in numeric
    ):
        raise ValueError("bounds must be finite with low <= high")
    unseen = document.get("unseen_categories", str)
    if unseen not in ("ignore", "error"):
        raise ValueError("unseen_categories must be 'ignore' or 'error'")
    encoding = document.reader("encoding")
    frac_bits = encoding.get("frac_bits", int)
    weight_frac_bits = encoding.get("weight_frac_bits", int)
    slot_bits = encoding.members.get("slot_bits")
    if slot_bits is not None and (
        not isinstance(slot_bits, int) or isinstance(slot_bits, bool) or not 2 <= slot_bits <= 8192
    ):
        raise ValueError("slot_bits must be null (not trained yet) or an integer from 2 to 8192")
    if not (0 <= frac_bits <= 256 and 0 <= weight_frac_bits <= 256):
        raise ValueError("frac_bits and weight_frac_bits must be between 0 and 256")
    precision_digits = encoding.members.get("precision_digits")
    if precision_digits is not None and (
        not isinstance(precision_digits, int)
        or isinstance(precision_digits, bool)
        or not 1 <= precision_digits <= MAX_PRECISION_DIGITS
    ):
        raise ValueError(f"precision_digits must be an integer from 1 to {MAX_PRECISION_DIGITS}")
    target_members = document.reader("target")
    transform = target_members.get("transform", str)
    if transform not in ("none", "log"):
        raise ValueError("target transform must be 'none' or 'log'")
    target = Target(target_members.get("name", str), transform)
    spec = FeatureSpec(
        recipe,
        numeric,
        categorical,
        target,
        unseen,
        frac_bits,
        weight_frac_bits,
        slot_bits,
        precision_digits,
    )
    # Checked here, from the spec alone, so that whether a customer's rows
    # can be packed never depends on their values (which a server serving a
    # too-narrow spec could otherwise probe).
    needed = slot_bits_for(max(spec.input_bounds(), default=0))
    if slot_bits is not None and slot_bits < needed:
        raise ValueError(
            f"slots of {slot_bits} bits cannot hold the declared inputs ({needed} bits needed)"
        )
    return spec


def fields_of_table(
    recipe: Recipe, table: CsvTable
) -> Iterable[tuple[Row, tuple[dict[str, float], dict[str, str]]]]:
    """Each row of ``table`` with its derived fields; problems become :class:`DataError`."""
    for row in table.rows():
        try:
            yield row, recipe.derive(row.cells)
        except FieldError as error:
            raise error.at(row, table.path) from None

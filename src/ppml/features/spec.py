"""The public feature spec: everything a customer needs to turn its rows into model inputs.

It names the recipe, the numeric fields with their declared bounds, the
categories of each categorical field (one-hot encoded, in order, with an
"other" indicator for rare and unseen categories where training merged
some), the value that fills in each missing field, the fixed-point precision
of every encrypted feature, and the model's output: what its k scores per row
mean and how the customer turns them into predictions. It holds no weights.
Its ``spec_id`` is a hash of its RFC 8785 canonical content, so query files
can name it and any language can check it.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from ppml.encoding import FixedPoint
from ppml.encoding.packing import slot_bits_for
from ppml.errors import DataError, FileFormatError, UnsupportedVersionError
from ppml.features.outputs import Output
from ppml.features.recipes import FieldError, Fields, Recipe, recipe_from_parameters
from ppml.features.table import CsvOptions, CsvTable, Row
from ppml.fileio import write_atomic
from ppml.wire.document import (
    DocumentReader,
    dump_document,
    jcs,
    parse_document,
    read_document_bytes,
)

SPEC_FORMAT = "ppml.feature-spec"
SPEC_VERSION = 4
DEFAULT_FRAC_BITS = 40
DEFAULT_WEIGHT_FRAC_BITS = 48
DEFAULT_MIN_CATEGORY_COUNT = 10
MAX_PRECISION_DIGITS = 30


@dataclass(frozen=True, slots=True)
class NumericFeature:
    """A numeric field, the closed interval its values must lie in, and what fills it in
    when missing (None: a missing value is an error)."""

    name: str
    low: float
    high: float
    fill: float | None = None


@dataclass(frozen=True, slots=True)
class CategoricalFeature:
    """A categorical field: its known categories (one one-hot feature each), whether an
    ``other`` feature takes the rare and unseen ones, and the category that fills it in when
    missing (None: a missing value is an error)."""

    name: str
    categories: tuple[str, ...]
    other: bool = False
    fill: str | None = None

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The one-hot features: ``name=category`` each, then ``name:other``."""
        return tuple(f"{self.name}={c}" for c in self.categories) + (
            (f"{self.name}:other",) if self.other else ()
        )

    def encode(self, value: str) -> list[float]:
        """The one-hot features of a category (all zero for an unseen one without ``other``)."""
        flags = [float(value == category) for category in self.categories]
        if self.other:
            flags.append(float(value not in self.categories))
        return flags


@dataclass
class EncodingReport:
    """What happened to a table's cells on the way to model inputs, counted per column.

    The customer sees it (never the server): missing cells filled in from the
    spec, unusual cells (text where a number or date belongs, filled in as
    missing) and categories the spec does not list.
    """

    filled: Counter[str] = dataclass_field(default_factory=Counter)
    unusual: dict[str, Counter[str]] = dataclass_field(default_factory=dict)
    unseen: dict[str, Counter[str]] = dataclass_field(default_factory=dict)
    has_other: dict[str, bool] = dataclass_field(default_factory=dict)
    """Per column with unseen categories: whether the spec's ``other`` feature took them."""

    def note(self, kind: dict[str, Counter[str]], column: str, value: str) -> None:
        kind.setdefault(column, Counter())[value] += 1

    def warnings(self) -> list[str]:
        """One line per column with unusual values or unseen categories."""
        lines = []
        for column, values in self.unusual.items():
            lines.append(
                f"{column}: {values.total()} unusual value(s) treated as missing "
                f"({_examples(values)})"
            )
        for column, values in self.unseen.items():
            encoded = "'other'" if self.has_other.get(column) else "no category (all zeros)"
            lines.append(
                f"{column}: {values.total()} row(s) with categories the spec does not list "
                f"({_examples(values)}), encoded as {encoded}"
            )
        return lines

    def notes(self) -> list[str]:
        """One line per column whose missing cells were filled in."""
        return [
            f"{column}: {count} missing value(s) filled in as the spec says"
            for column, count in self.filled.items()
        ]


def _examples(values: Counter[str], limit: int = 3) -> str:
    shown = ", ".join(f"{value!r} x{count}" for value, count in values.most_common(limit))
    return shown + (", ..." if len(values) > limit else "")


_Fill = TypeVar("_Fill", float, str)


def _widened(low: float, high: float) -> tuple[float, float]:
    # Declared bounds reach one observed range beyond the observed values, so
    # ordinary new rows pass while absurd ones (a 5000 GB RAM typo) are refused.
    span = max(high - low, abs(high), 1.0)
    new_low = low - span
    if low >= 0:
        new_low = max(new_low, 0.0)
    return new_low, high + span


def spec_id_of(content: dict[str, Any]) -> str:
    """The id of a spec with this content (every member but format, version and spec_id): the
    first 32 hex digits of the SHA-256 of its RFC 8785 canonical form (feature-spec.md)."""
    return hashlib.sha256(jcs(content)).hexdigest()[:32]


@dataclass(frozen=True)
class FeatureSpec:
    """The public description of a model's inputs (see the module docstring)."""

    recipe: Recipe
    numeric: tuple[NumericFeature, ...]
    categorical: tuple[CategoricalFeature, ...]
    output: Output
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
            name for field in self.categorical for name in field.feature_names
        )

    @property
    def bounds(self) -> tuple[tuple[float, float], ...]:
        """Declared (low, high) of every model input, in order."""
        indicator = (0.0, 1.0)
        return tuple((f.low, f.high) for f in self.numeric) + tuple(
            indicator for field in self.categorical for _ in field.feature_names
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

    def prediction_bounds(
        self, weights: Sequence[Sequence[float]], intercepts: Sequence[float]
    ) -> tuple[int, ...]:
        """Encoded bound on ``|W_k . X + b_k|`` of each score k, for every input within the
        declared bounds (``weights``: one row of d weights per score)."""
        weight_fmt = self.weight_fixed_point
        input_bounds = self.input_bounds()
        return tuple(
            sum(
                abs(weight_fmt.encode(w)) * bound
                for w, bound in zip(row, input_bounds, strict=True)
            )
            + abs(self.prediction_fixed_point.encode(intercept))
            for row, intercept in zip(weights, intercepts, strict=True)
        )

    def prediction_bound(
        self, weights: Sequence[Sequence[float]], intercepts: Sequence[float]
    ) -> int:
        """Encoded bound on every score of every row within the declared bounds."""
        return max(self.prediction_bounds(weights, intercepts), default=0)

    def noise_amplitude(self, bound: int) -> int:
        """Encoded amplitude of the precision cap's noise for a model whose scores satisfy
        ``|X| <= bound`` (0 when the cap is off)."""
        if self.precision_digits is None:
            return 0
        scale: int = 10**self.precision_digits
        return bound // scale

    def required_slot_bits(
        self, weights: Sequence[Sequence[float]], intercepts: Sequence[float]
    ) -> int:
        """Slot width that holds every encoded input within its declared bounds, and every
        score of this model (plus the precision cap's noise), with its sign."""
        bound = self.prediction_bound(weights, intercepts)
        largest_input = max(self.input_bounds(), default=0)
        return slot_bits_for(max(bound + self.noise_amplitude(bound), largest_input))

    @property
    def spec_id(self) -> str:
        """A fingerprint of the spec's content."""
        return spec_id_of(self._content())

    @classmethod
    def fit(
        cls,
        recipe: Recipe,
        fields: Sequence[Fields],
        output: Output,
        *,
        frac_bits: int = DEFAULT_FRAC_BITS,
        min_category_count: int = DEFAULT_MIN_CATEGORY_COUNT,
        unlabelled: Sequence[Fields] = (),
    ) -> FeatureSpec:
        """Learn bounds, categories and fill values from training rows' fields.

        Bounds also cover the ``unlabelled`` rows (rows of the table without a
        target): their inputs are real values customers may send too.

        Categories seen fewer than ``min_category_count`` times share one
        ``other`` feature, which also takes categories never seen in training.
        Fill values are the median or mean of a field's present values, or its
        most frequent category (the smallest on a tie), as its recipe says.
        """
        if not fields:
            raise DataError("no training rows")
        numeric = []
        for name in recipe.numeric_fields:
            present = np.array([row.numbers[name] for row in fields], dtype=np.float64)
            present = present[~np.isnan(present)]
            strategy = recipe.fill_strategy(name)
            if present.size == 0:
                raise DataError(f"{name!r} has no values in the training rows")
            fill = None
            if strategy == "median":
                fill = float(np.median(present))
            elif strategy == "mean":
                fill = float(np.mean(present))
            seen = np.concatenate(
                [
                    present,
                    [row.numbers[name] for row in unlabelled if not math.isnan(row.numbers[name])],
                ]
            )
            low, high = float(seen.min()), float(seen.max())
            if set(np.unique(seen)) <= {0.0, 1.0}:
                numeric.append(NumericFeature(name, 0.0, 1.0, fill))  # a flag stays a flag
            else:
                numeric.append(NumericFeature(name, *_widened(low, high), fill))
        categorical = []
        for name in recipe.categorical_fields:
            counts = Counter(value for row in fields if (value := row.categories[name]) is not None)
            if not counts:
                raise DataError(f"{name!r} has no values in the training rows")
            kept = sorted(
                (value for value, count in counts.items() if count >= min_category_count),
                key=lambda value: (-counts[value], value),
            )
            most_frequent = None
            if recipe.fill_strategy(name) is not None:
                most_frequent = min(counts, key=lambda value: (-counts[value], value))
            categorical.append(
                CategoricalFeature(name, tuple(kept), len(kept) < len(counts), most_frequent)
            )
        return cls(recipe, tuple(numeric), tuple(categorical), output, frac_bits)

    def vectorize(
        self, fields: Fields, report: EncodingReport | None = None, *, strict: bool = False
    ) -> NDArray[np.float64]:
        """The model inputs of one row's fields (no bounds check).

        Missing fields are filled in from the spec; unusual cells and unseen
        categories are counted in ``report``, or refused with ``strict``.
        """
        numbers, categories, unusual = fields
        if unusual and strict:
            column, text = next(iter(unusual.items()))
            raise FieldError(column, text, "", problem=f"unusual value {text!r} in {column!r}")
        if report is not None:
            for column, text in unusual.items():
                report.note(report.unusual, column, text.strip())
        filled: set[str] = set()  # columns, once each: a date column gives several fields
        vector = []
        for feature in self.numeric:
            value = numbers[feature.name]
            if math.isnan(value):
                value = self._filled(feature.name, feature.fill, filled)
            vector.append(value)
        for field in self.categorical:
            category = categories[field.name]
            if category is None:
                category = self._filled(field.name, field.fill, filled)
            elif category not in field.categories and field.name not in unusual:
                if strict:
                    raise FieldError(
                        field.name,
                        category,
                        "",
                        problem=f"{field.name} category {category!r} is not in the feature spec",
                    )
                if report is not None:
                    report.note(report.unseen, field.name, category)
                    report.has_other[field.name] = field.other
            vector.extend(field.encode(category))
        if report is not None:
            report.filled.update(filled)
        return np.array(vector, dtype=np.float64)

    def _filled(self, name: str, fill: _Fill | None, filled: set[str]) -> _Fill:
        """``fill`` for a missing field, its column noted in ``filled``; refused where there
        is none."""
        column = self.recipe.source_column(name)
        if fill is None:
            raise FieldError(
                column,
                "",
                "",
                problem=f"a missing value in {column!r}, which the spec does not fill",
            )
        filled.add(column)
        return fill

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

    def transform_row(
        self,
        row: Row,
        path: str | Path | None = None,
        report: EncodingReport | None = None,
        *,
        strict: bool = False,
    ) -> NDArray[np.float64]:
        """Model inputs of one raw row, with every problem reported as a :class:`DataError`."""
        try:
            vector = self.vectorize(self.recipe.derive(row.cells), report, strict=strict)
            self.check_bounds(vector)
        except FieldError as error:
            raise error.at(row, path) from None
        return vector

    def transform_table(
        self, table: CsvTable, report: EncodingReport | None = None, *, strict: bool = False
    ) -> Iterator[NDArray[np.float64]]:
        """Model inputs of every row of a table, in order."""
        for row in table.rows():
            yield self.transform_row(row, table.path, report, strict=strict)

    def open_table(self, path: str | Path, options: CsvOptions | None = None) -> CsvTable:
        """Open a CSV file (``-``: standard input) with every column the recipe reads."""
        return CsvTable(path, self.recipe.input_columns, options)

    def _content(self) -> dict[str, Any]:
        return {
            "recipe": {"name": self.recipe.name, **self.recipe.parameters()},
            "input_columns": list(self.recipe.input_columns),
            "numeric": [
                {"name": f.name, "low": f.low, "high": f.high, "fill": f.fill} for f in self.numeric
            ],
            "categorical": [
                {
                    "name": f.name,
                    "categories": list(f.categories),
                    "other": f.other,
                    "fill": f.fill,
                }
                for f in self.categorical
            ],
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
            "output": self.output.to_document(),
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
        try:
            document = parse_document(
                data,
                path,
                expected_format=SPEC_FORMAT,
                supported_versions=frozenset({SPEC_VERSION}),
                error=FileFormatError,
            )
        except UnsupportedVersionError as error:
            # Older specs describe another model (version 3: one regression output;
            # version 2: no fills) under another id: the model must be trained again.
            raise UnsupportedVersionError(
                error.path, f"{error.problem}; re-run ppml train to write this version"
            ) from None
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
    if document.get("input_columns", list) != list(recipe.input_columns):
        raise ValueError("input_columns do not match the recipe")
    numeric = tuple(_numeric_feature(item) for item in document.get("numeric", list))
    categorical = tuple(_categorical_feature(item) for item in document.get("categorical", list))
    if [f.name for f in numeric] != list(recipe.numeric_fields) or [
        f.name for f in categorical
    ] != list(recipe.categorical_fields):
        raise ValueError("fields do not match the recipe")
    fills = [(f.name, f.fill) for f in numeric] + [(f.name, f.fill) for f in categorical]
    for name, fill in fills:
        if (fill is None) != (recipe.fill_strategy(name) is None):
            raise ValueError(f"{name!r}: a fill value goes with a fill strategy")
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
    output = Output.from_document(document.get("output", dict))
    spec = FeatureSpec(
        recipe,
        numeric,
        categorical,
        output,
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


def _numeric_feature(item: Any) -> NumericFeature:
    if not isinstance(item, dict) or set(item) != {"name", "low", "high", "fill"}:
        raise ValueError("a numeric field has name, low, high and fill")
    name, low, high, fill = item["name"], item["low"], item["high"], item["fill"]
    numbers = [low, high] + ([] if fill is None else [fill])
    if not isinstance(name, str) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in numbers
    ):
        raise ValueError(f"numeric field {name!r}: finite numbers needed")
    if not low <= high or (fill is not None and not low <= fill <= high):
        # A fill outside the bounds would be refused on every row that needs it.
        raise ValueError(f"numeric field {name!r}: need low <= fill <= high")
    return NumericFeature(name, float(low), float(high), None if fill is None else float(fill))


def _categorical_feature(item: Any) -> CategoricalFeature:
    if not isinstance(item, dict) or set(item) != {"name", "categories", "other", "fill"}:
        raise ValueError("a categorical field has name, categories, other and fill")
    name, categories, other, fill = item["name"], item["categories"], item["other"], item["fill"]
    if not (
        isinstance(name, str)
        and isinstance(categories, list)
        and all(isinstance(c, str) for c in categories)
        and isinstance(other, bool)
        and (fill is None or isinstance(fill, str))
    ):
        raise ValueError(f"categorical field {name!r}: wrongly typed members")
    if len(set(categories)) != len(categories):
        raise ValueError(f"categorical field {name!r}: repeated categories")
    return CategoricalFeature(name, tuple(categories), other, fill)


def fields_of_table(recipe: Recipe, table: CsvTable) -> Iterable[tuple[Row, Fields]]:
    """Each row of ``table`` with its derived fields; problems become :class:`DataError`."""
    for row in table.rows():
        try:
            yield row, recipe.derive(row.cells)
        except FieldError as error:
            raise error.at(row, table.path) from None

"""What each column of a training table is: inferred, reported, and open to the user's overrides.

The rules are plain so that a user can predict them (and docs/feature-spec.md
states them):

- a column of numbers is a number, even with a few unusual words among them
  (at most 5% of its present cells), which are then reported and treated as
  missing;
- a column of two words such as yes/no or true/false is a boolean;
- a column whose cells all read as dates in one format is a date;
- a text column whose present cells nearly all differ (90% or more, at least
  ten of them) is an identifier and left out, as is an unnamed or index column
  of consecutive integers;
- any other column is a category.

``--numeric``, ``--categorical``, ``--date`` and ``--drop`` override the
guess; an identifier a user names with ``--categorical`` is kept.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ppml.errors import SettingError
from ppml.features.columns import (
    BOOLEAN_PAIRS,
    DATE_FORMATS,
    DEFAULT_MISSING_VALUES,
    Column,
    ColumnKind,
    FillStrategy,
    UnusualValueError,
    date_format_of,
    read_date,
    read_number,
)
from ppml.features.recipes import GenericRecipe
from ppml.features.table import Row

ColumnRole = Literal["number", "category", "boolean", "date", "identifier", "ignored", "target"]

MAX_UNUSUAL_SHARE = 0.05
IDENTIFIER_DISTINCT_SHARE = 0.9
IDENTIFIER_MIN_VALUES = 10
INDEX_NAMES = frozenset({"", "unnamed: 0", "rownames", "index", "id"})


@dataclass
class ColumnReport:
    """One column of the training table: what it became, and why."""

    name: str
    role: ColumnRole
    missing: int = 0
    unusual: int = 0
    unusual_examples: tuple[str, ...] = ()
    categories_kept: int | None = None
    categories_merged: int | None = None
    fill: str | None = None
    note: str = ""

    def cells(self) -> tuple[str, ...]:
        """The report as a table row: name, type, missing, unusual, categories, fill, note."""
        categories = (
            f"{self.categories_kept} kept, {self.categories_merged} merged"
            if self.categories_kept is not None
            else ""
        )
        return (
            self.name,
            self.role,
            str(self.missing),
            str(self.unusual),
            categories,
            self.fill or "",
            self.note,
        )

    def to_document(self) -> dict[str, Any]:
        """The report as the model card stores it."""
        return {
            "name": self.name,
            "type": self.role,
            "missing": self.missing,
            "unusual": self.unusual,
            "unusual_examples": list(self.unusual_examples),
            "categories_kept": self.categories_kept,
            "categories_merged_into_other": self.categories_merged,
            "fill": self.fill,
            "note": self.note,
        }


@dataclass(frozen=True)
class SchemaChoices:
    """The user's say over the inferred schema (column names as in the file's header)."""

    numeric: frozenset[str] = frozenset()
    categorical: frozenset[str] = frozenset()
    dates: frozenset[str] = frozenset()
    drop: frozenset[str] = frozenset()
    fill: Mapping[str, FillStrategy] = field(default_factory=dict)
    """Per-column fill strategy; the key ``*`` sets it for every column it suits."""
    indicators: frozenset[str] = frozenset()
    all_indicators: bool = False
    """Add a missing indicator to every column with missing values in training."""
    missing_values: tuple[str, ...] = DEFAULT_MISSING_VALUES

    def check(self, columns: Sequence[str], target: str) -> None:
        """Refuse overrides of columns the table does not have, or contradictory ones."""
        named = {
            "--numeric": self.numeric,
            "--categorical": self.categorical,
            "--date": self.dates,
            "--drop": self.drop,
            "--missing-indicator": self.indicators,
            "--impute": frozenset(self.fill) - {"*"},
        }
        for option, names in named.items():
            unknown = sorted(names - set(columns))
            if unknown:
                raise SettingError(
                    f"{option}: no column {', '.join(map(repr, unknown))} in the table "
                    f"(columns: {', '.join(map(repr, columns))})"
                )
            if target in names:
                raise SettingError(f"{option}: {target!r} is the target")
        kinds = [self.numeric, self.categorical, self.dates, self.drop]
        for index, first in enumerate(kinds):
            for second in kinds[index + 1 :]:
                if first & second:
                    raise SettingError(
                        f"{', '.join(map(repr, sorted(first & second)))} given two types"
                    )


def _is_missing(text: str, missing: frozenset[str]) -> bool:
    return text.strip().lower() in missing


def _boolean_words(values: Counter[str]) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """The true and false word of a column of yes/no words (None: it is not one).

    Cells are read ignoring case (``str.lower()``), as :meth:`Column.read` reads them, so
    "yes", "Yes" and "YES" are one word: the spec keeps its most frequent spelling (the
    first in the table on a tie), the one a form shows.
    """
    lowered = {value.lower() for value in values}
    for true, false in BOOLEAN_PAIRS:
        if lowered and lowered <= {true, false}:
            return _spelling(values, true), _spelling(values, false)
    return None


def _spelling(values: Counter[str], word: str) -> tuple[str]:
    spellings = [value for value in values if value.lower() == word]
    if not spellings:
        return (word,)
    # A Counter keeps its values in the order first seen; min() keeps the first of a tie.
    return (min(spellings, key=lambda value: -values[value]),)


def _numbers_with_unusual(values: list[str]) -> tuple[int, Counter[str]]:
    unusual: Counter[str] = Counter()
    numbers = 0
    for text in values:
        try:
            read_number(text)
            numbers += 1
        except UnusualValueError:
            unusual[text] += 1
    return numbers, unusual


def _is_index(name: str, values: list[str]) -> bool:
    if name.strip().lower() not in INDEX_NAMES or not values:
        return False
    try:
        numbers = sorted(int(v) for v in values)
    except ValueError:
        return False
    return numbers == list(range(numbers[0], numbers[0] + len(numbers)))


def infer_schema(
    rows: Sequence[Row], columns: Sequence[str], target: str, choices: SchemaChoices
) -> tuple[GenericRecipe, list[ColumnReport]]:
    """The generic recipe of a training table, and a report on every column."""
    choices.check(columns, target)
    missing = frozenset(v.strip().lower() for v in choices.missing_values)
    recipe_columns: list[Column] = []
    reports: list[ColumnReport] = []
    for name in columns:
        cells = [row.cells[name].strip() for row in rows]
        present = [text for text in cells if not _is_missing(text, missing)]
        report = ColumnReport(name, "ignored", missing=len(cells) - len(present))
        reports.append(report)
        if name == target:
            report.role = "target"
            continue
        if name in choices.drop:
            report.note = "dropped (--drop)"
            continue
        if not present:
            report.note = "no values"
            continue
        kind, column_note, unusual = _kind_of(name, present, choices)
        if kind is None:
            report.role = "identifier"
            report.note = column_note
            continue
        report.role = kind
        report.note = column_note
        report.unusual = unusual.total()
        report.unusual_examples = tuple(value for value, _ in unusual.most_common(3))
        fill = _fill_of(name, kind, choices)
        indicator = name in choices.indicators or (
            choices.all_indicators and report.missing + report.unusual > 0
        )
        date_format = date_format_of(present) if kind == "date" else None
        if kind == "date" and date_format is None:
            # A --date column none of whose formats fits every cell: the format that
            # reads most of them, the rest unusual.
            date_format, unreadable = _best_date_format(name, present)
            report.unusual = unreadable.total()
            report.unusual_examples = tuple(value for value, _ in unreadable.most_common(3))
        true_values: tuple[str, ...] = ()
        false_values: tuple[str, ...] = ()
        if kind == "boolean":
            words = _boolean_words(Counter(present))
            assert words is not None
            true_values, false_values = words
        report.fill = fill
        recipe_columns.append(
            Column(name, kind, fill, indicator, date_format, true_values, false_values)
        )
    return GenericRecipe(tuple(recipe_columns), choices.missing_values), reports


def _kind_of(
    name: str, present: list[str], choices: SchemaChoices
) -> tuple[ColumnKind | None, str, Counter[str]]:
    """The column's kind (None: an identifier), a note, and its unusual values."""
    numbers, unusual = _numbers_with_unusual(present)
    if name in choices.categorical:
        return "category", "category (--categorical)", Counter()
    if name in choices.numeric:
        return "number", "number (--numeric)", unusual
    if name in choices.dates:
        return "date", "date (--date)", Counter()
    if _is_index(name, present):
        return None, "row index: left out", Counter()
    if (numbers and unusual.total() <= math.floor(MAX_UNUSUAL_SHARE * len(present))) or (
        numbers and unusual.total() == 1 and len(present) >= 20
    ):
        note = "number" + (" with unusual values treated as missing" if unusual else "")
        return "number", note, unusual
    if _boolean_words(Counter(present)) is not None:
        return "boolean", "", Counter()
    if date_format_of(present) is not None:
        return "date", "", Counter()
    distinct = len(set(present))
    if len(present) >= IDENTIFIER_MIN_VALUES and distinct >= IDENTIFIER_DISTINCT_SHARE * len(
        present
    ):
        return (
            None,
            f"{distinct} different values in {len(present)} rows: an identifier, left out "
            "(--categorical keeps it)",
            Counter(),
        )
    return "category", "", Counter()


def _best_date_format(name: str, present: list[str]) -> tuple[str, Counter[str]]:
    best: tuple[int, str, Counter[str]] | None = None
    for candidate in DATE_FORMATS:
        unreadable: Counter[str] = Counter()
        for text in present:
            try:
                read_date(text, candidate)
            except UnusualValueError:
                unreadable[text] += 1
        if best is None or unreadable.total() < best[0]:
            best = (unreadable.total(), candidate, unreadable)
    assert best is not None
    if best[0] == len(present):
        raise SettingError(
            f"--date: no supported date format reads column {name!r} (e.g. {present[0]!r})"
        )
    return best[1], best[2]


def _fill_of(name: str, kind: ColumnKind, choices: SchemaChoices) -> FillStrategy:
    default: FillStrategy = "most_frequent" if kind == "category" else "median"
    chosen = choices.fill.get(name)
    if chosen is None:
        everywhere = choices.fill.get("*")
        # "--impute mean" speaks of numbers: categories keep their most frequent value.
        suits = everywhere is not None and (
            everywhere == "error" or (kind == "category") == (everywhere == "most_frequent")
        )
        return everywhere if suits and everywhere is not None else default
    if (kind == "category") != (chosen in ("most_frequent", "error")) and chosen != "error":
        raise SettingError(f"--impute: a {kind} column ({name!r}) cannot be filled by {chosen}")
    return chosen

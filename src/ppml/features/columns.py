"""Typed columns of a generic table: how one cell becomes a number, a flag, a date or a category.

Every rule here is public and deterministic, because the customer applies it
to its own rows exactly as the server applied it to the training rows; each
is written down in docs/feature-spec.md so that another implementation can
follow it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

ColumnKind = Literal["number", "category", "boolean", "date"]
FillStrategy = Literal["median", "mean", "most_frequent", "error"]

COLUMN_KINDS: tuple[ColumnKind, ...] = ("number", "category", "boolean", "date")
FILL_STRATEGIES: tuple[FillStrategy, ...] = ("median", "mean", "most_frequent", "error")
DEFAULT_MISSING_VALUES: tuple[str, ...] = ("", "NA", "N/A", "NaN", "null", "None", "?")
"""Cell texts that mean "no value", compared after stripping spaces, ignoring case."""

ISO_DATE = "ISO 8601"
DATE_FORMATS: tuple[str, ...] = (
    ISO_DATE,
    "%b %d %Y",
    "%d %b %Y",
    "%b %d, %Y",
    "%B %d, %Y",
    "%d %B %Y",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%Y/%m/%d",
    "%d.%m.%Y",
    "%m/%d/%y",
    "%d/%m/%y",
)
"""Formats tried, in order, when a column's dates are recognised (``strptime`` patterns in the
C locale, or ISO 8601 as Python's ``datetime.fromisoformat`` reads it)."""

DATE_PARTS = ("year", "month", "day_of_week", "days")
"""Numeric fields of a date column: calendar year, month 1-12, day of week 0 (Monday) to 6,
and days since 1970-01-01 (fractional when the cell has a time of day)."""

BOOLEAN_PAIRS: tuple[tuple[str, str], ...] = (
    ("true", "false"),
    ("yes", "no"),
    ("t", "f"),
    ("y", "n"),
)
"""Words read as 1 and 0 (ignoring case) in a boolean column."""

_EPOCH = datetime(1970, 1, 1)


class UnusualValueError(ValueError):
    """A cell holds text that its column's kind cannot read (it then counts as missing)."""


def read_number(text: str) -> float:
    """A finite number, or :class:`UnusualValueError`."""
    try:
        value = float(text)
    except ValueError:
        raise UnusualValueError(text) from None
    if not math.isfinite(value):
        raise UnusualValueError(text)
    return value


def read_date(text: str, date_format: str) -> datetime:
    """A date (and time) in ``date_format``; aware times are converted to UTC.

    :class:`UnusualValueError` when the text is no such date, or an aware time whose UTC
    date falls outside years 1 to 9999."""
    try:
        if date_format == ISO_DATE:
            moment = datetime.fromisoformat(text)
        else:
            moment = datetime.strptime(text, date_format)
    except ValueError:
        raise UnusualValueError(text) from None
    if moment.tzinfo is not None:
        try:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:
            # The moment is a date, but its UTC date falls outside years 1-9999, which no
            # datetime holds ("0001-01-01T00:00+01:00"): unreadable, like "10000-01-01".
            raise UnusualValueError(text) from None
    return moment


def date_parts(moment: datetime) -> dict[str, float]:
    """The numeric fields of a date: see :data:`DATE_PARTS`."""
    days = (moment - _EPOCH).total_seconds() / 86400.0
    return {
        "year": float(moment.year),
        "month": float(moment.month),
        "day_of_week": float(date.weekday(moment)),
        "days": days,
    }


def date_format_of(texts: list[str]) -> str | None:
    """The first of :data:`DATE_FORMATS` that reads every one of ``texts`` (None: none does)."""
    for candidate in DATE_FORMATS:
        try:
            for text in texts:
                read_date(text, candidate)
        except UnusualValueError:
            continue
        return candidate
    return None


@dataclass(frozen=True)
class Column:
    """One input column of a generic table, as the feature spec declares it.

    ``fill`` says what stands in for a missing (or unusual) cell: the median
    or mean of the training values, the most frequent category, or ``error``
    (the row is refused). ``indicator`` adds a ``<name>:missing`` 0/1 feature.
    """

    name: str
    kind: ColumnKind
    fill: FillStrategy
    indicator: bool = False
    date_format: str | None = None
    true_values: tuple[str, ...] = ()
    false_values: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in COLUMN_KINDS:
            raise ValueError(f"column {self.name!r}: unknown kind {self.kind!r}")
        if self.fill not in FILL_STRATEGIES:
            raise ValueError(f"column {self.name!r}: unknown fill {self.fill!r}")
        numeric_fill = self.fill in ("median", "mean")
        if (self.kind == "category" and numeric_fill) or (
            self.kind != "category" and self.fill == "most_frequent"
        ):
            raise ValueError(f"column {self.name!r}: a {self.kind} cannot be filled by {self.fill}")
        if (self.kind == "date") != (self.date_format is not None):
            raise ValueError(f"column {self.name!r}: a date format goes with date columns only")
        if self.date_format is not None and self.date_format not in DATE_FORMATS:
            raise ValueError(f"column {self.name!r}: unsupported date format {self.date_format!r}")
        if self.kind == "boolean":
            lowered = [v.lower() for v in (*self.true_values, *self.false_values)]
            if not self.true_values or not self.false_values or len(set(lowered)) < len(lowered):
                # Cells are compared ignoring case, so "Yes" and "yes" are one word: listed
                # twice it would say nothing more, listed on both sides it would contradict.
                raise ValueError(
                    f"column {self.name!r}: a boolean needs at least one true and one false "
                    "word, each listed once, ignoring case"
                )
        elif self.true_values or self.false_values:
            raise ValueError(f"column {self.name!r}: true/false words go with booleans only")

    @property
    def numeric_fields(self) -> tuple[str, ...]:
        """The numeric fields this column gives (before its missing indicator)."""
        if self.kind in ("number", "boolean"):
            return (self.name,)
        if self.kind == "date":
            return tuple(f"{self.name}:{part}" for part in DATE_PARTS)
        return ()

    @property
    def indicator_field(self) -> str:
        """The name of the missing indicator's field."""
        return f"{self.name}:missing"

    def read(self, text: str) -> dict[str, float] | str:
        """The fields of one present cell: numbers by field, or the category text."""
        if self.kind == "category":
            return text
        if self.kind == "number":
            return {self.name: read_number(text)}
        if self.kind == "boolean":
            lowered = text.lower()
            if lowered in (v.lower() for v in self.true_values):
                return {self.name: 1.0}
            if lowered in (v.lower() for v in self.false_values):
                return {self.name: 0.0}
            raise UnusualValueError(text)
        assert self.date_format is not None
        parts = date_parts(read_date(text, self.date_format))
        return {f"{self.name}:{part}": value for part, value in parts.items()}

    def to_document(self) -> dict[str, Any]:
        """The column as the feature spec stores it."""
        document: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "fill": self.fill,
            "indicator": self.indicator,
        }
        if self.date_format is not None:
            document["date_format"] = self.date_format
        if self.kind == "boolean":
            document["true"] = list(self.true_values)
            document["false"] = list(self.false_values)
        return document

    @classmethod
    def from_document(cls, item: Any) -> Column:
        """Rebuild a column from the spec (ValueError/TypeError/KeyError when malformed)."""
        if not isinstance(item, dict):
            raise TypeError("a column is an object")
        allowed = {"name", "kind", "fill", "indicator", "date_format", "true", "false"}
        if set(item) - allowed:
            raise ValueError(f"unknown column members {sorted(set(item) - allowed)}")
        name, kind, fill, indicator = item["name"], item["kind"], item["fill"], item["indicator"]
        words = [*item.get("true", []), *item.get("false", [])]
        date_format = item.get("date_format")
        if not (
            isinstance(name, str)
            and isinstance(kind, str)
            and isinstance(fill, str)
            and isinstance(indicator, bool)
            and (date_format is None or isinstance(date_format, str))
            and all(isinstance(word, str) for word in words)
        ):
            raise TypeError(f"column {name!r}: wrongly typed members")
        return cls(
            name,
            kind,  # type: ignore[arg-type]  # checked in __post_init__
            fill,  # type: ignore[arg-type]
            indicator,
            date_format,
            tuple(item.get("true", [])),
            tuple(item.get("false", [])),
        )

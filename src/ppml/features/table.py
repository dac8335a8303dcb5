"""Reading CSV tables row by row, keeping each row's number and line for error messages.

A table comes from a file, from standard input (``-``) or from text held in
memory (one row typed on the command line). Its delimiter (comma, semicolon,
tab or pipe) and encoding (UTF-8 with or without a byte-order mark, UTF-16
with one) are detected unless given: clevercsv sniffs the dialect from the
first lines, the csv module then reads every row in constant memory. Error
messages name the user's file (or ``<stdin>``), never a temporary copy.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ppml.errors import DataError, SettingError
from ppml.fileio import is_standard_stream, spool_stdin

DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
SNIFF_BYTES = 64 << 10
TAB_SUFFIXES = (".tsv", ".tab")

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8 with BOM"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
)


@dataclass(frozen=True, slots=True)
class Row:
    """One data row: its 1-based number, the file line it ends on, and its cells by column."""

    number: int
    line: int
    cells: dict[str, str]


@dataclass(frozen=True, slots=True)
class CsvOptions:
    """How to read a CSV file: ``None`` means detect."""

    delimiter: str | None = None
    encoding: str | None = None

    def __post_init__(self) -> None:
        if self.delimiter is not None and len(self.delimiter) != 1:
            raise SettingError(f"a delimiter is one character, not {self.delimiter!r}")
        if self.delimiter in ('"', "\r", "\n"):
            raise SettingError(f"{self.delimiter!r} cannot be a delimiter")
        if self.encoding is not None:
            try:
                codecs.lookup(self.encoding)
            except LookupError:
                raise SettingError(f"unknown encoding {self.encoding!r}") from None


def parse_delimiter(text: str) -> str:
    """A delimiter as typed on a command line: the character itself, ``\\t``, or a name."""
    names = {name: char for char, name in DELIMITERS.items()}
    return {"\\t": "\t", "tsv": "\t"}.get(text, names.get(text.lower(), text))


class _Source:
    """Where the bytes come from; readable any number of times."""

    def __init__(self, name: str, path: Path | None, data: bytes | None = None) -> None:
        self.name, self._path, self._data = name, path, data
        self._spool: IO[bytes] | None = None

    @classmethod
    def of(cls, source: str | Path) -> _Source:
        if is_standard_stream(source):
            made = cls("<stdin>", None)
            made._spool = spool_stdin()  # lives as long as the table
            return made
        return cls(str(source), Path(source))

    def open(self) -> IO[bytes]:
        if self._data is not None:
            return io.BytesIO(self._data)
        if self._spool is not None:
            # A second descriptor, so the caller may close what it gets while
            # the spool stays open; the passes over a table never overlap.
            copy = os.fdopen(os.dup(self._spool.fileno()), "rb")
            copy.seek(0)
            return copy
        assert self._path is not None
        try:
            return open(self._path, "rb")
        except FileNotFoundError:
            raise DataError("no such file", path=self.name) from None
        except IsADirectoryError:
            raise DataError("is a directory, not a CSV file", path=self.name) from None
        except PermissionError:
            raise DataError("permission denied", path=self.name) from None

    @property
    def suffix(self) -> str:
        return "" if self._path is None else self._path.suffix.lower()


class CsvTable:
    """A CSV table with a header, read lazily; ``required`` columns must all be present.

    ``path`` is the name used in messages: the file as the user typed it, or ``<stdin>``.
    """

    def __init__(
        self,
        source: str | Path,
        required: Sequence[str] = (),
        options: CsvOptions | None = None,
        *,
        _source: _Source | None = None,
    ) -> None:
        options = options or CsvOptions()
        self._source = _source or _Source.of(source)
        self.path = self._source.name
        with self._source.open() as handle:
            sample = handle.read(SNIFF_BYTES)
        self.encoding, encoding_note = self._choose_encoding(sample, options.encoding)
        self.delimiter, how = self._choose_delimiter(sample, options.delimiter)
        self.description = f"{DELIMITERS.get(self.delimiter, repr(self.delimiter))}-separated, " + (
            f"{encoding_note} ({how})"
        )
        header = None
        with self._reader() as reader:
            try:
                header = next(reader, None)
            except csv.Error as error:
                # A field over csv.field_size_limit(), for instance.
                raise DataError(f"malformed CSV header ({error})", path=self.path) from None
            except UnicodeDecodeError:
                raise self._decode_error(1) from None
        if not header:
            raise DataError("the file is empty (a CSV header is expected)", path=self.path)
        self.columns = tuple(header)
        duplicated = sorted({name for name in header if header.count(name) > 1})
        if duplicated:
            raise DataError(
                "duplicate column names " + ", ".join(repr(name) for name in duplicated),
                path=self.path,
            )
        missing = [name for name in required if name not in self.columns]
        if missing:
            raise DataError(
                f"missing column{'s' if len(missing) > 1 else ''} "
                + ", ".join(repr(name) for name in missing)
                + f" (read as {self.description}; the columns are "
                + ", ".join(repr(name) for name in self.columns[:12])
                + (", ..." if len(self.columns) > 12 else "")
                + ")",
                path=self.path,
            )

    @classmethod
    def from_text(
        cls, text: str, name: str, required: Sequence[str] = (), options: CsvOptions | None = None
    ) -> CsvTable:
        """A table held in memory (UTF-8 CSV text), called ``name`` in messages."""
        return cls(name, required, options, _source=_Source(name, None, text.encode("utf-8")))

    @staticmethod
    def _choose_encoding(sample: bytes, chosen: str | None) -> tuple[str, str]:
        if chosen is not None:
            normalised = codecs.lookup(chosen).name
            if normalised == "utf-8" and sample.startswith(codecs.BOM_UTF8):
                return "utf-8-sig", "UTF-8 with BOM"
            return chosen, chosen
        for bom, encoding, note in _BOMS:
            if sample.startswith(bom):
                return encoding, note
        return "utf-8", "UTF-8"

    def _choose_delimiter(self, sample: bytes, chosen: str | None) -> tuple[str, str]:
        if chosen is not None:
            return chosen, "as given"
        if self._source.suffix in TAB_SUFFIXES:
            return "\t", f"from the {self._source.suffix} name"
        text = sample.decode(self.encoding, errors="replace")
        if len(sample) == SNIFF_BYTES:
            text = text[: text.rfind("\n") + 1] or text  # whole lines only
        from clevercsv import Detector  # slow to import: only when sniffing

        dialect = Detector().detect(text, delimiters=list(DELIMITERS))
        if dialect is None or dialect.delimiter not in DELIMITERS:
            return ",", "detected: one column"
        return dialect.delimiter, "detected"

    def _reader(self) -> _OpenReader:
        return _OpenReader(self)

    def _decode_error(self, row: int, line: int | None = None) -> DataError:
        return DataError(
            f"not valid {self.encoding} text (give the file's encoding, e.g. --encoding cp1252)",
            path=self.path,
            row=row if row > 0 else None,
            line=line,
        )

    def rows(self) -> Iterator[Row]:
        """Yield the data rows in file order."""
        with self._reader() as reader:
            number = 0
            try:
                # The header was checked on opening; skipping it here can still
                # fail if the file changed since.
                next(reader, None)
                for cells in reader:
                    if not cells:
                        continue  # blank line
                    number += 1
                    if len(cells) != len(self.columns):
                        raise DataError(
                            f"expected {len(self.columns)} fields, found {len(cells)} "
                            f"(read as {self.description})",
                            path=self.path,
                            row=number,
                            line=reader.line_num,
                        )
                    yield Row(number, reader.line_num, dict(zip(self.columns, cells, strict=True)))
            except csv.Error as error:
                raise DataError(
                    f"malformed CSV ({error})", path=self.path, row=number + 1, line=reader.line_num
                ) from None
            except UnicodeDecodeError:
                raise self._decode_error(number + 1, reader.line_num + 1) from None


class _OpenReader:
    """A csv reader over the table's decoded text, closed on exit."""

    def __init__(self, table: CsvTable) -> None:
        self._table = table

    def __enter__(self) -> Any:  # a csv reader: its type is private to the csv module
        table = self._table
        self._text = io.TextIOWrapper(table._source.open(), encoding=table.encoding, newline="")
        return csv.reader(self._text, delimiter=table.delimiter, quotechar='"')

    def __exit__(self, *_: object) -> None:
        self._text.close()

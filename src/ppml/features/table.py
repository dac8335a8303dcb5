"""Reading CSV tables row by row, keeping each row's number and line for error messages."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ppml.errors import DataError


@dataclass(frozen=True, slots=True)
class Row:
    """One data row: its 1-based number, the file line it ends on, and its cells by column."""

    number: int
    line: int
    cells: dict[str, str]


class CsvTable:
    """A CSV file with a header, read lazily; ``required`` columns must all be present."""

    def __init__(self, path: str | Path, required: Sequence[str] = ()) -> None:
        self.path = Path(path)
        try:
            with open(self.path, newline="", encoding="utf-8") as handle:
                header = next(csv.reader(handle), None)
        except FileNotFoundError:
            raise DataError("no such file", path=self.path) from None
        except UnicodeDecodeError:
            raise DataError("not a UTF-8 text file", path=self.path) from None
        except csv.Error as error:
            # A field over csv.field_size_limit(), for instance.
            raise DataError(f"malformed CSV header ({error})", path=self.path) from None
        if not header:
            raise DataError("the file is empty (a CSV header is expected)", path=self.path)
        self.columns = tuple(header)
        missing = [name for name in required if name not in self.columns]
        if missing:
            raise DataError(
                f"missing column{'s' if len(missing) > 1 else ''} "
                + ", ".join(repr(name) for name in missing),
                path=self.path,
            )

    def rows(self) -> Iterator[Row]:
        """Yield the data rows in file order."""
        with open(self.path, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
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
                            f"expected {len(self.columns)} fields, found {len(cells)}",
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
                raise DataError(
                    "not valid UTF-8", path=self.path, row=number + 1, line=reader.line_num + 1
                ) from None

"""The one writer of every CSV file the service produces, safe to open in a spreadsheet.

OWASP "CSV Injection": a spreadsheet runs a cell that starts with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return as a formula. Every text cell starting with
one of those is written with a single quote in front (spreadsheets take a leading
quote as "this is text" and do not show it), and every field is quoted, so a
separator or a quote inside a cell cannot start a new cell. A text cell that already
starts with a quote gets one more, so that :func:`read_cell` gives back exactly what
was written and a spreadsheet shows the original text.

No file written here carries a card number in clear: a text cell with one in it is
written masked (:func:`cardvault.crypto.mask_pans`), whatever the caller passed.

Numbers the service writes itself (row numbers, counts) are never negative and are
written as they are; only text is escaped.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Protocol

from cardvault.crypto.pan import mask_pans

__all__ = ["FORMULA_START", "CsvWriter", "escape_cell", "read_cell"]

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_ESCAPED_START = (*FORMULA_START, "'")

Cell = str | int | None


class _Text(Protocol):
    def write(self, text: str, /) -> int: ...


def escape_cell(value: Cell) -> str:
    """The text written for one cell: ``None`` is empty, numbers as they are, text with
    its card numbers masked (a number that is a card number too) and, if it starts like a
    formula (or with a quote), behind a single quote."""
    if value is None:
        return ""
    if isinstance(value, int):
        return mask_pans(str(value))
    text = mask_pans(value)
    return "'" + text if text.startswith(_ESCAPED_START) else text


def read_cell(text: str) -> str:
    """The value a cell of a file written here stood for (drops the escaping quote)."""
    return text[1:] if text.startswith("'") and text[1:].startswith(_ESCAPED_START) else text


class CsvWriter:
    """Writes rows of cells to a text stream: every field quoted, text escaped."""

    def __init__(self, out: _Text) -> None:
        self._writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")

    def writerow(self, cells: Iterable[Cell]) -> None:
        self._writer.writerow([escape_cell(cell) for cell in cells])

    def writerows(self, rows: Iterable[Iterable[Cell]]) -> None:
        for cells in rows:
            self.writerow(cells)

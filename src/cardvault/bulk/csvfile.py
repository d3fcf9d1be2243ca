"""The bulk CSV format: header checks and incremental parsing of rows.

The file arrives as byte chunks. :class:`RecordSplitter` turns them into complete CSV
records (a quoted field may span lines) without ever holding more than one chunk and
one unfinished record; :func:`parse_rows` turns records into :class:`InputRow` values.
A row that cannot be used keeps its error (code and detail) and is reported in the
results like any other failed row; only a bad header refuses the whole file.

A card number anywhere but in a ``pan`` column (an alias, a name, an address...) fails
its row with ``invalid-format`` before anything of the row is kept: the row is stored
with its error only, and the error shows the number masked. No error raised here
carries a card number in clear. The file itself is never stored: only parsed rows are.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from cardvault.bulk.errors import InvalidFile, MissingColumn
from cardvault.crypto.pan import InvalidPan, Pan, find_pan, mask_pans

REQUIRED = ("exp_month", "exp_year")  # plus pan_alias, or pan
CARD_KEYS = ("pan_alias", "pan")
HOLDER = ("name",)
ADDRESS = (
    "company",
    "address1",
    "address2",
    "city",
    "region",
    "country",
    "postal_code",
    "phone",
)
KNOWN = frozenset((*CARD_KEYS, *REQUIRED, *HOLDER, *ADDRESS))
MAX_FIELD = 255
MAX_RECORD = 64 * 1024  # characters of one record (a line, or lines in quotes)
ALIAS_MAX = 40
SHOWN = 64  # characters of a refused value shown (masked) in an error
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def shown(value: str) -> str:
    """``value`` as an error may show it: card numbers masked, cut short."""
    masked = mask_pans(value)
    return masked if len(masked) <= SHOWN else masked[: SHOWN - 1] + "…"


@dataclass(frozen=True)
class Columns:
    """The header's column names, checked."""

    names: tuple[str, ...]

    @property
    def has_pan(self) -> bool:
        return "pan" in self.names


def check_header(fields: Sequence[str]) -> Columns:
    """Check the header row; raises :class:`MissingColumn` or :class:`InvalidFile`
    naming the first offending column."""
    names = tuple(f.strip().lower() for f in fields)
    for name in names:
        if name not in KNOWN:
            raise InvalidFile(f"unknown column {shown(name)!r} in the header", field=shown(name))
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InvalidFile(f"column {name!r} appears twice in the header", field=name)
        seen.add(name)
    if "pan_alias" in seen and "pan" in seen:
        raise InvalidFile("give a pan_alias column or a pan column, not both", field="pan")
    if not seen & set(CARD_KEYS):
        raise MissingColumn("required column 'pan_alias' is missing", field="pan_alias")
    for name in REQUIRED:
        if name not in seen:
            raise MissingColumn(f"required column {name!r} is missing", field=name)
    return Columns(names)


class RecordSplitter:
    """Bytes in, complete CSV records out (UTF-8, an optional BOM, any line ending)."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self._partial = ""  # an unfinished line
        self._record: list[str] = []  # lines of an unfinished (quoted) record
        self._quotes = 0

    def feed(self, data: bytes, *, final: bool = False) -> list[str]:
        """The lines of every record completed by ``data`` (a record may be several
        lines when a quoted field holds a line break)."""
        try:
            text: str | None = self._partial + self._decoder.decode(data, final)
        except UnicodeDecodeError:  # holds the bytes: raised outside, so not its context
            text = None
        if text is None:
            raise InvalidFile("the file is not UTF-8 text")
        lines = _LINE.findall(text)  # only CR, LF and CRLF end a line in CSV
        self._partial = ""
        if lines and not final and not lines[-1].endswith(("\n", "\r")):
            self._partial = lines.pop()
        done: list[str] = []
        for line in lines:
            self._record.append(line)
            self._quotes += line.count('"')
            self._check_length(len(self._partial))
            if self._quotes % 2 == 0:
                done.extend(self._record)
                self._record, self._quotes = [], 0
        if final and self._record:
            raise InvalidFile("the file ends inside a quoted field")
        self._check_length(len(self._partial))
        return done

    def _check_length(self, partial: int) -> None:
        if partial + sum(len(line) for line in self._record) > MAX_RECORD:
            raise InvalidFile(f"a row is longer than {MAX_RECORD} characters")


def records(lines: Iterable[str]) -> Iterator[list[str]]:
    """CSV records of complete lines; blank lines are skipped. Raises
    :class:`InvalidFile` for text that is not CSV (a stray quote...)."""
    try:
        for record in csv.reader(lines, strict=True):
            if record and any(field.strip() for field in record):
                yield record
    except csv.Error as error:
        raise InvalidFile(f"not valid CSV: {shown(str(error))}") from None


@dataclass
class InputRow:
    """One data row as uploaded; ``pan`` only until it is encrypted."""

    row: int
    pan_alias: str | None = None
    pan: Pan | None = None
    exp_month: int | None = None
    exp_year: int | None = None
    holder_info: dict[str, Any] | None = None
    error_code: str | None = None
    error_detail: str | None = None

    def fail(self, code: str, detail: str) -> InputRow:
        if self.error_code is None:
            self.error_code, self.error_detail = code, detail[:MAX_FIELD]
        return self


def _number(row: InputRow, name: str, text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        row.fail("invalid-format", f"{name}: must be a number")
        return None


def _holder(values: dict[str, str]) -> dict[str, Any] | None:
    address = {k: values[k] for k in ADDRESS if values.get(k)}
    holder: dict[str, Any] = {k: values[k] for k in HOLDER if values.get(k)}
    if address:
        holder["billing_address"] = address
    return holder or None


def _refused_cell(columns: Columns, record: list[str]) -> str | None:
    """Why a field of the record cannot be kept, whatever the row's other faults: a
    card number outside the ``pan`` column, or a control character."""
    for index, value in enumerate(record):
        name = columns.names[index] if index < len(columns.names) else f"field {index + 1}"
        if name == "pan":
            continue
        if find_pan(value) is not None:
            return (
                f"{name}: a card number is not allowed here ({shown(value.strip())});"
                " card numbers go only in a pan column"
            )
        if _CONTROL.search(value):
            return f"{name}: control characters are not allowed"
    return None


def parse_row(number: int, columns: Columns, record: list[str]) -> InputRow:
    """One record as an :class:`InputRow`, with its error if it cannot be used (then
    nothing else of it is kept)."""
    row = InputRow(number)
    refused = _refused_cell(columns, record)
    if refused is not None:
        return row.fail("invalid-format", refused)
    if len(record) != len(columns.names):
        return row.fail(
            "invalid-format", f"the row has {len(record)} fields, the header {len(columns.names)}"
        )
    values = {name: value.strip() for name, value in zip(columns.names, record, strict=True)}
    for name, value in values.items():
        if len(value) > MAX_FIELD:
            return row.fail("invalid-format", f"{name}: longer than {MAX_FIELD} characters")
    key = "pan" if columns.has_pan else "pan_alias"
    for name in (key, *REQUIRED):
        if not values[name]:
            return row.fail("required-fields-missing", f"{name}: field required")
    if columns.has_pan:
        try:
            row.pan = Pan(values["pan"])
        except InvalidPan as invalid:
            return row.fail("invalid-format", f"pan: {invalid.reason}")
    elif len(values["pan_alias"]) > ALIAS_MAX:
        return row.fail("not-found", "no card with this pan_alias in the vault")
    else:
        row.pan_alias = values["pan_alias"]
    row.exp_month = _number(row, "exp_month", values["exp_month"])
    row.exp_year = _number(row, "exp_year", values["exp_year"])
    row.holder_info = _holder(values)
    return row


class CsvRows:
    """The parser: bytes in, numbered :class:`InputRow` values out, the header checked
    first. Raises only :class:`~cardvault.bulk.errors.BulkError` (:class:`InvalidFile`
    or :class:`MissingColumn`), whatever the bytes."""

    def __init__(self) -> None:
        self._splitter = RecordSplitter()
        self.columns: Columns | None = None
        self.count = 0

    def feed(self, data: bytes, *, final: bool = False) -> list[InputRow]:
        lines = self._splitter.feed(data, final=final)
        out: list[InputRow] = []
        try:
            for record in records(lines):
                if self.columns is None:
                    self.columns = check_header(record)
                    continue
                self.count += 1
                out.append(parse_row(self.count, self.columns, record))
        except InvalidFile as error:
            if self.columns is None or error.field is not None:
                raise
            raise InvalidFile(f"{error.detail} (after row {self.count})") from None
        if final and self.columns is None:
            raise InvalidFile("the file is empty: a header row is required", field="header")
        return out

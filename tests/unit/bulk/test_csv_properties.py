"""Properties of the CSV the service reads (bulk uploads) and writes (results files).

The writer: what it writes reads back as written (card numbers masked), and no field
starts like a spreadsheet formula unless escaped (OWASP "CSV Injection"). The parser:
whatever the bytes, it yields rows or raises its own :class:`BulkError`, and no row
keeps a card number outside the ``pan`` column.
"""

from __future__ import annotations

import csv
import io
import json

from hypothesis import given
from hypothesis import strategies as st

from cardvault.bulk.csvfile import MAX_RECORD, CsvRows, InputRow, RecordSplitter, records
from cardvault.bulk.errors import BulkError
from cardvault.crypto.pan import find_pan, luhn_check_digit, mask_pans
from cardvault.csv_out import FORMULA_START, CsvWriter, escape_cell, read_cell

HEADER = "pan_alias,exp_month,exp_year,name,address1,phone\n"

cells = st.one_of(
    st.text(),
    st.text(alphabet="=+-@\t\r\n\"',; 0123456789abc", max_size=12),
    st.integers(min_value=0),
    st.none(),
)
rows = st.lists(st.lists(cells, min_size=1, max_size=6), min_size=1, max_size=6)


def _written(table: list[list[str | int | None]]) -> str:
    out = io.StringIO()
    writer = CsvWriter(out)
    for number, cells_ in enumerate(table, 1):
        writer.writerow([number, *cells_])  # a first cell that is never blank
    return out.getvalue()


def _expected(cell: str | int | None) -> str:
    return "" if cell is None else mask_pans(str(cell))  # a number can be a card number


def _chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


@given(rows, st.integers(1, 64))
def test_what_is_written_reads_back_through_the_upload_parser(
    table: list[list[str | int | None]], size: int
) -> None:
    splitter = RecordSplitter()
    lines: list[str] = []
    for chunk in _chunks(_written(table).encode(), size):
        lines += splitter.feed(chunk)
    lines += splitter.feed(b"", final=True)
    assert [[read_cell(c) for c in record] for record in records(lines)] == [
        [str(n), *(_expected(c) for c in cells_)] for n, cells_ in enumerate(table, 1)
    ]


@given(rows)
def test_no_written_field_starts_like_a_formula(table: list[list[str | int | None]]) -> None:
    text = _written(table)
    for record in csv.reader(io.StringIO(text), strict=True):
        for field in record:
            assert not field.startswith(FORMULA_START), field
            assert find_pan(field) is None


@given(cells)
def test_every_field_is_quoted_and_escaping_reads_back(cell: str | int | None) -> None:
    out = io.StringIO()
    CsvWriter(out).writerow([cell])
    line = out.getvalue()
    assert line.startswith('"') and line.endswith('"\n')
    assert read_cell(escape_cell(cell)) == _expected(cell)


def _no_pan_kept(row: InputRow) -> None:
    kept = [row.pan_alias, row.error_detail, json.dumps(row.holder_info, ensure_ascii=False)]
    for value in kept:
        assert value is None or find_pan(value) is None, value


def _parse(data: bytes, size: int) -> list[InputRow]:
    parser = CsvRows()
    out: list[InputRow] = []
    chunks = _chunks(data, size)
    for chunk in chunks[:-1]:
        out += parser.feed(chunk)
    out += parser.feed(chunks[-1], final=True)
    return out


@given(st.binary(max_size=400), st.integers(1, 97), st.booleans())
def test_the_parser_raises_only_its_own_error_on_any_bytes(
    tail: bytes, size: int, with_header: bool
) -> None:
    data = (HEADER.encode() if with_header else b"") + tail
    try:
        parsed = _parse(data, size)
    except BulkError as error:
        assert find_pan(error.detail) is None and find_pan(str(error.field)) is None
        return
    for row in parsed:
        _no_pan_kept(row)


awkward = st.sampled_from(
    ["\x00", "\r", "\n", "\r\n", '"', "'", "=", "\u2028", "\x85", ",", " ", "\ufeff", "é"]
)


@st.composite
def luhn_number(draw: st.DrawFn) -> str:
    size = draw(st.integers(12, 19))
    body = draw(st.text("0123456789", min_size=size - 1, max_size=size - 1))
    number = body + luhn_check_digit(body)
    seps = draw(st.lists(st.sampled_from(["", " ", "-"]), min_size=size, max_size=size))
    return "".join(d + s for d, s in zip(number, seps, strict=True)).rstrip(" -")


field_text = st.lists(st.one_of(awkward, st.text(max_size=5), luhn_number()), max_size=6).map(
    "".join
)


@given(st.lists(st.lists(field_text, min_size=1, max_size=7), max_size=5), st.integers(1, 64))
def test_the_parser_keeps_no_card_number_of_any_row(table: list[list[str]], size: int) -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # a user's own CSV, unescaped
    writer.writerows(table)
    try:
        parsed = _parse((HEADER + out.getvalue()).encode(), size)
    except BulkError as error:
        assert find_pan(error.detail) is None
        return
    for row in parsed:
        _no_pan_kept(row)


@given(st.integers(MAX_RECORD - 10, 3 * MAX_RECORD), st.sampled_from([b"", b'"']))
def test_a_huge_field_is_refused_with_the_parsers_error(size: int, quote: bytes) -> None:
    data = HEADER.encode() + quote + b"x" * size + quote + b",7,2031,,,\n"
    try:
        parsed = _parse(data, 8192)
    except BulkError as error:
        assert "longer than" in error.detail
        return
    assert size + 2 * len(quote) <= MAX_RECORD and parsed[0].error_code == "invalid-format"

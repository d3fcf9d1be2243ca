"""The bulk CSV format: header checks, records across chunk boundaries, row parsing."""

from __future__ import annotations

import pytest

from cardvault.bulk.csvfile import CsvRows, RecordSplitter, check_header, parse_row, records
from cardvault.bulk.errors import InvalidFile, MissingColumn
from cardvault.crypto.pan import find_pan, mask_pans


@pytest.mark.parametrize(
    ("header", "error", "field"),
    [
        (["pan_alias", "exp_month"], MissingColumn, "exp_year"),
        (["exp_month", "exp_year"], MissingColumn, "pan_alias"),
        (["pan_alias", "exp_month", "exp_year", "cvc"], InvalidFile, "cvc"),
        (["pan_alias", "pan", "exp_month", "exp_year"], InvalidFile, "pan"),
        (["pan_alias", "exp_month", "exp_year", "exp_year"], InvalidFile, "exp_year"),
    ],
)
def test_bad_headers_name_the_column(header: list[str], error: type, field: str) -> None:
    with pytest.raises(error) as raised:
        check_header(header)
    assert raised.value.field == field


def test_header_names_are_trimmed_and_case_insensitive() -> None:
    columns = check_header([" PAN ", "Exp_Month", "exp_year", "postal_code"])
    assert columns.names == ("pan", "exp_month", "exp_year", "postal_code")
    assert columns.has_pan


def _split(data: bytes, size: int) -> list[list[str]]:
    splitter = RecordSplitter()
    lines: list[str] = []
    for start in range(0, len(data), size):
        lines += splitter.feed(data[start : start + size])
    lines += splitter.feed(b"", final=True)
    return list(records(lines))


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_records_survive_any_chunk_boundary(size: int) -> None:
    data = '\ufeffa,b\r\n"x, ""y""\nz",é\n\n1,2'.encode()
    assert _split(data, size) == [["a", "b"], ['x, "y"\nz', "é"], ["1", "2"]]


def test_bad_bytes_and_an_open_quote_refuse_the_file() -> None:
    with pytest.raises(InvalidFile, match="UTF-8") as raised:
        RecordSplitter().feed(b"a,b\n\xff\xfe,1\n", final=True)
    assert raised.value.__context__ is None  # the decoding error holds the file's bytes
    with pytest.raises(InvalidFile, match="quoted"):
        RecordSplitter().feed(b'a,b\n"open,1\n', final=True)


def test_rows_carry_their_own_errors() -> None:
    columns = check_header(["pan_alias", "exp_month", "exp_year", "name", "city"])
    good = parse_row(1, columns, ["pan_x", "7", "2031", "Ada", "Paris"])
    assert (good.pan_alias, good.exp_month, good.exp_year, good.error_code) == (
        "pan_x",
        7,
        2031,
        None,
    )
    assert good.holder_info == {"name": "Ada", "billing_address": {"city": "Paris"}}
    short = parse_row(2, columns, ["pan_x", "7"])
    assert (short.error_code, short.error_detail) == (
        "invalid-format",
        "the row has 2 fields, the header 5",
    )
    empty = parse_row(3, columns, ["", "7", "2031", "", ""])
    assert (empty.error_code, empty.error_detail) == (
        "required-fields-missing",
        "pan_alias: field required",
    )
    pan_in_alias = parse_row(4, columns, ["4242424242424242", "7", "2031", "", ""])
    assert pan_in_alias.error_code == "invalid-format" and pan_in_alias.pan_alias is None
    assert pan_in_alias.error_detail == (
        "pan_alias: a card number is not allowed here (424242…4242);"
        " card numbers go only in a pan column"
    )


def test_pan_rows_check_the_number_without_showing_it() -> None:
    columns = check_header(["pan", "exp_month", "exp_year"])
    bad = parse_row(1, columns, ["4242424242424241", "7", "2031"])
    assert bad.error_code == "invalid-format" and "4242424242424241" not in str(bad.error_detail)
    good = parse_row(2, columns, ["4242424242424242", "7", "2031"])
    assert good.pan is not None and good.pan.last4 == "4242" and good.error_code is None


def test_an_endless_line_is_refused_before_it_fills_memory() -> None:
    splitter = RecordSplitter()
    with pytest.raises(InvalidFile, match="longer than"):
        for _ in range(100):
            splitter.feed(b"x" * 4096)


COLUMNS = ["pan_alias", "exp_month", "exp_year", "name", "address1", "phone"]


@pytest.mark.parametrize(
    ("index", "cell"),
    [
        (0, "4242 4242 4242 4242"),
        (0, "4242-4242-4242-4242"),
        (0, "tok 5555555555554444"),
        (1, "4242424242424242"),
        (3, "Ada 4111 1111 1111 1111 12/27"),
        (4, "1 Main St, card 4000-0566-5566-5556"),
        (5, "4242424242424242"),
    ],
)
def test_a_card_number_in_any_cell_fails_the_row_and_keeps_nothing_of_it(
    index: int, cell: str
) -> None:
    record = ["pan_x", "7", "2031", "Ada", "1 Main St", "+33 1 23 45 67 89"]
    record[index] = cell
    row = parse_row(1, check_header(COLUMNS), record)
    assert row.error_code == "invalid-format"
    detail = str(row.error_detail)
    assert detail.startswith(f"{COLUMNS[index]}: a card number is not allowed here (")
    assert "…" in detail
    kept = (row.pan_alias, row.exp_month, row.exp_year, row.holder_info, row.pan)
    assert kept == (None, None, None, None, None)
    pan = find_pan(cell)
    assert pan is not None and f"({mask_pans(cell)})" in detail
    assert pan.reveal() not in detail.replace(" ", "").replace("-", "")


def test_a_card_number_in_a_row_of_the_wrong_length_is_still_refused_masked() -> None:
    row = parse_row(1, check_header(COLUMNS[:3]), ["pan_x", "7", "2031", "4242424242424242"])
    assert row.error_detail == (
        "field 4: a card number is not allowed here (424242…4242);"
        " card numbers go only in a pan column"
    )


def test_control_characters_fail_the_row() -> None:
    row = parse_row(1, check_header(COLUMNS), ["pan_x", "7", "2031", "A\x00da", "", ""])
    assert (row.error_code, row.error_detail) == (
        "invalid-format",
        "name: control characters are not allowed",
    )
    assert row.holder_info is None


def test_a_card_number_in_the_header_is_refused_masked() -> None:
    with pytest.raises(InvalidFile) as raised:
        check_header(["pan_alias", "exp_month", "exp_year", "4242 4242 4242 4242"])
    assert raised.value.detail == "unknown column '424242…4242' in the header"
    assert raised.value.field == "424242…4242"


@pytest.mark.parametrize(
    "data",
    [b'pan_alias,exp_month,exp_year\n"a" ,7,2031\n', b'pan_alias,exp_month,exp_year\n"a"b,7,1\n'],
)
def test_text_that_is_not_csv_is_invalid_file_not_a_crash(data: bytes) -> None:
    with pytest.raises(InvalidFile, match=r"not valid CSV: .* \(after row 0\)"):
        CsvRows().feed(data, final=True)


def test_only_cr_and_lf_end_a_line() -> None:
    data = "pan_alias,exp_month,exp_year\nx\u2028y,7,2031\n".encode()
    (row,) = CsvRows().feed(data, final=True)
    assert row.error_code is None and row.pan_alias == "x\u2028y"

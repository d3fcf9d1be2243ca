"""The bulk CSV format: header checks, records across chunk boundaries, row parsing."""

from __future__ import annotations

import pytest

from cardvault.bulk.csvfile import RecordSplitter, check_header, parse_row, records
from cardvault.bulk.errors import InvalidFile, MissingColumn


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
    with pytest.raises(InvalidFile, match="UTF-8"):
        RecordSplitter().feed(b"a,b\n\xff\xfe,1\n", final=True)
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
    assert "4242" not in str(pan_in_alias.error_detail)


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

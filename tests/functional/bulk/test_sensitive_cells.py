"""Bulk files carrying card numbers where none belongs, and cells written as formulas.

A card number in any cell but a ``pan`` column fails its row with ``invalid-format``
and the number masked; the bulk rows table, the results file and the server log never
hold its digits. Results cells that start like a spreadsheet formula are escaped.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import httpx
import pytest

from cardvault.crypto.pan import Pan
from tests.factories import Factory
from tests.functional.api.test_cards import NEXT_YEAR, random_pan
from tests.functional.bulk.helpers import Bulk, Counts, csv_text
from tests.hygiene import places
from tests.servers import Server

HEADER = ("pan_alias", "exp_month", "exp_year", "name", "address1", "phone")
REFUSED = "a card number is not allowed here"


@pytest.fixture
def bulk(server: Server, factory: Factory) -> Bulk:
    return Bulk(server, factory)


def spaced(pan: str) -> str:
    return " ".join(pan[i : i + 4] for i in range(0, len(pan), 4))


def dashed(pan: str) -> str:
    return "-".join(pan[i : i + 4] for i in range(0, len(pan), 4))


def bulk_rows_as_the_user_sees_them(server: Server, job_id: str) -> str:
    """The job's rows in the bulk rows table, read with the database's own client."""
    query = f"SELECT * FROM bulk_rows WHERE job_id = '{job_id}' ORDER BY row"  # noqa: S608
    url = server.database_url
    if url.startswith("sqlite:///"):
        command = ["sqlite3", url.removeprefix("sqlite:///"), query]
    else:
        command = ["psql", url.replace("postgresql+psycopg://", "postgresql://"), "-Atc", query]
    result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=30)
    return result.stdout


def assert_nowhere(server: Server, pans: list[str], *also: str) -> None:
    """None of ``pans`` (as digits or as written) in the database files, a dump, the log."""
    needles = [n for pan in pans for n in (pan, spaced(pan), dashed(pan))]
    for name, data in places(server.data_dir, server.database_url):
        text = data.decode("latin-1")
        assert not [n for n in needles if n in text], f"a card number in {name}"
    for text in also:
        assert not [n for n in needles if n in text]


@pytest.fixture
def pans() -> Iterator[list[str]]:
    yield [random_pan(), random_pan("5", 16), random_pan("37", 15), random_pan(), random_pan()]


def test_a_card_number_in_any_cell_fails_its_row_and_is_kept_nowhere(
    server: Server, bulk: Bulk, pans: list[str]
) -> None:
    card = bulk.card()
    alias = str(card["pan_alias"])
    text = csv_text(
        HEADER,
        [
            (spaced(pans[0]), 7, NEXT_YEAR, "", "", ""),
            (dashed(pans[1]), 7, NEXT_YEAR, "", "", ""),
            (alias, 7, NEXT_YEAR, f"Ada {spaced(pans[2])} 12/27", "", ""),
            (alias, 7, NEXT_YEAR, "Ada", f"1 Main St, card {pans[3]}", ""),
            (alias, 7, NEXT_YEAR, "Ada", "1 Main St", dashed(pans[4])),
            (alias, 7, NEXT_YEAR, "Ada", "1 Main St", "+33 1 23 45 67 89"),
        ],
    )
    job, lines = bulk.run(text)
    assert (job["total"], job["succeeded"], job["failed"]) == (6, 1, 5)

    def refused(row: int, column: str, shown: str) -> list[str]:
        detail = f"{column}: {REFUSED} ({shown}); card numbers go only in a pan column"
        return [str(row), "", "FAILED", "", "", "", "invalid-format", detail]

    masked = [Pan(p).masked for p in pans]
    assert lines[1:6] == [
        refused(1, "pan_alias", masked[0]),
        refused(2, "pan_alias", masked[1]),
        refused(3, "name", f"Ada {masked[2]} 12/27"),
        refused(4, "address1", f"1 Main St, card {masked[3]}"),
        refused(5, "phone", masked[4]),
    ]
    assert lines[6][:3] == ["6", alias, "ACTIVE"]

    stored = bulk_rows_as_the_user_sees_them(server, str(job["id"]))
    assert stored.count(REFUSED) == 5 and "Ada" in stored  # only the good row's holder
    results = bulk.call("GET", f"/network-tokens/bulk/{job['id']}/results").text
    assert_nowhere(server, pans, stored, results)


def test_a_card_number_in_the_header_is_refused_masked_and_creates_nothing(
    server: Server, bulk: Bulk
) -> None:
    pan = random_pan()
    response = bulk.upload(f"pan_alias,exp_month,exp_year,{dashed(pan)}\nx,1,{NEXT_YEAR},y\n")
    assert response.status_code == 422
    masked = Pan(pan).masked
    assert response.json() == {
        "errors": [
            {
                "status": 422,
                "code": "invalid-format",
                "detail": f"unknown column {masked!r} in the header",
                "source": {"field": masked},
            }
        ]
    }
    assert_nowhere(server, [pan], response.text)


def test_text_that_is_not_csv_is_a_422_not_a_500(bulk: Bulk) -> None:
    response = bulk.upload(f'pan_alias,exp_month,exp_year\n"a"b,1,{NEXT_YEAR}\n')
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["code"] == "invalid-format" and error["detail"].startswith("not valid CSV: ")


# Leading tabs and carriage returns are trimmed from uploaded cells; the writer's own
# tests cover them (tests/unit/bulk/test_csv_properties.py).
FORMULAS = ["=1+2", "+1+2", "-1+2", "@SUM(A1)", '=HYPERLINK("http://x")', "'=1+2"]


def test_results_cells_that_start_like_a_formula_are_escaped(bulk: Bulk) -> None:
    rows = [(f"{formula}", 7, NEXT_YEAR, "", "", "") for formula in FORMULAS]
    job, lines = bulk.run(csv_text(HEADER, rows))
    assert job["failed"] == len(FORMULAS)
    assert [line[1] for line in lines[1:]] == [f"'{formula}" for formula in FORMULAS]
    assert all(line[6] == "not-found" for line in lines[1:])
    raw = bulk.call("GET", f"/network-tokens/bulk/{job['id']}/results").text
    assert raw.startswith('"row","pan_alias","state",')
    assert '"1","\'=1+2","FAILED"' in raw


FILE_PART = b'--b\r\nContent-Disposition: form-data; name="file"\r\n\r\n'


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"garbage\r\n--b\r\nbad", "the multipart body is malformed"),
        (
            b'--b\r\nContent-Disposition: form-data; name="file"\r\n\x00\r\n\r\nx\r\n--b--\r\n',
            "the multipart body is malformed",
        ),
        (
            FILE_PART + b"pan_alias,exp_month,exp_year\r\n",
            "the multipart body ends before its closing boundary",
        ),
    ],
)
def test_a_broken_multipart_body_is_a_422_and_creates_nothing(
    server: Server, bulk: Bulk, body: bytes, detail: str
) -> None:
    response = httpx.post(
        f"{bulk.server.url}/network-tokens/bulk",
        content=body,
        headers={**bulk.headers, "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0] | {"source": None} == {
        "status": 422,
        "code": "invalid-format",
        "detail": detail,
        "source": None,
    }
    counts = Counts(server, bulk.vault_id)
    assert counts()["jobs"] == 0
    counts.close()

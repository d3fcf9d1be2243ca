"""POST /network-tokens/bulk: header checks, row outcomes, results, re-uploads, PANs."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.factories import Factory
from tests.functional.api.test_cards import NEXT_YEAR, random_pan
from tests.functional.api.test_network_tokens import DECLINED, JCB, NOT_ALLOWED
from tests.functional.bulk.helpers import RESULT_HEADER, Bulk, Counts, csv_text
from tests.servers import Server

HEADER = ("pan_alias", "exp_month", "exp_year")


@pytest.fixture
def bulk(server: Server, factory: Factory) -> Bulk:
    return Bulk(server, factory)


@pytest.fixture
def counts(server: Server, bulk: Bulk) -> Iterator[Counts]:
    counts = Counts(server, bulk.vault_id)
    yield counts
    counts.close()


@pytest.mark.parametrize(
    ("header", "code", "field"),
    [
        ("pan_alias,exp_month", "required-fields-missing", "exp_year"),
        ("exp_month,exp_year,name", "required-fields-missing", "pan_alias"),
        ("pan_alias,exp_month,exp_year,cvv", "invalid-format", "cvv"),
        ("pan_alias,exp_month,exp_year,city,city", "invalid-format", "city"),
    ],
)
def test_a_bad_header_is_422_naming_the_column_and_creates_no_job(
    bulk: Bulk, counts: Counts, header: str, code: str, field: str
) -> None:
    response = bulk.upload(f"{header}\npan_x,1,{NEXT_YEAR}\n")
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert (error["code"], error["source"]) == (code, {"field": field})
    assert repr(field) in error["detail"]
    assert counts()["jobs"] == 0


def test_an_empty_file_and_a_wrong_media_type_are_refused(bulk: Bulk, counts: Counts) -> None:
    empty = bulk.upload("")
    assert empty.status_code == 422
    assert empty.json()["errors"][0]["code"] == "invalid-format"
    wrong = bulk.upload('{"pan_alias": "x"}', content_type="application/json")
    assert wrong.status_code == 415
    assert wrong.json()["errors"][0]["code"] == "unsupported-media-type"
    assert counts()["jobs"] == 0


def failed(row: int, card: dict[str, object] | str, code: str, detail: str) -> list[str]:
    alias = card if isinstance(card, str) else str(card["pan_alias"])
    return [str(row), alias, "FAILED", "", "", "", code, detail]


def test_mixed_rows_fail_alone_with_exact_result_lines(bulk: Bulk, counts: Counts) -> None:
    good, declined, not_allowed = bulk.card(), bulk.card(DECLINED), bulk.card(NOT_ALLOWED)
    jcb = bulk.card(JCB)
    text = csv_text(
        (*HEADER, "name", "city"),
        [
            (good["pan_alias"], 7, NEXT_YEAR, "Ada", "London"),
            ("pan_doesnotexist", 7, NEXT_YEAR, "", ""),
            (good["pan_alias"], 13, NEXT_YEAR, "", ""),
            (declined["pan_alias"], 7, NEXT_YEAR, "", ""),
            (not_allowed["pan_alias"], "July", NEXT_YEAR, "", ""),
            (not_allowed["pan_alias"], 7, NEXT_YEAR, "", ""),
            (jcb["pan_alias"], 7, NEXT_YEAR, "", ""),
            (good["pan_alias"], 7, 2001, "", ""),
        ],
    )
    job, lines = bulk.run(text)
    assert {k: job[k] for k in ("state", "total", "processed", "succeeded", "failed")} == {
        "state": "completed",
        "total": 8,
        "processed": 8,
        "succeeded": 1,
        "failed": 7,
    }
    token = bulk.call("GET", f"/network-tokens/{good['pan_alias']}").json()
    assert lines == [
        RESULT_HEADER,
        [
            "1",
            str(good["pan_alias"]),
            "ACTIVE",
            token["network_token_last4"],
            token["expires_at"],
            token["payment_account_reference"],
            "",
            "",
        ],
        failed(2, "pan_doesnotexist", "not-found", "no card with this pan_alias in the vault"),
        failed(3, good, "invalid-format", "exp_month: must be between 1 and 12"),
        failed(4, declined, "declined", "the issuer declined to tokenize the card"),
        failed(5, not_allowed, "invalid-format", "exp_month: must be a number"),
        failed(
            6, not_allowed, "card-not-allowed", "the issuer does not allow tokens for this card"
        ),
        failed(7, jcb, "card-brand-not-supported", "card brand jcb is not supported"),
        failed(8, good, "invalid-format", "exp_year: the card has expired"),
    ]
    assert counts()["tokens"] == 1
    assert job["started_at"] and job["finished_at"]


def test_rows_give_the_same_error_codes_as_the_single_api(bulk: Bulk) -> None:
    declined = bulk.card(DECLINED)
    single = bulk.provision(declined)
    _job, lines = bulk.run(csv_text(HEADER, [(declined["pan_alias"], 7, NEXT_YEAR)]))
    error = single.json()["errors"][0]
    assert lines[1][6:] == [error["code"], error["detail"]]


def test_uploading_the_same_file_again_creates_nothing_new(bulk: Bulk, counts: Counts) -> None:
    aliases = [bulk.card()["pan_alias"] for _ in range(5)]
    text = csv_text(HEADER, [(alias, 7, NEXT_YEAR) for alias in aliases])
    first_job, first = bulk.run(text)
    before = counts()
    second_job, second = bulk.run(text)
    assert second_job["succeeded"] == first_job["succeeded"] == 5
    assert second == first  # the same tokens, line for line
    after = counts()
    assert (after["cards"], after["tokens"]) == (before["cards"], before["tokens"]) == (5, 5)
    assert after["jobs"] == 2


def test_pan_rows_enrol_the_card_first_and_never_show_the_pan(
    server: Server, bulk: Bulk, counts: Counts
) -> None:
    pans = [random_pan() for _ in range(3)]
    existing = bulk.card(pans[0])
    text = csv_text(
        ("pan", "exp_month", "exp_year", "name", "postal_code"),
        [
            (pans[0], 7, NEXT_YEAR, "", ""),
            (pans[1], 8, NEXT_YEAR, "Ada", "N1"),
            (pans[2], 9, NEXT_YEAR % 100, "", ""),
        ],
    )
    job, lines = bulk.run(text)
    assert job["succeeded"] == 3 and lines[1][1] == existing["pan_alias"]
    card = bulk.call("GET", f"/cards/{lines[2][1]}").json()
    assert (card["last4"], card["expires_at"]) == (pans[1][-4:], f"{NEXT_YEAR}-08")
    assert card["holder_info"] == {"name": "Ada", "billing_address": {"postal_code": "N1"}}
    assert counts()["cards"] == 3 and counts()["tokens"] == 3
    results = bulk.call("GET", f"/network-tokens/bulk/{job['id']}/results").text
    log = server.log_path.read_text()
    for pan in pans:
        assert pan not in results and pan not in log
    assert counts.stored_pans(str(job["id"])) == 0  # ciphertexts dropped once processed


def test_a_pan_in_the_alias_column_is_refused_and_not_echoed(bulk: Bulk) -> None:
    pan = random_pan()
    _job, lines = bulk.run(csv_text(HEADER, [(pan, 7, NEXT_YEAR)]))
    assert lines[1] == ["1", "", "FAILED", "", "", "", "invalid-format", lines[1][7]]
    assert "card number" in lines[1][7] and pan not in str(lines)


def test_a_pan_column_needs_cards_write(server: Server, factory: Factory) -> None:
    bulk = Bulk(server, factory, scopes=["network-tokens:write"])
    counts = Counts(server, bulk.vault_id)
    response = bulk.upload(csv_text(("pan", "exp_month", "exp_year"), [(random_pan(), 7, 30)]))
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "insufficient-scope"
    assert counts()["jobs"] == 0
    counts.close()
    read_only = Bulk(server, factory, scopes=["network-tokens:read"])
    assert read_only.upload(csv_text(HEADER, [("pan_x", 7, 30)])).status_code == 403


def test_a_multipart_file_field_is_accepted(bulk: Bulk) -> None:
    card = bulk.card()
    text = csv_text(HEADER, [(card["pan_alias"], 7, NEXT_YEAR)])
    response = httpx.post(
        f"{bulk.server.url}/network-tokens/bulk",
        files={"file": ("cards.csv", text.encode(), "text/csv")},
        data={"note": "ignored"},
        headers=bulk.headers,
    )
    assert response.status_code == 202, response.text
    assert set(response.json()) >= {"id", "state", "total", "created_at"}
    assert response.json()["total"] == 1
    assert bulk.wait(response.json()["id"])["succeeded"] == 1


def test_quoted_fields_bom_and_crlf_are_read(bulk: Bulk) -> None:
    card = bulk.card()
    text = (
        "\ufeffpan_alias,exp_month,exp_year,address1\r\n"
        f'{card["pan_alias"]},7,{NEXT_YEAR},"1 Main St,\r\nFlat 2"\r\n'
    )
    job, lines = bulk.run(text)
    assert job["total"] == 1 and lines[1][2] == "ACTIVE"


def test_jobs_of_other_vaults_do_not_exist(server: Server, factory: Factory, bulk: Bulk) -> None:
    card = bulk.card()
    job, _ = bulk.run(csv_text(HEADER, [(card["pan_alias"], 7, NEXT_YEAR)]))
    other = Bulk(server, factory)
    for path in ("", "/results"):
        response = other.call("GET", f"/network-tokens/bulk/{job['id']}{path}")
        assert response.status_code == 404
        assert response.json()["errors"][0]["code"] == "not-found"


def test_a_file_refused_midway_leaves_nothing_behind(bulk: Bulk, counts: Counts) -> None:
    rows = "".join(f"pan_{n},7,{NEXT_YEAR}\n" for n in range(2500))  # > one stored batch
    response = bulk.upload(f'pan_alias,exp_month,exp_year\n{rows}"never closed,7,{NEXT_YEAR}\n')
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "invalid-format"
    assert counts()["jobs"] == 0


def test_a_card_twice_in_one_file_gets_one_token(bulk: Bulk, counts: Counts) -> None:
    card, pan = bulk.card(), random_pan()
    job, lines = bulk.run(csv_text(HEADER, [(card["pan_alias"], 7, NEXT_YEAR)] * 2))
    assert job["succeeded"] == 2 and lines[1][1:] == lines[2][1:]
    job, lines = bulk.run(csv_text(("pan", "exp_month", "exp_year"), [(pan, 7, NEXT_YEAR)] * 2))
    assert job["succeeded"] == 2 and lines[1][1:] == lines[2][1:]
    assert (counts()["cards"], counts()["tokens"]) == (2, 2)


def test_bulk_rows_write_the_same_events_as_the_single_api(
    server: Server, factory: Factory
) -> None:
    """Each token a job activates is announced (network_token.activated) exactly once,
    as POST /network-tokens would; a declined row creates no token and no event."""
    bulk = Bulk(server, factory, ["cards:write", "network-tokens:write", "webhooks:read"])
    aliases = [bulk.card()["pan_alias"] for _ in range(3)]
    declined = bulk.card(DECLINED)["pan_alias"]
    rows = [(alias, 7, NEXT_YEAR) for alias in [*aliases, declined]]
    job, _lines = bulk.run(csv_text(HEADER, rows))
    assert (job["succeeded"], job["failed"]) == (3, 1)
    events = bulk.call("GET", "/events?limit=100").json()["data"]
    assert sorted((e["event"], e["details"]["pan_alias"]) for e in events) == sorted(
        ("network_token.activated", alias) for alias in aliases
    )

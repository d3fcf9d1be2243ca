"""`cardvault bulk enroll|status|results` against a real server."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from tests.factories import Factory
from tests.functional.api.test_cards import NEXT_YEAR
from tests.functional.api.test_network_tokens import DECLINED
from tests.functional.bulk.helpers import RESULT_HEADER, Bulk, csv_text
from tests.functional.cli.conftest import cli_for
from tests.servers import Server


def test_enroll_waits_writes_results_and_summarises(
    server: Server, factory: Factory, tmp_path: Path
) -> None:
    bulk = Bulk(server, factory)
    cli = cli_for(server, bulk.client.client_id, bulk.client.client_secret)
    good, declined = bulk.card(), bulk.card(DECLINED)
    source = tmp_path / "cards.csv"
    source.write_text(
        csv_text(
            ("pan_alias", "exp_month", "exp_year"),
            [
                (good["pan_alias"], 7, NEXT_YEAR),
                (declined["pan_alias"], 7, NEXT_YEAR),
                ("pan_unknown", 7, NEXT_YEAR),
            ],
        )
    )
    out = tmp_path / "results.csv"
    done = cli("bulk", "enroll", str(source), "--wait", "-o", str(out))
    lines = list(csv.reader(out.read_text().splitlines()))
    assert lines[0] == RESULT_HEADER
    assert [(line[0], line[2], line[6]) for line in lines[1:]] == [
        ("1", "ACTIVE", ""),
        ("2", "FAILED", "declined"),
        ("3", "FAILED", "not-found"),
    ]
    summary = {
        parts[0]: parts[1]
        for parts in (line.replace("│", " ").split() for line in done.stderr.splitlines())
        if len(parts) == 2 and parts[1].isdigit()
    }
    assert summary == {"ACTIVE": "1", "declined": "1", "not-found": "1"}
    assert "3/3" in done.stderr and "rows/s" in done.stderr

    job_id = re.search(r"job (bulk_\w+) completed", done.stderr)
    assert job_id is not None, done.stderr
    status = json.loads(cli("bulk", "status", job_id[1], "--output", "json").stdout)
    assert (status["state"], status["total"], status["succeeded"]) == ("completed", 3, 1)
    again = tmp_path / "again.csv"
    cli("bulk", "results", job_id[1], "-o", str(again))
    assert again.read_text() == out.read_text()


def test_enroll_without_wait_prints_the_job_and_errors_are_one_line(
    server: Server, factory: Factory, tmp_path: Path
) -> None:
    bulk = Bulk(server, factory)
    cli = cli_for(server, bulk.client.client_id, bulk.client.client_secret)
    source = tmp_path / "bad.csv"
    source.write_text("pan_alias,exp_month\nx,1\n")
    refused = cli("bulk", "enroll", str(source), check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "exp_year" in refused.stderr and "required-fields-missing" in refused.stderr
    source.write_text(f"pan_alias,exp_month,exp_year\n{bulk.card()['pan_alias']},7,{NEXT_YEAR}\n")
    queued = cli("bulk", "enroll", str(source))
    assert "bulk_" in queued.stdout
    missing = cli("bulk", "status", "bulk_nope", check=False)
    assert missing.returncode == 1 and "not-found" in missing.stderr

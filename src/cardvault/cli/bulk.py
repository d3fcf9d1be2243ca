"""``cardvault bulk``: upload a CSV file of cards, follow the job, save its results."""

from __future__ import annotations

import csv
import io
import time
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from cardvault.cli.output import Format, show
from cardvault.cli.remote import Url, fail, session
from cardvault.client import DEFAULT_URL, Client

app = typer.Typer(help="Bulk enrolment of network tokens from CSV files.", no_args_is_help=True)
err = Console(stderr=True, soft_wrap=True)

JOB_COLUMNS = ("id", "state", "total", "processed", "succeeded", "failed", "created_at")
FINAL = ("completed", "cancelled", "failed")
POLL = 0.5


class RowsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("- rows/s" if speed is None else f"{speed:,.0f} rows/s")


def _upload(client: Client, path: Path) -> dict[str, Any]:
    client.access_token()  # before the body starts streaming: no retry needed after it
    with path.open("rb") as body:
        response = client.request(
            "POST",
            "/network-tokens/bulk",
            content=body,
            headers={"Content-Type": "text/csv"},
            timeout=None,
        )
    return dict(response.json())


def _follow(client: Client, job: dict[str, Any]) -> dict[str, Any]:
    """Poll the job until it ends, with a progress bar (rows, rows/s, ETA) on stderr."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RowsPerSecond(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=False) as progress:
        task = progress.add_task(f"job {job['id']}", total=job["total"])
        while True:
            job = dict(client.get(f"/network-tokens/bulk/{job['id']}"))
            progress.update(task, completed=job["processed"])
            if job["state"] in FINAL:
                return job
            time.sleep(POLL)


def _save_results(client: Client, job_id: str, out: Path | None) -> Counter[str]:
    """Write the results file (if asked) and count outcomes: the error code, or the
    token state for rows that succeeded."""
    response = client.request("GET", f"/network-tokens/bulk/{job_id}/results", timeout=None)
    outcomes: Counter[str] = Counter()
    text = response.text
    for line in csv.DictReader(io.StringIO(text)):
        outcomes[line["error_code"] or line["state"]] += 1
    if out is not None:
        out.write_text(text)
    return outcomes


def _summary(outcomes: Counter[str]) -> None:
    table = Table("outcome", "rows", show_edge=False, header_style="bold")
    for outcome, count in outcomes.most_common():
        table.add_row(outcome, str(count))
    err.print(table)


@app.command("enroll")
def enroll(
    file: Annotated[Path, typer.Argument(help="CSV file: pan_alias (or pan), exp_month, …")],
    wait: Annotated[bool, typer.Option("--wait", help="Follow the job until it ends.")] = False,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the results CSV here.")
    ] = None,
    url: Url = DEFAULT_URL,
) -> None:
    """Upload a CSV file; with --wait, show progress, then save results and a summary."""
    if not file.is_file():
        raise fail(f"cannot read {file}")
    with session(url) as client:
        job = _upload(client, file)
        if not wait:
            show(job, JOB_COLUMNS, Format.table)
            return
        job = _follow(client, job)
        outcomes = _save_results(client, job["id"], output)
    _summary(outcomes)
    if output is not None:
        err.print(f"job {job['id']} {job['state']}: results in {output}")


@app.command("status")
def status(job_id: str, url: Url = DEFAULT_URL, output: Format = Format.table) -> None:
    """Show a job's state and counters."""
    with session(url) as client:
        job = client.get(f"/network-tokens/bulk/{job_id}")
    show(job, (*JOB_COLUMNS, "started_at", "finished_at"), output)


@app.command("results")
def results(
    job_id: str,
    output: Annotated[Path, typer.Option("-o", "--output", help="Results CSV file.")],
    url: Url = DEFAULT_URL,
) -> None:
    """Save a job's results CSV (one line per input row) and print a summary."""
    with session(url) as client:
        outcomes = _save_results(client, job_id, output)
    _summary(outcomes)


@app.command("cancel")
def cancel(job_id: str, url: Url = DEFAULT_URL) -> None:
    """Cancel a queued or running job."""
    with session(url) as client:
        job = client.post(f"/network-tokens/bulk/{job_id}/cancel")
    show(job, JOB_COLUMNS, Format.table)

"""Bulk enrolment figures: rows/s, peak server memory, interactive p99 meanwhile.

Generates a CSV file of BENCH_BULK_ROWS (default 100,000) rows of new, valid Visa
test cards (``pan`` column: each row enrols the card and provisions its token),
uploads it to a fresh SQLite installation served by two workers, and while the job
runs measures ``GET /network-tokens/{pan_alias}`` with wrk: interactive traffic at a
steady pace (BENCH_BULK_PROBE_RPS, default 500 req/s; 0: as fast as wrk can, which
measures how the two loads share the CPUs rather than the job). Peak memory is each
server process's VmHWM (the kernel's high-water mark of its resident set).
BENCH_BULK_CHUNK_ROWS sets the server's bulk_chunk_rows (default: the server's own).
Writes bench/results/bulk.md.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import (
    BEARER_LUA,
    BenchError,
    Context,
    TokenLedger,
    cardvault_binary,
    fetch_token,
    init_installation,
    machine_header,
    run_wrk,
    running_server,
    say,
    server_env,
    vault_account,
)

from cardvault.client import Client
from cardvault.crypto.pan import luhn_check_digit

RESULTS_FILE = Path(__file__).resolve().parent / "results" / "bulk.md"
WORKERS = 2
PROBE_CONNECTIONS = 4
DEFAULT_PROBE_RPS = 500
GOAL_ROWS_PER_S = 2000.0
GOAL_RSS_MB = 300.0
GOAL_P99_MS = 100.0


def _whole_number(name: str, default: str) -> int:
    raw = os.environ.get(name, default)
    if not raw.isdigit() or int(raw) < 1:
        raise BenchError(f"{name} must be a positive whole number, not {raw!r}")
    return int(raw)


def probe_rps() -> int:
    """BENCH_BULK_PROBE_RPS: the interactive requests per second (0: unpaced)."""
    raw = os.environ.get("BENCH_BULK_PROBE_RPS", str(DEFAULT_PROBE_RPS))
    if not raw.isdigit():
        raise BenchError(f"BENCH_BULK_PROBE_RPS must be a whole number, not {raw!r}")
    return int(raw)


def probe_delay_ms(rps: int) -> int:
    """Each probe connection's pause before a request, for about ``rps`` in all."""
    return 0 if rps == 0 else max(1, round(PROBE_CONNECTIONS * 1000 / rps))


def bulk_rows() -> int:
    return _whole_number("BENCH_BULK_ROWS", "100000")


def chunk_rows() -> int | None:
    """BENCH_BULK_CHUNK_ROWS: the server's bulk_chunk_rows (unset: its default)."""
    if "BENCH_BULK_CHUNK_ROWS" not in os.environ:
        return None
    return _whole_number("BENCH_BULK_CHUNK_ROWS", "")


def write_file(path: Path, rows: int) -> None:
    """New random Luhn-valid Visa PANs (approved by the simulator), each once."""
    year = dt.date.today().year + 3
    seen: set[str] = set()
    with path.open("w") as out:
        out.write("pan,exp_month,exp_year\n")
        while len(seen) < rows:
            body = "4" + "".join(random.choices("0123456789", k=14))
            pan = body + luhn_check_digit(body)
            if pan not in seen:
                seen.add(pan)
                out.write(f"{pan},12,{year}\n")


def peak_rss_mb(pid: int) -> list[float]:
    """VmHWM of the server's processes (the kernel's peak resident set), in MB."""
    peaks = []
    try:
        processes = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []
    for process in processes:
        status = Path(f"/proc/{process.pid}/status")
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return peaks


def wait_for_job(client: Client, job_id: str) -> dict[str, Any]:
    """Poll until the job ends (the client fetches new tokens as old ones expire)."""
    while True:
        job: dict[str, Any] = client.get(f"/network-tokens/bulk/{job_id}")
        if job["state"] in ("completed", "cancelled", "failed"):
            return job
        time.sleep(0.5)


def probe_during(url: str, token: str, seconds: int, delay: int, out: dict[str, Any]) -> None:
    env = {"CV_BEARER": token, "CV_DELAY_MS": str(delay)}
    try:
        out["line"], out["fields"] = run_wrk(url, BEARER_LUA, PROBE_CONNECTIONS, seconds, env)
    except BenchError as error:
        out["error"] = str(error)


def measure(ctx: Context, rows: int, file: Path, chunk: str, rps: int) -> list[str]:
    with running_server(ctx.cardvault, ctx.env, WORKERS, ctx.data_dir) as server:
        account = vault_account(ctx, server)
        token = fetch_token(server.url, account)
        headers = {"Authorization": f"Bearer {token}"}
        year = dt.date.today().year + 3
        probe = httpx.post(
            f"{server.url}/network-tokens",
            json={"pan": "4242424242424242", "exp_month": 12, "exp_year": year},
            headers=headers,
            timeout=10,
        ).json()
        say(f"  uploading {rows:,} rows")
        started = time.monotonic()
        with file.open("rb") as body:
            upload = httpx.post(
                f"{server.url}/network-tokens/bulk",
                content=body,
                headers={**headers, "Content-Type": "text/csv"},
                timeout=600,
            )
        if upload.status_code != 202:
            raise BenchError(f"upload failed: {upload.status_code} {upload.text[:300]}")
        uploaded = time.monotonic() - started
        expected = max(5, min(60, int(rows / GOAL_ROWS_PER_S)))
        token = fetch_token(server.url, account)  # fresh for the probe
        probe_out: dict[str, Any] = {}
        probe_url = f"{server.url}/network-tokens/{probe['pan_alias']}"
        delay = probe_delay_ms(rps)
        prober = threading.Thread(
            target=probe_during, args=(probe_url, token, expected, delay, probe_out)
        )
        prober.start()
        with Client(server.url, account["client_id"], account["client_secret"]) as client:
            job = wait_for_job(client, upload.json()["id"])
        total = time.monotonic() - started
        prober.join()
        peaks = peak_rss_mb(server.process.pid) if server.process else []
    return report_lines(rows, chunk, rps, job, uploaded, total, probe_out, peaks)


def _seconds(job: dict[str, Any]) -> float:
    start = dt.datetime.fromisoformat(job["started_at"].replace("Z", "+00:00"))
    end = dt.datetime.fromisoformat(job["finished_at"].replace("Z", "+00:00"))
    return (end - start).total_seconds()


def report_lines(
    rows: int,
    chunk: str,
    rps: int,
    job: dict[str, Any],
    uploaded: float,
    total: float,
    probe: dict[str, Any],
    peaks: list[float],
) -> list[str]:
    processing = _seconds(job)
    rate = rows / processing if processing else 0.0
    peak = max(peaks, default=0.0)
    p99 = probe["fields"]["p99_ms"] if "fields" in probe else float("nan")
    pace = f"paced at about {rps:,} req/s" if rps else "as fast as wrk can"

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    return [
        f"## Bulk enrolment: {rows:,} `pan` rows, {WORKERS} workers, SQLite, chunks of {chunk}",
        "",
        f"- job: {job['state']}, succeeded {job['succeeded']:,}, failed {job['failed']:,}",
        f"- upload (stream + store rows, until 202): {uploaded:.1f} s",
        f"- processing (started_at → finished_at): {processing:.1f} s = {rate:,.0f} rows/s",
        f"- end to end (upload start → job completed): {total:.1f} s = {rows / total:,.0f} rows/s",
        f"- peak RSS per server process (VmHWM): {', '.join(f'{p:.0f} MB' for p in peaks)}",
        f"- GET /network-tokens/{{pan_alias}} meanwhile (wrk -c{PROBE_CONNECTIONS}, {pace}): "
        + (probe.get("line", probe.get("error", "not measured"))),
        "",
        "## Goals",
        "",
        f"- ≥ {GOAL_ROWS_PER_S:,.0f} rows/s: {rate:,.0f} → {verdict(rate >= GOAL_ROWS_PER_S)}",
        f"- peak RSS < {GOAL_RSS_MB:.0f} MB: {peak:.0f} MB → {verdict(peak < GOAL_RSS_MB)}",
        f"- interactive p99 < {GOAL_P99_MS:.0f} ms: {p99:.2f} ms → {verdict(p99 < GOAL_P99_MS)}",
    ]


def main() -> int:
    cores = len(os.sched_getaffinity(0))
    header = machine_header(cores, 0)[:4]
    data_dir = Path(tempfile.mkdtemp(prefix="cardvault-bulk-bench-"))
    try:
        rows = bulk_rows()
        cardvault = cardvault_binary()
        env = server_env(data_dir)
        chunk = chunk_rows()
        if chunk is not None:
            env["CARDVAULT_BULK_CHUNK_ROWS"] = str(chunk)
        say(f"initializing a fresh installation in {data_dir}")
        init = init_installation(cardvault, env)
        ctx = Context(cardvault, env, data_dir, init["cli_credentials"], 0, TokenLedger(), init)
        file = data_dir / "cards.csv"
        say(f"  generating {rows:,} rows")
        write_file(file, rows)
        lines = measure(ctx, rows, file, str(chunk or "the default"), probe_rps())
        file.unlink()
    except BenchError as error:
        lines = [f"- ABORTED: {error}"]
    finally:
        if os.environ.get("BENCH_KEEP") != "1":
            shutil.rmtree(data_dir, ignore_errors=True)
    report = [*header, "", *lines]
    print("\n".join(report))
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text("\n".join(report) + "\n")
    return 1 if lines[0].startswith("- ABORTED") else 0


if __name__ == "__main__":
    sys.exit(main())

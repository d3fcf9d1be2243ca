"""deploy/grafana-dashboard.json queries exactly the families the service exposes."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

from prometheus_client import REGISTRY

from cardvault.observability import Backlog, Snapshot, metrics
from cardvault.web import metrics as web_metrics

DASHBOARD = Path(__file__).resolve().parents[3] / "deploy" / "grafana-dashboard.json"


def _families() -> set[str]:
    metrics()
    web_metrics._families()
    snapshot = Snapshot({"bulk_jobs": Backlog(0, None)}, dt.datetime.now(dt.UTC))
    names = {family.name for family in REGISTRY.collect()} | {f.name for f in snapshot.collect()}
    return {name for name in names if name.startswith("cardvault_")}


def test_the_dashboard_queries_every_family_and_no_other() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    queries = " ".join(target["expr"] for panel in panels for target in panel["targets"])
    used = set(re.findall(r"cardvault_[a-z_]+", queries))
    families = _families()
    suffixes = ("_total", "_bucket", "_count", "_sum")
    for name in used:
        base = next((name.removesuffix(s) for s in suffixes if name.endswith(s)), name)
        assert name in families or base in families, f"{name}: no such family"
    for family in families:
        assert any(name == family or name.startswith(family + "_") for name in used), family

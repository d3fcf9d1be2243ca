"""The metrics' labels come from fixed sets and the allowed networks are checked as
configured."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from cardvault.app import fallback_name, route_table
from cardvault.settings import Settings, in_networks, parse_networks
from cardvault.web import metrics as web_metrics

FALLBACK_NAMES = {"dashboard", "docs", "healthz", "readyz", "unmatched"}


@given(st.text(max_size=300).map(lambda text: "/" + text))
def test_any_path_the_table_lacks_gets_one_of_a_few_names(path: str) -> None:
    assert fallback_name(path) in FALLBACK_NAMES


def test_the_pages_and_checks_have_their_own_names() -> None:
    assert fallback_name("/dashboard") == fallback_name("/dashboard/vaults/x") == "dashboard"
    assert fallback_name("/docs") == fallback_name("/openapi.json") == "docs"
    assert (fallback_name("/healthz"), fallback_name("/readyz")) == ("healthz", "readyz")
    assert fallback_name("/dashboardx") == fallback_name("/healthz/x") == "unmatched"


def test_requests_make_one_series_per_route_and_status() -> None:
    observe = web_metrics.RequestMetrics()
    for status in (200, 404, 200):
        observe("GET /cards/{card_id}", status, 0.001)
    observe("unmatched", 404, 0.002)
    assert sorted(observe._children) == [
        ("GET /cards/{card_id}", 200),
        ("GET /cards/{card_id}", 404),
        ("unmatched", 404),
    ]


def test_only_the_allowed_networks_may_read() -> None:
    networks = parse_networks(Settings().metrics_allowed_networks)
    assert in_networks("127.0.0.1", networks)
    assert in_networks("::1", networks)
    assert in_networks("::ffff:127.0.0.1", networks)  # IPv4 mapped
    assert not in_networks("127.0.0.2", networks)
    assert not in_networks("10.0.0.1", networks)
    assert not in_networks("unknown", networks)
    assert not in_networks("127.0.0.1", ())
    private = parse_networks("10.0.0.0/8")
    assert in_networks("10.20.30.40", private)
    assert not in_networks("127.0.0.1", private)


def test_metrics_is_not_in_the_document_and_needs_no_token(tmp_path: Path) -> None:
    [route] = [r for r in route_table(Settings(data_dir=tmp_path), None) if r.path == "/metrics"]
    assert (route.method, route.bearer, route.document) == ("GET", False, False)

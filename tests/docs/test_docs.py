"""The documentation: the site builds without a broken link or a missing page, and
its reference pages say what the code says."""

from __future__ import annotations

import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import markdown

from cardvault.settings import Settings
from cardvault.web.app import openapi_document

ROOT = Path(__file__).resolve().parents[2]


class _Links(HTMLParser):
    """Link targets and element ids of a rendered page."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids.add(str(found["id"]))
        target = found.get("href") if tag == "a" else found.get("src") if tag == "img" else None
        if target:
            self.targets.append(target)


def rendered(path: Path) -> _Links:
    """A Markdown file as MkDocs renders it: its links, and the anchors of its headings."""
    html = markdown.markdown(
        path.read_text(encoding="utf-8"), extensions=["toc", "tables", "fenced_code"]
    )
    links = _Links()
    links.feed(html)
    return links


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    """`mkdocs build --strict` fails on a broken link or anchor, a page missing from
    the navigation, and a reference page that the code no longer matches."""
    site = tmp_path / "site"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARDVAULT_")}
    env["NO_MKDOCS_2_WARNING"] = "1"
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    configuration = (site / "configuration.html").read_text(encoding="utf-8")
    for name in Settings.model_fields:
        assert f"CARDVAULT_{name.upper()}" in configuration
    api = (site / "api.html").read_text(encoding="utf-8")
    for path in openapi_document()["paths"]:
        assert path in api


def test_every_setting_is_described() -> None:
    """The configuration reference is made from these descriptions."""
    fields = Settings.model_fields
    assert [name for name, field in fields.items() if not (field.description or "").strip()] == []

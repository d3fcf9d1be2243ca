"""The documentation: the site builds without a broken link or a missing page, its
reference pages say what the code says, and the README's links lead somewhere."""

from __future__ import annotations

import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import markdown
import pytest

from cardvault.app import openapi_document
from cardvault.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
README_MAX_LINES = 250


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


@pytest.mark.parametrize("target", rendered(README).targets)
def test_every_relative_link_of_the_readme_leads_somewhere(target: str) -> None:
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return  # an absolute URL: not ours to check offline
    path = README if not parts.path else (ROOT / unquote(parts.path)).resolve()
    assert path.exists(), f"README links to {target}, which does not exist"
    assert path.is_relative_to(ROOT)
    if parts.fragment:
        assert path.suffix == ".md", f"README links to an anchor of {target}"
        anchors = rendered(path).ids
        assert parts.fragment in anchors, f"{path.name} has no heading #{parts.fragment}"


def test_the_readme_stays_a_front_door() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines < README_MAX_LINES, "depth belongs in docs/, the README links to it"


def test_every_setting_is_described() -> None:
    """The configuration reference is made from these descriptions."""
    fields = Settings.model_fields
    assert [name for name, field in fields.items() if not (field.description or "").strip()] == []

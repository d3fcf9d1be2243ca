"""Printing resources as a table, YAML or JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from rich.console import Console
from rich.table import Table

from cardvault.cli.manifest import dump


class Format(StrEnum):
    table = "table"
    yaml = "yaml"
    json = "json"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return " ".join(str(v) for v in value) or "-"
    return str(value)


def show(data: Any, columns: Sequence[str], fmt: Format) -> None:
    """Print one resource (a dict) or several (a list) in the chosen format."""
    if fmt is Format.json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    if fmt is Format.yaml:
        sys.stdout.write(dump(data))
        return
    rows = data if isinstance(data, list) else [data]
    table = Table(*columns, show_edge=False, header_style="bold")
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    # A pipe or file gets whole values; a terminal gets its own width.
    Console(width=None if sys.stdout.isatty() else 1000).print(table)

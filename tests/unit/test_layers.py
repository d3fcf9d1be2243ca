"""The layers hold: HTTP -> runtime -> domain -> store, crypto and settings; no cycles.

The contracts are in ``pyproject.toml`` (``[tool.importlinter]``); each is checked here
with import-linter's own command, whose report is the failure message. A contract
covers only the modules it names, so the last test checks that every module of the
package is named by the two layer contracts.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

import cardvault

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "pyproject.toml"
PACKAGE = Path(cardvault.__file__).parent
LINT = "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"


def _contracts() -> dict[str, dict[str, Any]]:
    with CONFIG.open("rb") as file:
        config = tomllib.load(file)["tool"]["importlinter"]
    return {contract["id"]: contract for contract in config["contracts"]}


CONTRACTS = _contracts()


@pytest.mark.parametrize("contract", sorted(CONTRACTS))
def test_contract_is_kept(contract: str) -> None:
    # Run from the root, where it reads pyproject.toml.
    command = [sys.executable, "-c", LINT, "--no-logo", "--no-cache"]
    result = subprocess.run(
        [*command, "--contract", contract],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _modules(path: Path, prefix: str) -> list[str]:
    return [f"{prefix}.{info.name}" for info in pkgutil.iter_modules([str(path)])]


def _named(module: str, names: set[str]) -> bool:
    parts = module.split(".")
    return any(".".join(parts[:i]) in names for i in range(2, len(parts) + 1))


def test_every_module_has_a_layer() -> None:
    """A new package or module must be placed in a layer, or no contract would look
    at it."""
    edge = CONTRACTS["http-at-the-edge"]
    low = CONTRACTS["store-and-crypto-below-the-domain"]
    names = {*edge["source_modules"], *edge["forbidden_modules"], *low["source_modules"]}
    unplaced = []
    for module in _modules(PACKAGE, "cardvault"):
        if _named(module, names):
            continue
        inner = PACKAGE / module.split(".")[-1]
        if not inner.is_dir():
            unplaced.append(module)
            continue
        unplaced += [m for m in _modules(inner, module) if not _named(m, names)]
    assert unplaced == [], f"name these in [tool.importlinter] contracts: {unplaced}"

"""SQLite commits are durable by default (``synchronous=FULL``); NORMAL is an opt-in."""

from __future__ import annotations

from pathlib import Path

import pytest

from cardvault.runtime import prepare
from cardvault.settings import Settings

FULL, NORMAL = 2, 1  # what PRAGMA synchronous reports


def _synchronous(settings: Settings) -> tuple[int, int]:
    """PRAGMA synchronous on a read and on a write connection of the installation the
    server would open with these settings."""
    db = prepare(settings)
    try:
        with db.engine.connect() as conn:
            read = conn.exec_driver_sql("PRAGMA synchronous").scalar_one()
        with db.write_connection() as conn:
            write = conn.exec_driver_sql("PRAGMA synchronous").scalar_one()
    finally:
        db.dispose()
    return int(read), int(write)


def test_commits_are_synced_to_disk_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CARDVAULT_SQLITE_SYNCHRONOUS", raising=False)
    settings = Settings(data_dir=tmp_path)
    assert settings.sqlite_synchronous == "full"
    assert _synchronous(settings) == (FULL, FULL)


def test_normal_is_chosen_by_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARDVAULT_SQLITE_SYNCHRONOUS", "normal")
    assert _synchronous(Settings(data_dir=tmp_path)) == (NORMAL, NORMAL)


def test_other_values_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARDVAULT_SQLITE_SYNCHRONOUS", "off")
    with pytest.raises(ValueError, match="sqlite_synchronous"):
        Settings(data_dir=tmp_path)

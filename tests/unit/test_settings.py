"""Settings convert and check their values once, at start-up."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from pydantic import ValidationError

from cardvault.settings import Settings


def test_allowed_webhook_networks_are_parsed(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, webhook_allowed_networks="127.0.0.0/8, 10.1.0.1/16")
    assert settings.webhook_networks == (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("10.1.0.0/16"),
    )
    assert Settings(data_dir=tmp_path).webhook_networks == ()


def test_bad_network_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="not-a-network"):
        Settings(data_dir=tmp_path, webhook_allowed_networks="127.0.0.0/8,not-a-network")

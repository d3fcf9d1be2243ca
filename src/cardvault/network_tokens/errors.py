"""Errors of the network-tokens domain (provider errors come from ``networks``)."""

from __future__ import annotations

from cardvault.problems import NotFound


class TokenNotFound(NotFound):
    pass

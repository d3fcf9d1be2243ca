"""Errors of the events domain."""

from __future__ import annotations

from cardvault.problems import Unprocessable


class UnknownEvent(Unprocessable):
    """``after`` names no event of this vault."""

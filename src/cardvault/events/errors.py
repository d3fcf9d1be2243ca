"""Errors of the events domain."""

from __future__ import annotations


class UnknownEvent(Exception):
    """``after`` names no event of this vault."""

    code = "invalid-format"
    status = 422

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

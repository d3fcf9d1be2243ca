"""Errors of the network-tokens domain (provider errors come from ``networks``)."""

from __future__ import annotations


class TokenNotFound(Exception):
    code = "not-found"
    status = 404

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

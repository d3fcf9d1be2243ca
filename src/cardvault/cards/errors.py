"""Errors of the cards domain; each carries its wire code and status."""

from __future__ import annotations


class CardError(Exception):
    code = "bad-request"
    status = 400

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class CardNotFound(CardError):
    code = "not-found"
    status = 404


class InvalidCard(CardError):
    code = "invalid-format"
    status = 422

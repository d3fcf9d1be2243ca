"""Errors of the cards domain; each carries its wire code and status."""

from __future__ import annotations

from cardvault.problems import FieldProblem


class CardError(FieldProblem):
    """Base of the cards domain's errors (``field``: the body field at fault)."""


class CardNotFound(CardError):
    code = "not-found"
    status = 404


class InvalidCard(CardError):
    code = "invalid-format"
    status = 422

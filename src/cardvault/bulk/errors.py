"""Errors of the bulk domain; each carries its wire code and status."""

from __future__ import annotations

from cardvault.problems import FieldProblem


class BulkError(FieldProblem):
    """Base of the bulk domain's errors (``field``: the column at fault)."""


class MissingColumn(BulkError):
    """The header lacks a required column (named in ``field``)."""

    code = "required-fields-missing"
    status = 422


class InvalidFile(BulkError):
    """The header or the file itself cannot be used (unknown column, bad encoding…)."""

    code = "invalid-format"
    status = 422


class JobNotFound(BulkError):
    code = "not-found"
    status = 404


class InvalidJobState(BulkError):
    code = "invalid-state"
    status = 409

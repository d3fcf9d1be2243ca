"""Errors of the bulk domain; each carries its wire code and status."""

from __future__ import annotations


class BulkError(Exception):
    code = "bad-request"
    status = 400

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


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

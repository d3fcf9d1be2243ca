"""Errors of the events domain."""

from __future__ import annotations

from cardvault.problems import Problem, Unprocessable


class UnknownEvent(Unprocessable):
    """``after`` names no event of this vault."""


class InvalidEventCursor(Problem):
    """``after`` is neither an event id nor a ``next_after`` of the API."""

    status = 400
    code = "invalid-cursor"

    def __init__(self) -> None:
        super().__init__(
            "after: not an event id nor a next_after of this API", source={"parameter": "after"}
        )

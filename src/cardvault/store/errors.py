"""Errors of the storage layer."""

from __future__ import annotations


class StoreError(Exception):
    """The database could not be reached or refused an operation."""

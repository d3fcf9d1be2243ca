"""Errors of backups and restores: each message is one line for the operator, safe to
show (paths and revisions, never key material or data)."""

from __future__ import annotations


class BackupError(Exception):
    """A backup or a restore was refused or failed; nothing was left half-written."""


class BackupUnsupported(BackupError):
    """The database is not one cardvault copies itself (PostgreSQL)."""

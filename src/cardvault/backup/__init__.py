"""Backups of a SQLite installation and their restore (PostgreSQL: the database's own
tools; see docs/backup.md). The key-encryption key is never part of a backup."""

from cardvault.backup.create import BackupResult, create_backup
from cardvault.backup.errors import BackupError, BackupUnsupported
from cardvault.backup.manifest import Manifest
from cardvault.backup.restore import RestoreResult, restore_backup

__all__ = [
    "BackupError",
    "BackupResult",
    "BackupUnsupported",
    "Manifest",
    "RestoreResult",
    "create_backup",
    "restore_backup",
]

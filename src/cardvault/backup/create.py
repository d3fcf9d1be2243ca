"""``cardvault backup``: a consistent copy of the running installation's database.

The backup is a directory (0700) holding the database copy and its manifest (0600
each). It is built beside its destination and renamed into place at the end, so a
failed backup leaves nothing at the destination. The key-encryption key never goes
into it: a stolen backup is then ciphertext only. ``kek_to`` writes the key to a file
elsewhere, for the operator to keep apart.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cardvault import __version__
from cardvault.backup.errors import BackupError, BackupUnsupported
from cardvault.backup.manifest import (
    DATABASE_FILE,
    MANIFEST_FILE,
    DatabaseEntry,
    Manifest,
    sha256_of,
    sync_dir,
    write_file,
)
from cardvault.crypto import KeyUnavailableError, copy_key_file
from cardvault.store.errors import StoreError
from cardvault.store.migrate import revision_of
from cardvault.store.snapshot import SnapshotUnsupported, copy_url, snapshot

__all__ = ["BackupResult", "create_backup", "inside"]


@dataclass(frozen=True)
class BackupResult:
    path: Path
    manifest: Manifest
    kek_copy: Path | None
    in_data_dir: bool  # the backup sits beside the key it needs: worth a warning


def inside(path: Path, directory: Path) -> bool:
    """Whether ``path`` is ``directory`` or under it (links resolved)."""
    return path.resolve().is_relative_to(directory.resolve())


def create_backup(
    database_url: str, dest: Path, *, data_dir: Path, kek_path: Path, kek_to: Path | None
) -> BackupResult:
    """Copy the database into the new (or empty) directory ``dest`` with its manifest,
    and the key-encryption key at ``kek_path`` to the new file ``kek_to`` if given.
    Raises :class:`BackupUnsupported` for PostgreSQL, :class:`BackupError` otherwise;
    on any failure nothing is left at ``dest`` or ``kek_to``."""
    dest = dest.absolute()
    _check_destination(dest)
    if kek_to is not None:
        kek_to = kek_to.absolute()
        _check_kek_target(kek_to, dest, kek_path)
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))  # 0700
    wrote_kek = False
    try:
        manifest = _fill(database_url, staging)
        if kek_to is not None:
            copy_key_file(kek_path, kek_to)
            wrote_kek = True
            sync_dir(kek_to.parent)
        staging.rename(dest)  # onto a missing or empty directory: all at once
        sync_dir(dest.parent)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if wrote_kek and kek_to is not None:
            kek_to.unlink(missing_ok=True)
        if isinstance(exc, SnapshotUnsupported):
            raise BackupUnsupported(str(exc)) from None
        if isinstance(exc, StoreError | KeyUnavailableError):
            raise BackupError(str(exc)) from None
        if isinstance(exc, OSError):
            raise BackupError(f"backup failed: {exc.strerror} ({exc.filename})") from None
        raise
    return BackupResult(dest, manifest, kek_to, inside(dest, data_dir))


def _check_destination(dest: Path) -> None:
    if dest.is_dir() and any(dest.iterdir()):
        raise BackupError(f"{dest} is not empty: a backup goes into a new or empty directory")
    if dest.exists() and not dest.is_dir():
        raise BackupError(f"{dest} exists and is not a directory")


def _check_kek_target(kek_to: Path, dest: Path, kek_path: Path) -> None:
    if inside(kek_to, dest):
        raise BackupError(
            f"--kek-to {kek_to} is inside the backup {dest}: the key-encryption key must "
            "be kept apart from the backup it opens"
        )
    if kek_to.exists() or kek_to.is_symlink():
        raise BackupError(f"{kek_to} exists: the key is written to a new file only")
    if not kek_path.is_file():
        raise BackupError(f"there is no key-encryption key at {kek_path} to copy")


def _fill(database_url: str, staging: Path) -> Manifest:
    """The database copy and its manifest in ``staging``."""
    copy = staging / DATABASE_FILE
    snapshot(database_url, copy)
    revision = revision_of(copy_url(copy))
    if revision is None:
        raise BackupError("the database has no schema revision: start cardvault once first")
    digest, size = sha256_of(copy)
    manifest = Manifest(
        cardvault_version=__version__,
        schema_revision=revision,
        created_at=dt.datetime.now(dt.UTC),
        database=DatabaseEntry(file=DATABASE_FILE, bytes=size, sha256=digest),
    )
    write_file(staging / MANIFEST_FILE, manifest.dump())
    sync_dir(staging)
    return manifest

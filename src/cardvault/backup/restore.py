"""``cardvault restore``: a backup into a fresh data directory, checked before it counts.

Nothing is trusted until it is checked: the manifest, the database file against its
checksum, SQLite's own check of the file, the schema revision (never newer than this
code's; older ones are migrated forward), and the key-encryption key, which must
unwrap every key the installation holds. The database is assembled under a temporary
name and renamed into place last; on any failure the temporary file, a key file this
restore wrote and a data directory it created are removed again.
"""

from __future__ import annotations

import hmac
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from cardvault.backup.errors import BackupError, BackupUnsupported
from cardvault.backup.manifest import (
    DATABASE_FILE,
    Manifest,
    copy_hashing,
    read_manifest,
    sync_dir,
)
from cardvault.crypto import KeyUnavailableError, LocalFileKeyProvider, copy_key_file, same_key_file
from cardvault.keys import KeyMismatch, verify_kek
from cardvault.oauth.issuer import Issuer, issuer_in
from cardvault.store.errors import StoreError
from cardvault.store.migrate import head, is_known, revision_of, upgrade
from cardvault.store.snapshot import check_copy, copy_url, database_file, reading_copy

__all__ = ["RestoreResult", "restore_backup"]

SIDE_FILES = ("-wal", "-shm", "-journal", ".writelock")


@dataclass(frozen=True)
class RestoreResult:
    database: Path
    kek_path: Path
    manifest: Manifest
    schema_revision: str  # after migrating forward
    issuer: Issuer | None  # the one the installation recorded: every node must use it


@dataclass(frozen=True)
class Target:
    """Where the restore writes: the database file, the key file, the data directory."""

    database: Path
    kek_path: Path
    data_dir: Path


def restore_backup(
    source: Path, *, database_url: str, data_dir: Path, kek_path: Path, kek_from: Path | None
) -> RestoreResult:
    """Restore the backup directory ``source`` into ``database_url``'s file, in the
    fresh ``data_dir``, with the key at ``kek_from`` (copied to ``kek_path``) or the
    one already at ``kek_path``. Raises :class:`BackupUnsupported` for PostgreSQL and
    :class:`BackupError` for anything refused or failed."""
    database = database_file(database_url)
    if database is None:
        raise BackupUnsupported("only a SQLite database can be restored by cardvault")
    target = Target(database.absolute(), kek_path.absolute(), data_dir.absolute())
    _check_fresh(target)
    key = _key_file(target, kek_from)
    manifest = read_manifest(source)
    if not is_known(manifest.schema_revision):
        raise BackupError(
            f"the backup's schema revision {manifest.schema_revision} is newer than this "
            f"cardvault's ({head()}): restore it with the cardvault version that made it "
            f"({manifest.cardvault_version}) or a newer one"
        )
    return _restore(source, manifest, target, key, write_key=key != target.kek_path)


def _check_fresh(target: Target) -> None:
    """Refuse to overwrite: no database there, and nothing in the data directory but
    (perhaps) the key file."""
    for suffix in ("", *SIDE_FILES):
        existing = Path(f"{target.database}{suffix}")
        if existing.exists():
            raise BackupError(
                f"a database already exists at {existing}: restore only into a fresh data "
                "directory (move the old one away first)"
            )
    if target.data_dir.is_dir():
        others = [p for p in target.data_dir.iterdir() if p.absolute() != target.kek_path]
        if others:
            raise BackupError(
                f"the data directory {target.data_dir} is not empty ({others[0].name}): "
                "restore only into a fresh data directory"
            )
    elif target.data_dir.exists():
        raise BackupError(f"{target.data_dir} exists and is not a directory")


def _key_file(target: Target, kek_from: Path | None) -> Path:
    """The key file to use: ``kek_from``, or the one already in place."""
    try:
        if kek_from is None:
            if not target.kek_path.is_file():
                raise BackupError(
                    "a restore needs the backup's key-encryption key: --kek PATH (the key "
                    f"kept apart from the backup), or the key already at {target.kek_path}"
                )
            return target.kek_path
        kek_from = kek_from.absolute()
        if target.kek_path.exists() and not same_key_file(kek_from, target.kek_path):
            raise BackupError(
                f"another key-encryption key is already at {target.kek_path}: remove it, "
                "or restore with that key"
            )
        LocalFileKeyProvider(kek_from, create=False)  # a 256-bit key, or say so now
    except KeyUnavailableError as exc:
        raise BackupError(str(exc)) from None
    return kek_from


def _restore(
    source: Path, manifest: Manifest, target: Target, key: Path, *, write_key: bool
) -> RestoreResult:
    created_dir = not target.data_dir.exists()
    target.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    target.database.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    staging = target.database.with_name(f".{target.database.name}.restore-{secrets.token_hex(4)}")
    wrote_key = False
    try:
        revision = _assemble(source / DATABASE_FILE, staging, manifest)
        kek = LocalFileKeyProvider(key, create=False)
        with reading_copy(staging) as session:
            verify_kek(session, kek, where=str(key), every_key=True)
            issuer = issuer_in(session)
        if write_key and not target.kek_path.exists():
            target.kek_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            copy_key_file(key, target.kek_path)
            wrote_key = True
            sync_dir(target.kek_path.parent)
        staging.rename(target.database)
        sync_dir(target.database.parent)
    except BaseException as exc:
        for suffix in ("", *SIDE_FILES):
            Path(f"{staging}{suffix}").unlink(missing_ok=True)
        if wrote_key:
            target.kek_path.unlink(missing_ok=True)
        if created_dir:
            shutil.rmtree(target.data_dir, ignore_errors=True)
        raise _as_backup_error(exc) from None
    return RestoreResult(target.database, target.kek_path, manifest, revision, issuer)


def _assemble(copy: Path, staging: Path, manifest: Manifest) -> str:
    """The backup's database at ``staging``, checked and migrated; its revision."""
    digest, size = copy_hashing(copy, staging)
    expected = manifest.database
    if size != expected.bytes or not hmac.compare_digest(digest, expected.sha256):
        raise BackupError(
            f"{copy} does not match its manifest (SHA-256 or size differs): the backup is "
            "damaged or was changed"
        )
    check_copy(staging)
    url = copy_url(staging)
    found = revision_of(url)
    if found != manifest.schema_revision:
        raise BackupError(
            f"{copy} holds schema revision {found}, its manifest says "
            f"{manifest.schema_revision}: the backup is not consistent"
        )
    if found != head():
        upgrade(url)  # forward to this code's schema, on the copy only
    return head()


def _as_backup_error(exc: BaseException) -> BaseException:
    if isinstance(exc, BackupError):
        return exc
    if isinstance(exc, KeyMismatch):
        return BackupError(
            f"the key-encryption key at {exc.where} does not match this backup (it cannot "
            f"decrypt the installation's {exc.what}): restore with the key kept for it"
        )
    if isinstance(exc, StoreError | KeyUnavailableError):
        return BackupError(str(exc))
    if isinstance(exc, OSError):
        return BackupError(f"restore failed: {exc.strerror} ({exc.filename})")
    return exc

"""The manifest of a backup: what made it, the schema it holds, and the checksum of
its database file, read back and checked before a restore trusts the file."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path
from typing import Annotated, BinaryIO, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cardvault.backup.errors import BackupError

__all__ = ["DATABASE_FILE", "MANIFEST_FILE", "Manifest", "read_manifest", "sha256_of", "write_file"]

FORMAT: Final = "cardvault-backup/1"
MANIFEST_FILE = "manifest.json"
DATABASE_FILE: Final = "cardvault.db"
MAX_MANIFEST_BYTES = 16 * 1024
CHUNK = 1 << 20

Hex64 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Revision = Annotated[str, Field(pattern=r"^[0-9A-Za-z_]{1,64}$")]


class DatabaseEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    file: Literal["cardvault.db"]
    bytes: int = Field(ge=0)
    sha256: Hex64


class Manifest(BaseModel):
    """``manifest.json`` of a backup directory."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["cardvault-backup/1"] = FORMAT
    cardvault_version: str = Field(max_length=64)
    schema_revision: Revision
    created_at: dt.datetime
    database: DatabaseEntry
    key_encryption_key: Literal["not included"] = "not included"

    def dump(self) -> bytes:
        return (self.model_dump_json(indent=2) + "\n").encode()


def read_manifest(backup: Path) -> Manifest:
    """The manifest of the backup directory ``backup``; raises :class:`BackupError` if
    it is missing, too large or not a manifest of this format."""
    path = backup / MANIFEST_FILE
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise BackupError(
            f"{backup} is not a cardvault backup: cannot read {path} ({exc.strerror})"
        ) from None
    if len(raw) > MAX_MANIFEST_BYTES:
        raise BackupError(
            f"{path} is not a cardvault manifest (larger than {MAX_MANIFEST_BYTES} bytes)"
        )
    try:
        return Manifest.model_validate_json(raw)
    except ValidationError as exc:
        where = ".".join(str(p) for p in exc.errors()[0]["loc"]) or "document"
        raise BackupError(
            f"{path} is not a cardvault manifest ({where}: {exc.errors()[0]['msg']})"
        ) from None


def sha256_of(path: Path) -> tuple[str, int]:
    """The SHA-256 (hex) and size of a file."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def copy_hashing(source: Path, target: Path) -> tuple[str, int]:
    """Copy ``source`` to the new file ``target`` (0600, synced); the SHA-256 and size
    of what was written."""
    digest, size = hashlib.sha256(), 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out, source.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
        _sync(out)
    return digest.hexdigest(), size


def write_file(path: Path, content: bytes) -> None:
    """Write the new file ``path`` (0600) and sync it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(content)
        _sync(out)


def sync_dir(path: Path) -> None:
    """Make the entries of directory ``path`` (a rename, a new file) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())

"""``cardvault backup`` and ``cardvault restore``: the local installation's SQLite
database, copied while the server runs, and restored into a fresh data directory.

Exit codes: 0 done (notes and warnings on standard error), 1 refused or failed
(nothing written), 2 the installation uses PostgreSQL (its own tools back it up).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from cardvault.settings import get_settings

err = Console(stderr=True, soft_wrap=True)

DOCS = "docs/backup.md"
POSTGRESQL = (
    "this installation uses PostgreSQL, which cardvault does not copy itself: back it up "
    "with PostgreSQL's tools, pg_dump for a logical copy, or base backups with WAL "
    "archiving for point-in-time recovery (PITR), and keep the key-encryption key apart "
    f"from them; see {DOCS} (Backups, PostgreSQL)"
)
POSTGRESQL_RESTORE = (
    "this installation uses PostgreSQL, which cardvault does not restore itself: restore "
    "a pg_dump with pg_restore into a new database, or a base backup with its archived "
    "WAL (point-in-time recovery, PITR), then start the nodes with the same "
    f"key-encryption key; see {DOCS} (Backups, PostgreSQL)"
)
KEK_NOTE = (
    "note: the key-encryption key ({path}) is not in the backup. Keep a copy of it "
    "separately (another place, other access rights; `--kek-to PATH` writes one): a "
    "backup without its key cannot be read, by anyone."
)
IN_DATA_DIR = (
    "warning: {dest} is inside the data directory {data_dir}, beside the key-encryption "
    "key it needs and on the same disk: it does not survive the loss of that disk, and "
    "whoever can read it can also read the key. Keep backups elsewhere."
)


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code)


def backup(
    dest: Annotated[Path, typer.Argument(help="New or empty directory for the backup.")],
    kek_to: Annotated[
        Path | None,
        typer.Option(
            "--kek-to",
            help="Also write the key-encryption key to this new file (0600), which must "
            "not be inside DEST: keep it apart from the backup.",
        ),
    ] = None,
) -> None:
    """Copy the database (SQLite) consistently while the server runs, with a manifest.

    The backup directory (0700) holds cardvault.db and manifest.json (0600): the
    cardvault version, schema revision, time and the database file's SHA-256. The
    key-encryption key is never in it. On PostgreSQL: exit code 2, use pg_dump or PITR.
    """
    from cardvault.backup import BackupError, BackupUnsupported, create_backup
    from cardvault.store.files import private_files

    settings = get_settings()
    private_files()
    try:
        result = create_backup(
            settings.database_url,
            dest,
            data_dir=settings.data_dir,
            kek_path=settings.kek_path,
            kek_to=kek_to,
        )
    except BackupUnsupported:
        raise _fail(POSTGRESQL, 2) from None
    except BackupError as exc:
        raise _fail(str(exc)) from None
    if result.kek_copy is None:
        err.print(escape(KEK_NOTE.format(path=settings.kek_path)), highlight=False)
    else:
        err.print(
            escape(
                f"the key-encryption key is in {result.kek_copy}: store it apart from the backup"
            ),
            highlight=False,
        )
    if result.in_data_dir:
        message = IN_DATA_DIR.format(dest=result.path, data_dir=settings.data_dir.absolute())
        err.print(f"[yellow]{escape(message)}[/]", highlight=False)
    document = {"backup": str(result.path), **json.loads(result.manifest.dump())}
    sys.stdout.write(json.dumps(document) + "\n")


def restore(
    source: Annotated[Path, typer.Argument(help="A directory written by `cardvault backup`.")],
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="The fresh (empty or missing) data directory to restore into "
            "(default: CARDVAULT_DATA_DIR).",
        ),
    ] = None,
    kek: Annotated[
        Path | None,
        typer.Option(
            "--kek",
            help="The backup's key-encryption key file, copied into place (default: the "
            "key already at CARDVAULT_KEK_FILE or {data_dir}/kek.key).",
        ),
    ] = None,
) -> None:
    """Restore a backup into a fresh data directory (SQLite), never over a database.

    Checks the manifest's checksum, that the schema is not newer than this cardvault's
    (an older one is migrated forward), and that the key-encryption key decrypts every
    key of the installation, before the database is put in place.
    """
    from cardvault.backup import BackupError, BackupUnsupported, restore_backup
    from cardvault.store.files import private_files

    if data_dir is not None:
        os.environ["CARDVAULT_DATA_DIR"] = str(data_dir)
        get_settings.cache_clear()
    settings = get_settings()
    private_files()
    try:
        result = restore_backup(
            source,
            database_url=settings.database_url,
            data_dir=settings.data_dir,
            kek_path=settings.kek_path,
            kek_from=kek,
        )
    except BackupUnsupported:
        raise _fail(POSTGRESQL_RESTORE, 2) from None
    except BackupError as exc:
        raise _fail(str(exc)) from None
    issuer = result.issuer
    if issuer is not None:
        err.print(
            escape(f"start every node with CARDVAULT_URL={issuer.url} (the issuer it recorded)"),
            highlight=False,
        )
    document = {
        "database": str(result.database),
        "kek": str(result.kek_path),
        "backup_schema_revision": result.manifest.schema_revision,
        "schema_revision": result.schema_revision,
        "backup_created_at": result.manifest.created_at.isoformat(),
        "issuer": issuer.value if issuer is not None else None,
    }
    sys.stdout.write(json.dumps(document) + "\n")


def register(app: typer.Typer) -> None:
    app.command("backup")(backup)
    app.command("restore")(restore)

"""``cardvault`` commands that act on the local installation: serve, init, db, keys."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import IntegrityError

from cardvault.cli.backups import register as register_backups
from cardvault.cli.bulk import app as bulk_app
from cardvault.cli.login import register as register_login
from cardvault.cli.remote import register
from cardvault.cli.simulate import app as simulate_app
from cardvault.settings import Settings, get_settings

app = typer.Typer(
    name="cardvault",
    help="Self-hosted card vault and network-tokenization service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
keys_app = typer.Typer(help="Signing keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
register(app)
register_login(app)
register_backups(app)
app.add_typer(simulate_app, name="simulate")
app.add_typer(bulk_app, name="bulk")

err = Console(stderr=True, soft_wrap=True)


def _init(settings: Settings, *, hold_issuer: bool = False) -> tuple[dict[str, object], bool]:
    """Prepare the installation (migrations, the key-encryption key's check, keys) and
    create its first objects once; with ``hold_issuer`` (a node about to serve), record
    or check the installation's issuer."""
    from cardvault.accounts.bootstrap import initialize
    from cardvault.crypto import LocalFileKeyProvider, SecretHasher
    from cardvault.keys import load_pepper
    from cardvault.oauth import issuer
    from cardvault.runtime import prepare

    db = prepare(settings)
    try:
        if hold_issuer:
            issuer.hold_issuer(db, issuer.Issuer(settings.url, settings.realm))
        kek = LocalFileKeyProvider(settings.kek_path, create=False)
        for _attempt in range(2):
            try:
                with db.transaction() as session:
                    hasher = SecretHasher(load_pepper(session, kek))
                    result = initialize(session, hasher)
                return result.as_json(), result.created
            except IntegrityError:
                continue  # another process initialized at the same moment: read its result
        raise RuntimeError("initialization raced repeatedly")
    finally:
        db.dispose()


def _print_init(result: dict[str, object], created: bool) -> None:
    admin = result["admin"]
    creds = result["cli_credentials"]
    assert isinstance(admin, dict) and isinstance(creds, dict)
    err.print(f"organization  {result['organization_id']}")
    err.print(f"vault         {result['vault_id']}")
    err.print(f"admin         {admin['email']}")
    if created:
        err.print(f"password      {admin['password']}")
        err.print(f"CLI client    CARDVAULT_CLIENT_ID={creds['client_id']}")
        err.print(f"              CARDVAULT_CLIENT_SECRET={creds['client_secret']}")
        err.print("[yellow]The password and the secret are shown once; store them now.[/]")
    else:
        err.print(f"CLI client    {creds['client_id']} (secret shown only at first init)")


@app.command()
def init(
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Create the first organization, vault, admin and CLI credentials (once)."""
    from cardvault.store.files import private_files

    private_files()
    result, created = _init(get_settings())
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        _print_init(result, created)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind.")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
) -> None:
    """Apply migrations, initialize an empty installation, and serve HTTP."""
    from granian import Granian
    from granian.constants import Interfaces, Loops

    from cardvault.observability import run_directory, use_directory
    from cardvault.store.files import private_files
    from cardvault.web.logging import log_dictconfig

    private_files()  # before anything is written: the workers inherit it
    for name, value in (("HOST", host), ("PORT", port), ("WORKERS", workers)):
        if value is not None:
            os.environ[f"CARDVAULT_{name}"] = str(value)
    get_settings.cache_clear()
    settings = get_settings()
    # The workers' metrics meet in a directory of this run (the workers inherit the
    # choice when they are forked, and a respawned worker too).
    metrics_dir = run_directory(settings.data_dir, os.getpid())
    use_directory(metrics_dir)
    result, created = _init(settings, hold_issuer=True)
    if created:
        _print_init(result, created)
    err.print(
        f"cardvault listening on http://{settings.host}:{settings.port} "
        f"({settings.workers} worker(s)), issuer {settings.issuer}"
    )
    err.print(f"dashboard at {settings.url}/dashboard (sign in as the admin printed by init)")
    server = Granian(
        "cardvault.app:create_app",
        factory=True,
        interface=Interfaces.ASGI,
        address=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop=Loops.uvloop,
        websockets=False,
        log_dictconfig=log_dictconfig(settings.log_level),
        log_access=settings.access_log,
        respawn_failed_workers=True,
        workers_kill_timeout=10,
    )
    try:
        server.serve()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION (default: head)."""
    from cardvault.store import upgrade
    from cardvault.store.files import secure_data_dir

    settings = get_settings()
    secure_data_dir(settings.data_dir, settings.database_url)
    upgrade(settings.database_url, revision)


@db_app.command("current")
def db_current() -> None:
    """Show the database's migration revision."""
    from cardvault.store.migrate import current

    current(get_settings().database_url)


@db_app.command("set-issuer")
def db_set_issuer() -> None:
    """Record this configuration's issuer (CARDVAULT_URL, CARDVAULT_REALM) as the
    installation's, when the service's public URL changes; then restart every node
    with the new settings. Tokens issued under the old issuer stop working."""
    from cardvault.oauth.issuer import Issuer, set_issuer
    from cardvault.runtime import prepare

    settings = get_settings()
    db = prepare(settings)
    try:
        configured = Issuer(settings.url, settings.realm)
        previous = set_issuer(db, configured)
    finally:
        db.dispose()
    document = {"issuer": configured.value, "previous": previous.value if previous else None}
    sys.stdout.write(json.dumps(document) + "\n")


@keys_app.command("rotate")
def keys_rotate(
    delay: Annotated[
        int | None,
        typer.Option(
            help="Seconds before the new key signs (default: CARDVAULT_KEY_ROTATION_DELAY)."
        ),
    ] = None,
) -> None:
    """Publish a new signing key now and sign with it after DELAY seconds."""
    from cardvault.crypto import LocalFileKeyProvider
    from cardvault.keys import rotate_signing_key
    from cardvault.runtime import prepare
    from cardvault.store.types import utcnow

    settings = get_settings()
    db = prepare(settings)
    kek = LocalFileKeyProvider(settings.kek_path, create=False)
    wait = settings.key_rotation_delay if delay is None else delay
    with db.transaction() as session:
        key = rotate_signing_key(
            session, kek, alg=settings.signing_alg, delay=dt.timedelta(seconds=wait), now=utcnow()
        )
        kid, activates = key.kid, key.activates_at
    db.dispose()
    sys.stdout.write(json.dumps({"kid": kid, "activates_at": activates.isoformat()}) + "\n")


@keys_app.command("rotate-data-key")
def keys_rotate_data_key(
    vault: Annotated[str, typer.Option("--vault", help="Id of the vault whose key rotates.")],
    rewrap: Annotated[
        bool,
        typer.Option("--rewrap", help="Then re-encrypt the vault's cards under the new key."),
    ] = False,
) -> None:
    """Give VAULT a new data key for new writes; older keys still decrypt."""
    from cardvault.crypto import LocalFileKeyProvider
    from cardvault.keys import UnknownVault, rewrap_cards, rotate_data_key
    from cardvault.runtime import prepare

    settings = get_settings()
    db = prepare(settings)
    try:
        kek = LocalFileKeyProvider(settings.kek_path, create=False)
        with db.transaction() as session:
            version = rotate_data_key(session, kek, vault)
        result: dict[str, object] = {"vault_id": vault, "version": version}
        if rewrap:
            result["rewrapped"] = rewrap_cards(db, kek, vault)
    except UnknownVault as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    finally:
        db.dispose()
    sys.stdout.write(json.dumps(result) + "\n")


def _refusals() -> tuple[type[Exception], ...]:
    """What stops a command before it does anything, said in one line: a
    key-encryption key that is not the installation's, a node whose issuer is not."""
    from cardvault.crypto import KeyUnavailableError
    from cardvault.keys import KeyMismatch, KeyMissing
    from cardvault.oauth.issuer import IssuerMismatch

    return (KeyMismatch, KeyMissing, KeyUnavailableError, IssuerMismatch)


def main() -> None:
    from pydantic import ValidationError

    try:
        app()
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"]) or "settings"
            err.print(f"[red]configuration error[/]: CARDVAULT_{where.upper()}: {error['msg']}")
        raise SystemExit(2) from None
    except _refusals() as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        raise SystemExit(1) from None

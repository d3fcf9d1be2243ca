"""Commands that talk to a running server through :mod:`cardvault.client`."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from cardvault.cli import manifest, templates
from cardvault.cli.login import stored_token
from cardvault.cli.output import Format, show
from cardvault.client import DEFAULT_URL, CardvaultError, Client

err = Console(stderr=True, soft_wrap=True)

generate_app = typer.Typer(help="Render templates.", no_args_is_help=True)
apply_app = typer.Typer(help="Create resources from YAML.", no_args_is_help=True)
delete_app = typer.Typer(help="Delete resources.", no_args_is_help=True)
get_app = typer.Typer(help="List resources.", no_args_is_help=True)
rotate_app = typer.Typer(help="Rotate secrets.", no_args_is_help=True)
remove_app = typer.Typer(help="Remove members.", no_args_is_help=True)
create_app = typer.Typer(help="Create resources.", no_args_is_help=True)

Url = Annotated[str, typer.Option("--url", envvar="CARDVAULT_URL", help="Server base URL.")]
Org = Annotated[
    str | None,
    typer.Option("-O", "--org", help="Organization id (default: the credentials' own)."),
]
Output = Annotated[Format, typer.Option("-o", "--output", help="table, yaml or json.")]

ACCOUNT_COLUMNS = (
    "client_id",
    "name",
    "scopes",
    "vault_ids",
    "access_token_lifespan",
    "created_at",
    "last_used_at",
)
MEMBER_COLUMNS = ("name", "kind", "access", "created_at", "last_active_at")
VAULT_COLUMNS = ("id", "name", "created_at")


def fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/] {message}", highlight=False)
    return typer.Exit(1)


@contextmanager
def session(url: str) -> Iterator[Client]:
    """A client authenticated as CARDVAULT_CLIENT_ID, or else with the token stored by
    ``cardvault login``; server errors become one line."""
    client_id = os.environ.get("CARDVAULT_CLIENT_ID")
    client_secret = os.environ.get("CARDVAULT_CLIENT_SECRET")
    token = None if client_id and client_secret else stored_token(url or DEFAULT_URL)
    client = Client(
        url or DEFAULT_URL,
        client_id,
        client_secret,
        realm=os.environ.get("CARDVAULT_REALM", "cardvault"),
        access_token=token,
    )
    try:
        yield client
    except CardvaultError as error:
        raise fail(str(error)) from None
    finally:
        client.close()


def org_of(client: Client, org: str | None) -> str:
    return org or str(client.get("/whoami")["org_id"])


@generate_app.command("service-account")
def generate_service_account(
    template: Annotated[str, typer.Option("-t", "--template", help="Template name.")],
    var: Annotated[list[str] | None, typer.Option("--var", help="NAME=VALUE")] = None,
) -> None:
    """Print a ServiceAccount document from a template."""
    try:
        sys.stdout.write(
            templates.render("service-account", template, templates.parse_vars(var or []))
        )
    except templates.TemplateError as error:
        raise fail(str(error)) from None


def _read(file: str) -> str:
    if file == "-":
        return sys.stdin.read()
    try:
        return Path(file).read_text()
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror}") from None


@apply_app.command("service-account")
def apply_service_account(
    file: Annotated[str, typer.Option("-f", "--file", help="YAML file, or - for stdin.")],
    org: Org = None,
    url: Url = DEFAULT_URL,
) -> None:
    """Create credentials from a ServiceAccount document; prints them once."""
    try:
        document = manifest.load(_read(file))
        body = manifest.request_body(document)
    except manifest.ManifestError as error:
        raise fail(str(error)) from None
    with session(url) as client:
        created = client.post(f"/organizations/{org_of(client, org)}/service-accounts", body)
    sys.stdout.write(
        manifest.dump(
            manifest.with_credentials(document, created["client_id"], created["client_secret"])
        )
    )


@delete_app.command("service-account")
def delete_service_account(client_id: str, org: Org = None, url: Url = DEFAULT_URL) -> None:
    """Delete a service account: its tokens stop working at once."""
    with session(url) as client:
        client.delete(f"/organizations/{org_of(client, org)}/service-accounts/{client_id}")
    err.print(f"service account {client_id} deleted")


@get_app.command("service-accounts")
def get_service_accounts(
    org: Org = None, url: Url = DEFAULT_URL, output: Output = Format.table
) -> None:
    """List service accounts (never their secrets)."""
    with session(url) as client:
        path = f"/organizations/{org_of(client, org)}/service-accounts"
        accounts = _all_pages(client, path)
    show(accounts, ACCOUNT_COLUMNS, output)


def _all_pages(client: Client, path: str) -> list[Any]:
    items: list[Any] = []
    cursor = None
    while True:
        page = client.get(path, limit=100, **({"cursor": cursor} if cursor else {}))
        items.extend(page["data"])
        cursor = page.get("next_cursor")
        if not cursor:
            return items


DURATION = re.compile(r"^(\d+)([smhd]?)$")
UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    match = DURATION.fullmatch(text.strip())
    if not match:
        raise fail(f"--grace takes a duration such as 90s, 30m, 24h or 7d, got {text!r}")
    return int(match.group(1)) * UNITS[match.group(2)]


@rotate_app.command("service-account")
def rotate_service_account(
    client_id: str,
    org: Org = None,
    grace: Annotated[str, typer.Option(help="How long the old secret keeps working.")] = "24h",
    url: Url = DEFAULT_URL,
    output: Output = Format.yaml,
) -> None:
    """Issue a new secret; the old one keeps working for the grace period."""
    seconds = parse_duration(grace)
    with session(url) as client:
        rotated = client.post(
            f"/organizations/{org_of(client, org)}/service-accounts/{client_id}/rotate-secret",
            {"grace_period": seconds},
        )
    show(
        {
            "clientId": rotated["client_id"],
            "clientSecret": rotated["client_secret"],
            "previousSecretExpiresAt": rotated["previous_secret_expires_at"],
        },
        ("clientId", "clientSecret", "previousSecretExpiresAt"),
        output,
    )


@get_app.command("members")
def get_members(org: Org = None, url: Url = DEFAULT_URL, output: Output = Format.table) -> None:
    """List people and service accounts of the organization."""
    with session(url) as client:
        members = client.get(f"/organizations/{org_of(client, org)}/members")["data"]
    show(members, MEMBER_COLUMNS, output)


@remove_app.command("member")
def remove_member(member: str, org: Org = None, url: Url = DEFAULT_URL) -> None:
    """Remove a member; for <client_id>@<domain> this revokes the service account."""
    with session(url) as client:
        client.delete(f"/organizations/{org_of(client, org)}/members/{member}")
    err.print(f"member {member} removed")


@create_app.command("vault")
def create_vault(
    name: str, org: Org = None, url: Url = DEFAULT_URL, output: Output = Format.table
) -> None:
    """Create a vault."""
    with session(url) as client:
        vault = client.post(f"/organizations/{org_of(client, org)}/vaults", {"name": name})
    show(vault, VAULT_COLUMNS, output)


@get_app.command("vaults")
def get_vaults(org: Org = None, url: Url = DEFAULT_URL, output: Output = Format.table) -> None:
    """List vaults."""
    with session(url) as client:
        vaults = client.get(f"/organizations/{org_of(client, org)}/vaults")["data"]
    show(vaults, VAULT_COLUMNS, output)


def register(app: typer.Typer) -> None:
    for name, sub in (
        ("generate", generate_app),
        ("apply", apply_app),
        ("delete", delete_app),
        ("get", get_app),
        ("rotate", rotate_app),
        ("remove", remove_app),
        ("create", create_app),
    ):
        app.add_typer(sub, name=name)

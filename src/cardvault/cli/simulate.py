"""``cardvault simulate``: act as the issuer on the built-in network simulators.

Operator commands on the local installation (they open the database directly). The
platform applies each event to its own records, as it would for a real network's
lifecycle notification.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy.orm import Session

from cardvault.audit import AuditRecord, write_audit
from cardvault.crypto import LocalFileKeyProvider
from cardvault.crypto.envelope import Fingerprinter, VaultCipher
from cardvault.crypto.pan import InvalidPan, Pan
from cardvault.keys.vault_keys import VaultKeys
from cardvault.network_tokens import services as tokens
from cardvault.network_tokens.errors import TokenNotFound
from cardvault.networks.provider import ProviderError, TokenStatus
from cardvault.networks.simulator import NetworkSimulator
from cardvault.runtime import prepare
from cardvault.settings import get_settings
from cardvault.store.records import CardRecord, NetworkTokenRecord

app = typer.Typer(help="Act as the card issuer on the network simulators.", no_args_is_help=True)
err = Console(stderr=True, soft_wrap=True)

Alias = Annotated[str, typer.Argument(help="The card's pan_alias.")]
Month = Annotated[int, typer.Option("--exp-month", help="New expiry month.")]
Year = Annotated[int, typer.Option("--exp-year", help="New expiry year (four digits).")]


@dataclass(frozen=True)
class _Keys:
    cipher: VaultCipher
    fingerprinter: Fingerprinter


@contextmanager
def _issuer(pan_alias: str) -> Iterator[tuple[Session, NetworkTokenRecord, CardRecord, _Keys]]:
    settings = get_settings()
    db = prepare(settings)
    vault_keys = VaultKeys(db, LocalFileKeyProvider(settings.kek_path, create=False))
    try:
        with db.sessions() as session:  # keys first: loading one may write
            _token, found = tokens.token_by_alias(session, pan_alias)
            keys = _Keys(vault_keys.cipher(found.vault_id), vault_keys.fingerprinter(found.org_id))
        with db.transaction() as session:
            token, card = tokens.token_by_alias(session, pan_alias)
            yield session, token, card, keys
    except (TokenNotFound, ProviderError) as error:
        err.print(f"[red]error:[/] {error}", highlight=False)
        raise typer.Exit(1) from None
    finally:
        db.dispose()


def _event(
    pan_alias: str,
    event: str,
    step: Callable[[NetworkSimulator, Session, str], TokenStatus],
    new_pan: Pan | None = None,
) -> None:
    with _issuer(pan_alias) as (session, token, card, keys):
        status = step(NetworkSimulator(token.network), session, token.provider_id)
        fingerprint = keys.fingerprinter.digest(new_pan) if new_pan else None
        token, card = tokens.apply_issuer_update(
            session,
            token,
            card,
            status,
            keys.cipher,
            new_pan=new_pan,
            fingerprint=fingerprint,
        )
        write_audit(
            session,
            AuditRecord(
                actor_type="system",
                actor_id="issuer simulator",
                action=f"network_token.{event}",
                outcome="success",
                org_id=card.org_id,
                vault_id=card.vault_id,
                target_type="network_token",
                target_id=token.id,
            ),
        )
        sys.stdout.write(
            json.dumps(
                {
                    "pan_alias": token.pan_alias,
                    "event": event,
                    "state": token.state,
                    "card_last4": card.last4,
                    "card_expires_at": f"{card.exp_year:04d}-{card.exp_month:02d}",
                    "network_token_last4": token.token_last4,
                }
            )
            + "\n"
        )


@app.command("pan-update")
def pan_update(
    pan_alias: Alias,
    pan: Annotated[str, typer.Option("--pan", help="The replacement card number.")],
    exp_month: Month,
    exp_year: Year,
) -> None:
    """The issuer replaced the card (new PAN and expiry); the token stays."""
    try:
        new_pan = Pan(pan)
    except InvalidPan as invalid:
        err.print(f"[red]error:[/] --pan: {invalid.reason}")
        raise typer.Exit(1) from None
    _event(
        pan_alias,
        "pan_update",
        lambda sim, s, pid: sim.issuer_pan_update(s, pid, new_pan, exp_month, exp_year),
        new_pan,
    )


@app.command("expiry-update")
def expiry_update(pan_alias: Alias, exp_month: Month, exp_year: Year) -> None:
    """The issuer extended the card's expiry."""
    _event(
        pan_alias,
        "expiry_update",
        lambda sim, s, pid: sim.issuer_expiry_update(s, pid, exp_month, exp_year),
    )


@app.command("suspend")
def suspend(pan_alias: Alias) -> None:
    """The issuer suspended the token."""
    _event(pan_alias, "issuer_suspend", lambda sim, s, pid: sim.issuer_suspend(s, pid))


@app.command("resume")
def resume(pan_alias: Alias) -> None:
    """The issuer resumed the token."""
    _event(pan_alias, "issuer_resume", lambda sim, s, pid: sim.issuer_resume(s, pid))


@app.command("delete")
def delete(pan_alias: Alias) -> None:
    """The issuer deleted the token (final)."""
    _event(pan_alias, "issuer_delete", lambda sim, s, pid: sim.issuer_delete(s, pid))


@app.command("verify-cryptogram")
def verify_cryptogram(
    pan_alias: Alias,
    cryptogram: Annotated[str, typer.Option("--cryptogram", help="The value to check.")],
    amount: Annotated[str | None, typer.Option(help="Amount it was issued for.")] = None,
    currency: Annotated[str | None, typer.Option(help="Currency code it was issued for.")] = None,
) -> None:
    """Check a cryptogram as the network would at authorization: valid exactly once."""
    with _issuer(pan_alias) as (session, token, _card, _keys):
        valid = NetworkSimulator(token.network).verify_cryptogram(
            session, token.provider_id, cryptogram, amount=amount, currency_code=currency
        )
    sys.stdout.write(json.dumps({"pan_alias": pan_alias, "valid": valid}) + "\n")
    if not valid:
        raise typer.Exit(1)

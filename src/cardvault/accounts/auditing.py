"""Audit records of the accounts services (PCI DSS 10.2).

The service that performs a change writes its record in the change's transaction
(:func:`record`), so the change and its record commit together. A refused change
rolls its transaction back, so its record cannot be written there: the service
attaches it to the :class:`AccountsError` it raises (``error.refusal``, see
:func:`refusals`) and the front end that catches the error hands it to the audit
buffer. Either way the front ends name no action and build no record.

``actor`` is ``None`` only for operator set-up that records itself (``cardvault
init``) and for test fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.orm import Session

from cardvault.accounts.errors import AccountsError, NotFound
from cardvault.audit import Actor, AuditRecord, write_audit
from cardvault.crypto import mask_pans

MAX_TEXT = 128  # audit columns for reasons and targets


def record(
    session: Session,
    actor: Actor | None,
    action: str,
    *,
    target_type: str,
    target_id: str | None,
    vault_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Write the record of a change ``actor`` made, inside the change's transaction."""
    if actor is not None:
        write_audit(
            session,
            actor.record(
                action,
                target_type=target_type,
                target_id=target_id,
                vault_id=vault_id,
                details=details,
            ),
        )


def refusal(
    actor: Actor, action: str, error: AccountsError, *, target_type: str, target_id: str | None
) -> AuditRecord:
    """The record of a change the domain refused: the error's code and message as the
    reason, its ``source`` as details; card numbers masked in what the caller typed."""
    return actor.record(
        action,
        target_type=target_type,
        target_id=None if target_id is None else mask_pans(target_id)[:MAX_TEXT],
        outcome="failure",
        reason=mask_pans(f"{error.code}: {error}")[:MAX_TEXT],
        details=error.source,
    )


@contextmanager
def refusals(
    actor: Actor | None, action: str, *, target_type: str, target_id: str | None
) -> Iterator[None]:
    """Attach the refusal's record to any :class:`AccountsError` raised inside, but a
    :class:`NotFound`: what does not exist for the caller (another organization's
    account or member) is not the caller's to have in its audit log."""
    try:
        yield
    except AccountsError as error:
        if actor is not None and not isinstance(error, NotFound):
            error.refusal = refusal(
                actor, action, error, target_type=target_type, target_id=target_id
            )
        raise


__all__ = ["record", "refusal", "refusals"]

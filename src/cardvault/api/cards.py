"""``/cards``: enrol, read, list, update and delete cards of the caller's vault."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from cardvault.api.idempotency import IdempotentRequest, Replay
from cardvault.api.vault import VaultCaller, vault_caller
from cardvault.audit import AuditRecord, bind_audit, write_audit
from cardvault.cards import services as cards
from cardvault.crypto.pan import InvalidPan, Pan
from cardvault.network_tokens import services as network_tokens
from cardvault.networks.simulator import provider_for
from cardvault.store.db import Database
from cardvault.store.direct import Bound
from cardvault.store.paging import CursorCodec
from cardvault.web.errors import Unprocessable

router = APIRouter(prefix="/cards", tags=["cards"])

Writer = Annotated[VaultCaller, Depends(vault_caller("cards:write"))]
Reader = Annotated[VaultCaller, Depends(vault_caller("cards:read"))]
Text = Annotated[str | None, Field(default=None, max_length=255)]
# Wide bounds at the edge; the domain says precisely what it accepts (month 1-12...).
Month = Annotated[int, Field(ge=0, le=99)]
Year = Annotated[int, Field(ge=0, le=9999)]


class BillingAddress(BaseModel):
    name: Text = None
    company: Text = None
    address1: Text = None
    address2: Text = None
    city: Text = None
    region: Text = None
    country: Text = None
    postal_code: Annotated[str | None, Field(default=None, max_length=32)] = None
    phone: Annotated[str | None, Field(default=None, max_length=32)] = None


class HolderInfo(BaseModel):
    name: Text = None
    email: Text = None
    number: Annotated[str | None, Field(default=None, max_length=32)] = None
    billing_address: BillingAddress | None = None


class CardIn(BaseModel):
    pan: Annotated[str, Field(min_length=1, max_length=32)]
    exp_month: Month
    exp_year: Year
    cvc: Annotated[str | None, Field(default=None, pattern=r"^\d{3,4}$")] = None
    holder_info: HolderInfo | None = None

    def __repr__(self) -> str:  # never show the PAN or CVC, even in a debugger
        return "CardIn(pan='****', cvc='***')"


class CardPatch(BaseModel):
    exp_month: Month | None = None
    exp_year: Year | None = None
    holder_info: HolderInfo | None = None


class CardOut(BaseModel):
    id: str
    pan_alias: str
    bin: str
    last4: str
    brand: str
    exp_month: int
    exp_year: int
    expires_at: str
    holder_info: dict[str, Any] | None
    fingerprint: str
    created_at: dt.datetime
    updated_at: dt.datetime


class CardPage(BaseModel):
    data: list[CardOut]
    next_cursor: str | None


def card_out(card: Any) -> CardOut:
    """The API form of a card (an ORM object or a row with the same columns)."""
    return CardOut(
        id=card.id,
        pan_alias=card.pan_alias,
        bin=card.bin,
        last4=card.last4,
        brand=card.brand,
        exp_month=card.exp_month,
        exp_year=card.exp_year,
        expires_at=f"{card.exp_year:04d}-{card.exp_month:02d}",
        holder_info=card.holder_info,
        fingerprint=card.fingerprint[:16].hex(),
        created_at=card.created_at,
        updated_at=card.updated_at,
    )


def _audit(caller: VaultCaller, action: str, target_id: str | None, **details: Any) -> AuditRecord:
    return caller.record(action, "card", target_id, **details)


def _pan(value: str) -> Pan:
    try:
        return Pan(value)
    except InvalidPan as invalid:
        raise Unprocessable(f"pan: {invalid.reason}") from None


def _json(model: BaseModel) -> bytes:
    return model.model_dump_json().encode()


@router.post(
    "",
    response_model=CardOut,
    status_code=201,
    responses={200: {"model": CardOut, "description": "The PAN was already in the vault"}},
)
async def enroll_card(
    body: CardIn,
    caller: Writer,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> Response:
    """Enrol a card; a PAN already in the vault answers 200 with the existing card."""
    status, payload = await enroll(caller, body, idempotency_key)
    return Response(payload, status, media_type="application/json")


async def enroll(
    caller: VaultCaller, body: CardIn, idempotency_key: str | None
) -> tuple[int, bytes]:
    """Enrolment behind ``POST /cards`` (and its fast path): the status and JSON body."""
    runtime = caller.runtime
    pan, expiry = valid_card(body)
    holder = body.holder_info.model_dump(exclude_none=True) if body.holder_info else None
    idem = IdempotentRequest.of(
        runtime.hasher, caller.vault_id, idempotency_key, "POST /cards", body.model_dump_json()
    )
    for attempt in (1, 2):  # a concurrent twin (same PAN or key) wins once; then we read it
        # Read first: replays and known PANs need no write lock.
        replay = await runtime.run_db(replay_of, runtime.db, idem)
        if replay is not None:
            return replay.status, replay.body
        enrolment = await runtime.run_db(prepare_enrolment, caller, pan, expiry, holder)
        try:
            return await runtime.writes.write(partial(_store, idem, enrolment))
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def valid_card(body: CardIn) -> tuple[Pan, cards.Expiry]:
    """The PAN and the normalised expiry of a card to enrol, or a 422."""
    return _pan(body.pan), cards.normalize_expiry(body.exp_month, body.exp_year, dt.date.today())


def replay_of(db: Database, idem: IdempotentRequest | None) -> Replay | None:
    """The stored answer to this idempotent request, if it was made before."""
    if idem is None:
        return None
    with db.engine.connect() as conn:
        return idem.replay(conn)


@dataclass(frozen=True)
class Enrolment:
    """An enrolment made ready without writing: the vault's card of the PAN, or a new
    one (its PAN encrypted, its row bound), the expiry the write will give it, and
    the audit record of the enrolment, bound too."""

    card: cards.CardRecord
    pan: Pan
    expiry: cards.Expiry
    created: bool
    row: Bound | None  # the new card's INSERT
    audit: Bound


def prepare_enrolment(
    caller: VaultCaller, pan: Pan, expiry: cards.Expiry, holder: dict[str, Any] | None
) -> Enrolment:
    vault_keys = caller.runtime.vault_keys
    db = caller.runtime.db
    fingerprint = vault_keys.fingerprinter(caller.org_id).digest(pan)
    existing = cards.find_by_pan(db, caller.vault_id, fingerprint)
    if existing is not None:
        audit = bind_audit(db, _audit(caller, "card.match", existing.id))
        return Enrolment(existing, pan, expiry, created=False, row=None, audit=audit)
    card = cards.new_card(
        vault_id=caller.vault_id,
        org_id=caller.org_id,
        pan=pan,
        expiry=expiry,
        holder_info=holder,
        cipher=vault_keys.cipher(caller.vault_id),
        fingerprint=fingerprint,
    )
    audit = bind_audit(db, _audit(caller, "card.create", card.id))
    return Enrolment(card, pan, expiry, True, cards.bind_card(db, card), audit)


def store_enrolment(enrolment: Enrolment, conn: Connection) -> int:
    """Write an enrolment in the caller's transaction; its status (201 or 200)."""
    if enrolment.row is not None:
        cards.insert_card(conn, enrolment.row)
    else:
        cards.extend_expiry(conn, enrolment.card, enrolment.expiry)
    write_audit(conn, enrolment.audit)
    return 201 if enrolment.created else 200


def _store(
    idem: IdempotentRequest | None, enrolment: Enrolment, conn: Connection
) -> tuple[int, bytes]:
    """The write of one enrolment (one savepoint of a shared transaction)."""
    status = store_enrolment(enrolment, conn)
    payload = _json(card_out(enrolment.card))
    if idem:
        idem.remember(conn, status, payload)
    return status, payload


@router.get("", response_model=CardPage)
def list_cards(
    caller: Reader,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> CardPage:
    codec, listing = CursorCodec.derived(caller.runtime.hasher.hash), f"cards:{caller.vault_id}"
    after = codec.decode(cursor, listing) if cursor else None  # else 400 invalid-cursor
    with caller.runtime.db.sessions() as session:
        page, following = cards.list_cards(session, caller.vault_id, limit=limit, cursor=after)
        result = CardPage(
            data=[card_out(c) for c in page],
            next_cursor=codec.encode(following, listing) if following else None,
        )
    caller.runtime.audit.add(_audit(caller, "card.list", None, count=len(result.data)))
    return result


@router.get("/{card_id}", response_model=CardOut)
async def get_card(card_id: str, caller: Reader) -> Response:
    """A card by id or pan_alias."""
    return Response(await read_card_json(caller, card_id), media_type="application/json")


async def read_card_json(caller: VaultCaller, key: str) -> bytes:
    """``GET /cards/{key}`` (and its fast path): the card's JSON; audited."""

    runtime = caller.runtime
    card = card_out(await runtime.run_db(cards.read_card, runtime.db, caller.vault_id, key))
    caller.runtime.audit.add(_audit(caller, "card.read", card.id))
    return _json(card)


@router.patch("/{card_id}", response_model=CardOut)
def update_card(card_id: str, body: CardPatch, caller: Writer) -> CardOut:
    """Change the expiry (both fields together) or the holder details."""
    if (body.exp_month is None) != (body.exp_year is None):
        raise Unprocessable("exp_month and exp_year: give both or neither")
    expiry = None
    if body.exp_month is not None and body.exp_year is not None:
        expiry = cards.normalize_expiry(body.exp_month, body.exp_year, dt.date.today())
    holder = body.holder_info.model_dump(exclude_none=True) if body.holder_info else None
    with caller.runtime.db.transaction() as session:
        card = cards.update_card(
            session, caller.vault_id, card_id, expiry=expiry, holder_info=holder
        )
        out = card_out(card)
        write_audit(session, _audit(caller, "card.update", card.id))
    return out


@router.delete("/{card_id}", status_code=204)
def delete_card(card_id: str, caller: Writer) -> Response:
    """Delete the card; its network tokens are deleted at the network first."""
    cipher = caller.runtime.vault_keys.cipher(caller.vault_id)
    with caller.runtime.db.transaction() as session:
        card = cards.get_card(session, caller.vault_id, card_id)
        removed = network_tokens.delete_all_of_card(session, provider_for, card, cipher)
        cards.delete_card(session, caller.vault_id, card.id)
        write_audit(session, _audit(caller, "card.delete", card.id, network_tokens=removed))
    return Response(status_code=204)

"""``/cards``: enrol, read, list, update and delete cards of the caller's vault."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, Field

from cardvault.audit import write_audit
from cardvault.cards import services as cards
from cardvault.cards.documents import CardOut, CardPage, card_json, card_out
from cardvault.cards.enrolment import enroll, valid_card
from cardvault.network_tokens import services as network_tokens
from cardvault.problems import Unprocessable
from cardvault.store.idempotency import IdempotentRequest
from cardvault.store.paging import CursorCodec
from cardvault.web.auth import VaultCaller
from cardvault.web.http import Call, Route
from cardvault.web.reply import Reply

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


class Listing(BaseModel):
    limit: Annotated[int, Field(ge=1, le=100)] = 50
    cursor: Annotated[
        str | None, Field(default=None, description="next_cursor of the previous page")
    ] = None


def idempotent(call: Call) -> IdempotentRequest | None:
    """The call's ``Idempotency-Key`` bound to its vault, route and body."""
    body = call.body.model_dump_json() if isinstance(call.body, BaseModel) else ""
    return IdempotentRequest.of(
        call.runtime.hasher,
        call.caller.vault_id,
        call.idempotency_key,
        f"{call.method} {call.path}",
        body,
    )


async def enroll_card(call: Call) -> Reply:
    """Enrol a card; a PAN already in the vault answers 200 with the existing card."""
    body: CardIn = call.body
    pan, expiry = valid_card(body.pan, body.exp_month, body.exp_year)
    holder = body.holder_info.model_dump(exclude_none=True) if body.holder_info else None
    status, payload = await enroll(call.caller, pan, expiry, holder, idempotent(call))
    return Reply.raw_json(payload, status)


def list_cards(call: Call) -> CardPage:
    """The vault's cards, newest first, a page at a time."""
    caller: VaultCaller = call.caller
    query: Listing = call.query
    codec, listing = CursorCodec.derived(call.runtime.hasher.hash), f"cards:{caller.vault_id}"
    after = codec.decode(query.cursor, listing) if query.cursor else None
    with call.runtime.db.sessions() as session:
        page, following = cards.list_cards(
            session, caller.vault_id, limit=query.limit, cursor=after
        )
        result = CardPage(
            data=[card_out(c) for c in page],
            next_cursor=codec.encode(following, listing) if following else None,
        )
    call.runtime.audit.add(caller.record("card.list", "card", None, count=len(result.data)))
    return result


async def get_card(call: Call) -> Reply:
    """A card by id or pan_alias."""
    caller: VaultCaller = call.caller
    runtime = call.runtime
    card = await runtime.run_db(
        cards.read_card, runtime.db, caller.vault_id, call.params["card_id"]
    )
    runtime.audit.add(caller.record("card.read", "card", card.id))
    return Reply.raw_json(card_json(card))


def update_card(call: Call) -> CardOut:
    """Change the expiry (both fields together) or the holder details."""
    caller: VaultCaller = call.caller
    body: CardPatch = call.body
    if (body.exp_month is None) != (body.exp_year is None):
        raise Unprocessable("exp_month and exp_year: give both or neither")
    expiry = None
    if body.exp_month is not None and body.exp_year is not None:
        expiry = cards.normalize_expiry(body.exp_month, body.exp_year, dt.date.today())
    holder = body.holder_info.model_dump(exclude_none=True) if body.holder_info else None
    with call.runtime.db.transaction() as session:
        card = cards.update_card(
            session, caller.vault_id, call.params["card_id"], expiry=expiry, holder_info=holder
        )
        out = card_out(card)
        write_audit(session, caller.record("card.update", "card", card.id))
    return out


def delete_card(call: Call) -> None:
    """Delete the card; its network tokens are deleted at the network first."""
    caller: VaultCaller = call.caller
    runtime = call.runtime
    cipher = runtime.vault_keys.cipher(caller.vault_id)
    with runtime.db.transaction() as session:
        card = cards.get_card(session, caller.vault_id, call.params["card_id"])
        removed = network_tokens.delete_all_of_card(session, runtime.providers, card, cipher)
        cards.delete_card(session, caller.vault_id, card.id)
        write_audit(session, caller.record("card.delete", "card", card.id, network_tokens=removed))


TAGS = ("cards",)
ROUTES = [
    Route(
        "POST",
        "/cards",
        enroll_card,
        scope="cards:write",
        body=CardIn,
        status=201,
        response=CardOut,
        responses={200: "The PAN was already in the vault"},
        idempotent=True,
        pan_fields=frozenset({"/pan"}),
        tags=TAGS,
    ),
    Route(
        "GET", "/cards", list_cards, scope="cards:read", query=Listing, response=CardPage, tags=TAGS
    ),
    Route("GET", "/cards/{card_id}", get_card, scope="cards:read", response=CardOut, tags=TAGS),
    Route(
        "PATCH",
        "/cards/{card_id}",
        update_card,
        scope="cards:write",
        body=CardPatch,
        response=CardOut,
        tags=TAGS,
    ),
    Route("DELETE", "/cards/{card_id}", delete_card, scope="cards:write", status=204, tags=TAGS),
]

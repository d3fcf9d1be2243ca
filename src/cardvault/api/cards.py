"""``/cards``: enrol, read, list, update and delete cards of the caller's vault."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from cardvault.cards import management
from cardvault.cards.documents import CardOut, CardPage
from cardvault.cards.enrolment import enroll, valid_card
from cardvault.network_tokens import lifecycle
from cardvault.store.idempotency import IdempotentRequest
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


def _holder(info: HolderInfo | None) -> dict[str, Any] | None:
    return info.model_dump(exclude_none=True) if info else None


async def enroll_card(call: Call) -> Reply:
    """Enrol a card; a PAN already in the vault answers 200 with the existing card."""
    body: CardIn = call.body
    pan, expiry = valid_card(body.pan, body.exp_month, body.exp_year)
    status, payload = await enroll(
        call.caller, pan, expiry, _holder(body.holder_info), idempotent(call)
    )
    return Reply.raw_json(payload, status)


def list_cards(call: Call) -> CardPage:
    """The vault's cards, newest first, a page at a time."""
    query: Listing = call.query
    return management.list_cards(call.caller, limit=query.limit, cursor=query.cursor)


async def get_card(call: Call) -> Reply:
    """A card by id or pan_alias."""
    return Reply.raw_json(await management.read_card(call.caller, call.params["card_id"]))


def update_card(call: Call) -> CardOut:
    """Change the expiry (both fields together) or the holder details."""
    body: CardPatch = call.body
    return management.update_card(
        call.caller,
        call.params["card_id"],
        exp_month=body.exp_month,
        exp_year=body.exp_year,
        holder=_holder(body.holder_info),
    )


def delete_card(call: Call) -> None:
    """Delete the card; its network tokens are deleted at the network first."""
    lifecycle.delete_card(call.caller, call.params["card_id"])


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

"""``/network-tokens``: Network Tokens API v1 (reference field names kept exactly)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from cardvault.api.cards import Month, Year, idempotent
from cardvault.cards.enrolment import valid_card
from cardvault.network_tokens import lifecycle
from cardvault.network_tokens.provisioning import ProvisionRequestIn, provision
from cardvault.problems import Unprocessable
from cardvault.web.auth import VaultCaller, check_scope
from cardvault.web.http import Call, Route
from cardvault.web.reply import Reply

States = Literal["PENDING", "ACTIVE", "SUSPENDED", "DELETED", "FAILED"]
Key = Annotated[
    str | None, Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
]


class NetworkTokenIn(BaseModel):
    pan_alias: Key = None
    card_id: Key = None
    pan: str | None = Field(default=None, max_length=32)
    exp_month: Month | None = None
    exp_year: Year | None = None
    cvc: str | None = Field(default=None, pattern=r"^\d{3,4}$")

    @model_validator(mode="after")
    def _one_card(self) -> NetworkTokenIn:
        if not (self.pan_alias or self.card_id or self.pan):
            raise ValueError("give pan_alias, card_id or pan")
        return self

    def __repr__(self) -> str:
        return f"NetworkTokenIn(pan_alias={self.pan_alias!r}, card_id={self.card_id!r})"


class ReasonIn(BaseModel):
    reason: str = Field(default="", max_length=255)


class CryptogramIn(BaseModel):
    amount: str | None = Field(default=None, pattern=r"^\d{1,12}(\.\d{1,3})?$")
    currency_code: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    transaction_type: Literal["ECOM", "RECURRING", "AFT"] = "ECOM"
    cryptogram_type: Literal["TAVV", "DTVV", "UCAF"] | None = None


class Listing(BaseModel):
    state: States | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 50
    cursor: Annotated[
        str | None, Field(default=None, description="next_cursor of the previous page")
    ] = None


async def provision_token(call: Call) -> Reply:
    """Provision the card's network token; a card with a live token returns it (200)."""
    caller: VaultCaller = call.caller
    body: NetworkTokenIn = call.body
    enrol = None
    if body.pan and not (body.card_id or body.pan_alias):  # enrol first: cards:write too
        check_scope(caller.principal, "cards:write")
        if body.exp_month is None or body.exp_year is None:
            raise Unprocessable("exp_month and exp_year are required with pan")
        enrol = valid_card(body.pan, body.exp_month, body.exp_year)
    request = ProvisionRequestIn(
        card_key=body.card_id or body.pan_alias,
        enrol=enrol,
        exp_month=body.exp_month,
        exp_year=body.exp_year,
        cvc=body.cvc,
    )
    status, payload = await provision(caller, request, idempotent(call))
    return Reply.raw_json(payload, status)


def list_tokens(call: Call) -> dict[str, object]:
    """The vault's network tokens, newest first, a page at a time."""
    query: Listing = call.query
    return lifecycle.list_tokens(
        call.caller, state=query.state, limit=query.limit, cursor=query.cursor
    )


async def get_token(call: Call) -> Reply:
    """A network token by id or pan_alias, with its card's BIN, last four and expiry."""
    return Reply.json(await lifecycle.read_token(call.caller, call.params["pan_alias"]))


def _transition(name: lifecycle.TransitionName, call: Call, reason: str) -> Reply:
    key = call.params["pan_alias"]
    status, payload = lifecycle.transition(call.caller, name, key, reason, idempotent(call))
    return Reply.raw_json(payload, status)


def delete_token(call: Call) -> Reply:
    """Delete the token at the network; it stays listed as DELETED."""
    return _transition("delete", call, "deleted by the token requestor")


def suspend_token(call: Call) -> Reply:
    """Suspend the token: no cryptogram until it is resumed."""
    return _transition("suspend", call, (call.body or ReasonIn()).reason)


def resume_token(call: Call) -> Reply:
    """Resume a suspended token."""
    return _transition("resume", call, (call.body or ReasonIn()).reason)


def get_cryptogram(call: Call) -> dict[str, object]:
    """A fresh single-use cryptogram. Not replayed for an Idempotency-Key: the answer
    holds the token number, which is never stored in clear; a retry gets a new one."""
    body: CryptogramIn = call.body
    return lifecycle.cryptogram(
        call.caller,
        call.params["pan_alias"],
        amount=body.amount,
        currency_code=body.currency_code,
        transaction_type=body.transaction_type,
        cryptogram_type=body.cryptogram_type,
    )


TAGS = ("network tokens",)
READ, WRITE = "network-tokens:read", "network-tokens:write"
ROUTES = [
    Route(
        "POST",
        "/network-tokens",
        provision_token,
        scope=WRITE,
        body=NetworkTokenIn,
        status=201,
        responses={200: "The card's live token"},
        idempotent=True,
        pan_fields=frozenset({"/pan"}),
        tags=TAGS,
    ),
    Route("GET", "/network-tokens", list_tokens, scope=READ, query=Listing, tags=TAGS),
    Route("GET", "/network-tokens/{pan_alias}", get_token, scope=READ, tags=TAGS),
    Route("DELETE", "/network-tokens/{pan_alias}", delete_token, scope=WRITE, tags=TAGS),
    Route(
        "POST",
        "/network-tokens/{pan_alias}/suspend",
        suspend_token,
        scope=WRITE,
        body=ReasonIn,
        body_required=False,
        idempotent=True,
        tags=TAGS,
    ),
    Route(
        "POST",
        "/network-tokens/{pan_alias}/resume",
        resume_token,
        scope=WRITE,
        body=ReasonIn,
        body_required=False,
        idempotent=True,
        tags=TAGS,
    ),
    Route(
        "POST",
        "/network-tokens/{pan_alias}/cryptogram",
        get_cryptogram,
        scope=WRITE,
        body=CryptogramIn,
        tags=TAGS,
    ),
]

"""``/network-tokens``: Network Tokens API v1 (reference field names kept exactly)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import partial
from types import SimpleNamespace
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Header, Query, Response
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from cardvault.api.auth import check_scope
from cardvault.api.cards import (
    CardIn,
    Enrolment,
    Month,
    Year,
    prepare_enrolment,
    replay_of,
    store_enrolment,
    valid_card,
)
from cardvault.api.idempotency import IdempotentRequest, Replay
from cardvault.api.vault import VaultCaller, vault_caller
from cardvault.audit import AuditRecord, bind_audit, write_audit
from cardvault.cards import services as cards
from cardvault.crypto.envelope import VaultCipher
from cardvault.crypto.pan import Pan
from cardvault.network_tokens import services as tokens
from cardvault.network_tokens.bulk import (
    LIVE_TOKEN,
    Provisioning,
    TokenPlan,
    plan_tokens,
    store_tokens,
)
from cardvault.networks.provider import ProviderError
from cardvault.networks.simulator import provider_for
from cardvault.store.direct import Bound
from cardvault.store.models import Card
from cardvault.store.paging import CursorCodec
from cardvault.web.errors import Unprocessable

router = APIRouter(prefix="/network-tokens", tags=["network tokens"])

Writer = Annotated[VaultCaller, Depends(vault_caller("network-tokens:write"))]
Reader = Annotated[VaultCaller, Depends(vault_caller("network-tokens:read"))]
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


def _yyyy_mm(year: int | None, month: int | None) -> str | None:
    return None if year is None or month is None else f"{year:04d}-{month:02d}"


def token_out(token: Any, card: Any) -> dict[str, Any]:
    """The reference's token object from a token and its card (ORM objects or rows)."""
    return {
        "id": token.id,
        "pan_alias": token.pan_alias,
        "network": token.network,
        "network_token_last4": token.token_last4,
        "expires_at": _yyyy_mm(token.token_exp_year, token.token_exp_month),
        "state": token.state,
        "payment_account_reference": token.payment_account_reference,
        "failure_reason": token.failure_reason,
        "created_at": token.created_at.isoformat().replace("+00:00", "Z"),
        "updated_at": token.updated_at.isoformat().replace("+00:00", "Z"),
        "card": None
        if card is None
        else {
            "last4": card.last4,
            "bin": card.bin,
            "expires_at": _yyyy_mm(card.exp_year, card.exp_month),
            "holder_info": card.holder_info,
        },
    }


def _json(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def _audit(caller: VaultCaller, action: str, target_id: str | None, **details: Any) -> AuditRecord:
    return caller.record(action, "network_token", target_id, **details)


def _card_to_enrol(caller: VaultCaller, body: NetworkTokenIn) -> tuple[Pan, cards.Expiry] | None:
    """For ``{pan, …}``: the PAN and expiry of the card to enrol first (the caller needs
    cards:write too)."""
    if not body.pan or body.card_id or body.pan_alias:
        return None
    check_scope(caller.principal, "cards:write")
    if body.exp_month is None or body.exp_year is None:
        raise Unprocessable("exp_month and exp_year are required with pan")
    return valid_card(CardIn(pan=body.pan, exp_month=body.exp_month, exp_year=body.exp_year))


@router.post("", status_code=201)
async def provision(
    body: NetworkTokenIn, caller: Writer, idempotency_key: Annotated[str | None, Header()] = None
) -> Response:
    """Provision the card's network token; a card with a live token returns it (200)."""
    status, payload = await provision_json(caller, body, idempotency_key)
    return Response(payload, status, media_type="application/json")


async def provision_json(
    caller: VaultCaller, body: NetworkTokenIn, idempotency_key: str | None
) -> tuple[int, bytes]:
    """``POST /network-tokens`` (and its fast path): the status and JSON body.

    As ``POST /cards``: what needs no write lock (the card, its live token, the
    network's answer, the new token's record and event) is made first, and only the
    writes join the worker's group commit; with a PAN, the card's enrolment is in the
    same write. A network's refusal is raised, after the enrolment was written."""
    runtime = caller.runtime
    idem = IdempotentRequest.of(
        runtime.hasher,
        caller.vault_id,
        idempotency_key,
        "POST /network-tokens",
        body.model_dump_json(),
    )
    to_enrol = _card_to_enrol(caller, body)
    cipher = runtime.vault_keys.cipher(caller.vault_id)
    for attempt in (1, 2):  # a concurrent twin (same card or key) wins once; then we read it
        prepared = await runtime.run_db(_prepare, caller, body, idem, cipher, to_enrol)
        if isinstance(prepared, Replay):
            return prepared.status, prepared.body
        try:
            answer = await runtime.writes.write(partial(_store, caller, idem, prepared))
        except IntegrityError:
            if attempt == 2:
                raise
            continue
        if isinstance(answer, ProviderError):  # the card was enrolled all the same
            raise answer
        return answer
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class _Provision:
    """A provisioning made ready outside the write lock."""

    enrolment: Enrolment | None  # the card to enrol first (``{pan, …}``)
    card: Any  # a row of the card, or the card to enrol
    live: Any | None  # its live token when read, if it had one
    plan: TokenPlan | None  # otherwise, the new token's plan
    refusal: ProviderError | None = None  # the network's, for a card enrolled anyway
    # The answer and audit record of the planned token, made ahead (for a new token
    # whose card the write does not change); used if the write stores that token.
    planned: Any = None
    payload: bytes | None = None
    audit: Bound | None = None


def _prepare(
    caller: VaultCaller,
    body: NetworkTokenIn,
    idem: IdempotentRequest | None,
    cipher: VaultCipher,
    to_enrol: tuple[Pan, cards.Expiry] | None,
) -> Replay | _Provision:
    """Reads only: a replay, or the card's live token, or the plan of a new one (the
    network has answered; a refusal of a card already enrolled is raised here, before
    anything is written)."""
    db = caller.runtime.db
    replay = replay_of(db, idem)
    if replay is not None:
        return replay
    pan: Pan | None = None
    enrolment: Enrolment | None = None
    if to_enrol is not None:
        enrolment = prepare_enrolment(caller, *to_enrol, None)
        card, pan, expiry = enrolment.card, enrolment.pan, enrolment.expiry
    else:
        key = body.card_id or body.pan_alias
        assert key is not None
        card = cards.read_card(db, caller.vault_id, key)
        expiry = cards.normalize_expiry(
            body.exp_month or card.exp_month, body.exp_year or card.exp_year, dt.date.today()
        )
    new_card = enrolment is not None and enrolment.created
    live = None if new_card else LIVE_TOKEN.first(db, {"card_id": card.id})
    if live is not None:
        return _Provision(enrolment, card, live, None)
    item = Provisioning(card, expiry.month, expiry.year, pan=pan, cvc=body.cvc)
    plan = plan_tokens(db, provider_for, [item], cipher, {})
    refusal = plan.results[0]
    if not isinstance(refusal, ProviderError):
        if refusal is None or (enrolment is not None and not enrolment.created):
            return _Provision(enrolment, card, None, plan)
        token = refusal[0]
        payload = orjson.dumps(token_out(token, card))
        audit = bind_audit(db, _provision_audit(caller, token, card))
        return _Provision(enrolment, card, None, plan, None, token, payload, audit)
    if enrolment is None:
        raise refusal
    return _Provision(enrolment, card, None, None, refusal)


def _store(
    caller: VaultCaller, idem: IdempotentRequest | None, ready: _Provision, conn: Connection
) -> tuple[int, bytes] | ProviderError:
    """The write of one provisioning (one savepoint of a shared transaction); the
    network's refusal of a card enrolled here is returned, not raised, so that the
    enrolment is kept."""
    if ready.enrolment is not None:
        store_enrolment(ready.enrolment, conn)
    if ready.refusal is not None:
        return ready.refusal
    token: Any = ready.live
    created = False
    if ready.plan is not None:
        token = LIVE_TOKEN.first(conn, {"card_id": ready.card.id})  # a twin's, meanwhile
        if token is None:
            result = store_tokens(conn, ready.plan)[0]
            if isinstance(result, ProviderError):  # a network asked only now refused
                return result
            token, created = result
    status = 201 if created else 200
    audit: AuditRecord | Bound
    if token is ready.planned and ready.payload is not None and ready.audit is not None:
        payload, audit = ready.payload, ready.audit
    else:
        payload = orjson.dumps(token_out(token, ready.card))
        audit = _provision_audit(caller, token, ready.card)
    if idem:
        idem.remember(conn, status, payload)
    write_audit(conn, audit)
    return status, payload


def _provision_audit(caller: VaultCaller, token: Any, card: Any) -> AuditRecord:
    return _audit(caller, "network_token.provision", token.id, state=token.state, card_id=card.id)


@router.get("")
def list_tokens(
    caller: Reader,
    state: States | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> Response:
    codec, listing = (
        CursorCodec.derived(caller.runtime.hasher.hash),
        f"network-tokens:{caller.vault_id}",
    )
    after = codec.decode(cursor, listing) if cursor else None  # else 400 invalid-cursor
    with caller.runtime.db.sessions() as session:
        page, following = tokens.list_tokens(
            session, caller.vault_id, state=state, limit=limit, cursor=after
        )
        data = [token_out(t, session.get(Card, t.card_id)) for t in page]
    caller.runtime.audit.add(_audit(caller, "network_token.list", None, count=len(data)))
    return _json(
        {"data": data, "next_cursor": codec.encode(following, listing) if following else None}
    )


@router.get("/{pan_alias}")
async def get_token(pan_alias: str, caller: Reader) -> Response:
    return Response(await read_token_json(caller, pan_alias), media_type="application/json")


async def read_token_json(caller: VaultCaller, key: str) -> bytes:
    """``GET /network-tokens/{key}`` (and its fast path): the token's JSON; audited."""

    runtime = caller.runtime
    row = await runtime.run_db(tokens.read_token, runtime.db, caller.vault_id, key)
    card = SimpleNamespace(
        last4=row.card_last4,
        bin=row.card_bin,
        exp_year=row.card_exp_year,
        exp_month=row.card_exp_month,
        holder_info=row.card_holder_info,
    )
    caller.runtime.audit.add(_audit(caller, "network_token.read", row.id))
    return orjson.dumps(token_out(row, card))


def _transition(
    name: str, pan_alias: str, caller: VaultCaller, reason: str, key: str | None = None
) -> Response:
    runtime = caller.runtime
    cipher = runtime.vault_keys.cipher(caller.vault_id)
    idem = IdempotentRequest.of(
        runtime.hasher, caller.vault_id, key, f"POST /network-tokens/{pan_alias}/{name}", reason
    )
    with runtime.db.transaction() as session:
        replay = idem.replay(session.connection()) if idem else None
        if replay is not None:
            return Response(replay.body, replay.status, media_type="application/json")
        token = tokens.get_token(session, caller.vault_id, pan_alias)
        card = session.get(Card, token.card_id)
        assert card is not None
        tokens.Transition(name).run(session, provider_for(card.brand), token, cipher, reason, card)
        response = _json(token_out(token, card))
        if idem:
            idem.remember(session.connection(), 200, bytes(response.body))
        write_audit(session, _audit(caller, f"network_token.{name}", token.id, reason=reason))
    return response


@router.delete("/{pan_alias}")
def delete_token(pan_alias: str, caller: Writer) -> Response:
    return _transition("delete", pan_alias, caller, "deleted by the token requestor")


IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)]


@router.post("/{pan_alias}/suspend")
def suspend_token(
    pan_alias: str,
    caller: Writer,
    body: ReasonIn | None = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    reason = (body or ReasonIn()).reason
    return _transition("suspend", pan_alias, caller, reason, idempotency_key)


@router.post("/{pan_alias}/resume")
def resume_token(
    pan_alias: str,
    caller: Writer,
    body: ReasonIn | None = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    reason = (body or ReasonIn()).reason
    return _transition("resume", pan_alias, caller, reason, idempotency_key)


@router.post("/{pan_alias}/cryptogram")
def get_cryptogram(pan_alias: str, body: CryptogramIn, caller: Writer) -> Response:
    """A fresh single-use cryptogram. Not replayed for an Idempotency-Key: the answer
    holds the token number, which is never stored in clear; a retry gets a new one."""
    runtime = caller.runtime
    cipher = runtime.vault_keys.cipher(caller.vault_id)
    with runtime.db.transaction() as session:
        token = tokens.get_token(session, caller.vault_id, pan_alias)
        card = session.get(Card, token.card_id)
        assert card is not None
        number, value = tokens.cryptogram(
            session,
            provider_for(card.brand),
            token,
            cipher,
            amount=body.amount,
            currency_code=body.currency_code,
            transaction_type=body.transaction_type,
            cryptogram_type=body.cryptogram_type,
        )
        write_audit(
            session,
            _audit(
                caller, "network_token.cryptogram", token.id, transaction_type=body.transaction_type
            ),
        )
        return _json(
            {
                "network_token": number,
                "exp_month": token.token_exp_month,
                "exp_year": token.token_exp_year,
                "expires_at": _yyyy_mm(token.token_exp_year, token.token_exp_month),
                "cryptogram": value.value,
                "eci": value.eci,
                "cryptogram_type": value.cryptogram_type,
            }
        )

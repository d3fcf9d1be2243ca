"""Built-in card-network simulators: one :class:`NetworkSimulator` per network.

They implement :class:`~cardvault.networks.provider.TokenServiceProvider` for visa,
mastercard, amex and discover against their own tables (``simulated_tokens``,
``simulated_cryptograms``) and behave the way the networks' token services do,
closely enough for the platform and its tests. Token ranges, PAR, token expiry and
the cryptogram and ECI tables are in :mod:`cardvault.networks.profiles`; the test
cards and their outcomes in :mod:`cardvault.networks.simulator_cards`.

Provisioning
    A card of another brand raises :class:`BrandNotSupported`, an impossible expiry
    month or year :class:`Rejected`. Then the test card table decides (a card not
    listed is approved): a refusal raises and stores nothing; an approved card gets an
    ACTIVE token at once; a "pending" test card gets a PENDING token that becomes
    ACTIVE or FAILED :data:`SETTLE_DELAY` later, or never. Settling happens when the
    token is next loaded (by ``status`` or any other operation) and updates the row.
    The token number is never the card's and is unique within the network. The card
    number and CVC are never stored: only the card's last four and expiry, the PAR.

States
    PENDING → ACTIVE ⇄ SUSPENDED → DELETED (final); PENDING → FAILED (final).
    ``suspend`` needs ACTIVE, ``resume`` needs SUSPENDED, ``delete`` any state that is
    not final; anything else raises :class:`InvalidTransition` with a detail such as
    "cannot resume a token in state ACTIVE". The ``reason`` given to suspend and
    resume is not kept, and the token requestor may resume a token the issuer
    suspended. An id the network does not know raises :class:`Rejected`.

Cryptograms
    Only for an ACTIVE token (else :class:`NotActive`); each one increments the
    token's application transaction counter and stores the SHA-256 of the value with
    the amount and currency. :meth:`NetworkSimulator.verify_cryptogram` is True once
    for a value issued for that token with the same amount and currency (compared as
    given, so "12.5" is not "12.50") while the token is ACTIVE, and marks it used; a
    mismatch returns False and leaves the cryptogram usable.

Issuer-side events
    ``issuer_pan_update``, ``issuer_expiry_update``, ``issuer_suspend``,
    ``issuer_resume`` and ``issuer_delete`` are not part of the provider interface: an
    operator command plays the issuer with them. A new PAN or expiry keeps the token
    and its PAR (the PAR follows the account, not the PAN) and changes the card's last
    four and expiry; Visa-style token expiry follows the card, Mastercard's does not.
    They need a live token (PENDING, ACTIVE or SUSPENDED).
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from cardvault.crypto import ordered_id
from cardvault.crypto.pan import Pan
from cardvault.networks.iin import brand_of
from cardvault.networks.profiles import (
    PROFILES,
    check_cryptogram_fields,
    check_expiry,
    cryptogram_digest,
    cryptogram_value,
)
from cardvault.networks.provider import (
    ACTIVE,
    DELETED,
    FAILED,
    PENDING,
    SUSPENDED,
    BrandNotSupported,
    CardNotAllowed,
    Cryptogram,
    Declined,
    InvalidTransition,
    NetworkUnavailable,
    NotActive,
    ProviderError,
    Providers,
    ProvisionRequest,
    Rejected,
    TokenServiceProvider,
    TokenStatus,
    counted,
)
from cardvault.networks.simulator_cards import Outcome, outcome_for
from cardvault.store.models import SimulatedCryptogram, SimulatedToken
from cardvault.store.types import utcnow

SETTLE_DELAY = dt.timedelta(seconds=1.5)
DEFAULT_UNSUPPORTED = frozenset({"jcb", "diners", "unionpay"})

_REFUSALS: Mapping[Outcome, tuple[type[ProviderError], str]] = {
    Outcome.DECLINED: (Declined, "the issuer declined to tokenize the card"),
    Outcome.NOT_ALLOWED: (CardNotAllowed, "the issuer does not allow tokens for this card"),
    Outcome.REJECTED: (Rejected, "the network rejected the provisioning request"),
    Outcome.UNAVAILABLE: (NetworkUnavailable, "the network is unavailable, retry later"),
    Outcome.BRAND_NOT_SUPPORTED: (BrandNotSupported, "card brand not supported"),
}
# ``simulated_tokens.outcome`` says what a PENDING token becomes at ``settle_at``:
# "active", "fail" or "pending" (never); approved tokens, ACTIVE from the start, say "active".
_STORED_OUTCOME = {
    Outcome.APPROVED: "active",
    Outcome.PENDING_THEN_ACTIVE: "active",
    Outcome.PENDING_THEN_FAILED: "fail",
    Outcome.PENDING: "pending",
}
_SETTLES = frozenset({Outcome.PENDING_THEN_ACTIVE, Outcome.PENDING_THEN_FAILED})
_SETTLES_TO = {"active": ACTIVE, "fail": FAILED}
_LIVE = frozenset({PENDING, ACTIVE, SUSPENDED})  # may be deleted, may get a new card
_SUSPENDABLE, _RESUMABLE = frozenset({ACTIVE}), frozenset({SUSPENDED})


class NetworkSimulator:
    """The simulated token service of one network (``visa``, ``mastercard``, ``amex``
    or ``discover``). Stateless: everything lives in the caller's session."""

    def __init__(self, network: str) -> None:
        if network not in PROFILES:
            raise ValueError(f"no simulator for network {network!r}")
        self.network = network
        self.profile = PROFILES[network]

    def __repr__(self) -> str:
        return f"NetworkSimulator({self.network!r})"

    # -- TokenServiceProvider ------------------------------------------------------

    def provision(self, session: Session, request: ProvisionRequest) -> TokenStatus:
        """Create a token, ACTIVE or PENDING; raises the test card's refusal."""
        row = self.new_row(request, utcnow())
        row.token_number = self.new_token_number(session, request.pan)
        session.add(row)
        session.flush()
        return self.status_of(row)

    def new_row(self, request: ProvisionRequest, now: dt.datetime) -> SimulatedToken:
        """The token row ``provision`` would store, not yet stored and without its token
        number; raises the test card's refusal."""
        return SimulatedToken(**self.new_values(request, now))

    @counted("provision")
    def new_values(self, request: ProvisionRequest, now: dt.datetime) -> dict[str, Any]:
        """The column values of :meth:`new_row` (for batches stored without ORM objects;
        ``token_number`` still to be chosen); raises the test card's refusal."""
        pan = request.pan
        brand = brand_of(pan.reveal())
        if brand != self.network:
            raise BrandNotSupported(f"the {self.network} network does not handle {brand} cards")
        check_expiry(request.exp_month, request.exp_year)
        outcome = outcome_for(pan)
        if outcome in _REFUSALS:
            error, detail = _REFUSALS[outcome]
            raise error(detail)
        card_expiry = (request.exp_month, request.exp_year)
        exp_month, exp_year = self.profile.token_expiry(card_expiry, now)
        return {
            "id": ordered_id("sim_"),
            "network": self.network,
            "state": ACTIVE if outcome is Outcome.APPROVED else PENDING,
            "token_number": None,
            "exp_month": exp_month,
            "exp_year": exp_year,
            "card_exp_month": request.exp_month,
            "card_exp_year": request.exp_year,
            "card_last4": pan.last4,
            "par": self.profile.payment_account_reference(pan),
            "cryptogram_key": secrets.token_bytes(32),
            "counter": 0,
            "outcome": _STORED_OUTCOME[outcome],
            "settle_at": now + SETTLE_DELAY if outcome in _SETTLES else None,
            "failure_reason": None,
            "created_at": now,
            "updated_at": now,
        }

    @counted("status")
    def status(self, session: Session, provider_id: str) -> TokenStatus:
        """The token's state, after settling it if its time has come."""
        return self.status_of(self._load(session, provider_id))

    @counted("suspend")
    def suspend(self, session: Session, provider_id: str, reason: str) -> TokenStatus:
        return self._move(session, provider_id, "suspend", _SUSPENDABLE, SUSPENDED)

    @counted("resume")
    def resume(self, session: Session, provider_id: str, reason: str) -> TokenStatus:
        return self._move(session, provider_id, "resume", _RESUMABLE, ACTIVE)

    @counted("delete")
    def delete(self, session: Session, provider_id: str) -> TokenStatus:
        return self._move(session, provider_id, "delete", _LIVE, DELETED)

    @counted("cryptogram")
    def cryptogram(
        self,
        session: Session,
        provider_id: str,
        *,
        amount: str | None,
        currency_code: str | None,
        transaction_type: str,
        cryptogram_type: str | None,
    ) -> Cryptogram:
        """A single-use cryptogram; :class:`NotActive` unless the token is ACTIVE,
        :class:`Rejected` (detail names the field) for an argument out of range."""
        kind = cryptogram_type or self.profile.default_cryptogram_type
        check_cryptogram_fields(amount, currency_code, transaction_type, kind)
        row = self._load(session, provider_id)
        if row.state != ACTIVE:
            raise NotActive(f"cryptograms need an ACTIVE token; this one is {row.state}")
        row.counter += 1
        row.updated_at = utcnow()
        fields = (amount, currency_code, transaction_type, kind)
        value = cryptogram_value(row.cryptogram_key, row.counter, fields)
        session.add(
            SimulatedCryptogram(
                id=ordered_id("scr_"),
                token_id=row.id,
                digest=cryptogram_digest(value),
                amount=amount,
                currency_code=currency_code,
                created_at=row.updated_at,
            )
        )
        session.flush()
        eci = self.profile.eci(transaction_type)
        return Cryptogram(value=value, eci=eci, cryptogram_type=kind)

    def verify_cryptogram(
        self,
        session: Session,
        provider_id: str,
        value: str,
        *,
        amount: str | None,
        currency_code: str | None,
    ) -> bool:
        """True the first time for a cryptogram issued for this ACTIVE token with the
        same amount and currency; False otherwise (never raises for bad input)."""
        found = session.execute(
            select(
                SimulatedCryptogram.id,
                SimulatedCryptogram.amount,
                SimulatedCryptogram.currency_code,
                SimulatedToken.state,
            )
            .join(SimulatedToken, SimulatedToken.id == SimulatedCryptogram.token_id)
            .where(
                SimulatedCryptogram.digest == cryptogram_digest(value),
                SimulatedCryptogram.token_id == provider_id,
                SimulatedCryptogram.used_at.is_(None),
                SimulatedToken.network == self.network,
            )
        ).one_or_none()
        if found is None or found.state != ACTIVE:
            return False
        if (found.amount, found.currency_code) != (amount, currency_code):
            return False
        used = session.execute(  # exactly once, even when two verifications race
            update(SimulatedCryptogram)
            .where(SimulatedCryptogram.id == found.id, SimulatedCryptogram.used_at.is_(None))
            .values(used_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        return cast("CursorResult[Any]", used).rowcount == 1

    # -- Issuer-side events (simulator only) -------------------------------------

    def issuer_pan_update(
        self, session: Session, provider_id: str, new_pan: Pan, exp_month: int, exp_year: int
    ) -> TokenStatus:
        """The issuer replaced the card: same token and PAR, new last four and expiry."""
        if brand_of(new_pan.reveal()) != self.network:
            raise Rejected(f"the new card is not a {self.network} card")
        check_expiry(exp_month, exp_year)
        row = self._load_live(session, provider_id, "update the card of")
        row.card_last4 = new_pan.last4
        return self._new_card_expiry(session, row, exp_month, exp_year)

    def issuer_expiry_update(
        self, session: Session, provider_id: str, exp_month: int, exp_year: int
    ) -> TokenStatus:
        """The issuer extended the card's expiry."""
        check_expiry(exp_month, exp_year)
        row = self._load_live(session, provider_id, "update the expiry of")
        return self._new_card_expiry(session, row, exp_month, exp_year)

    def issuer_suspend(self, session: Session, provider_id: str) -> TokenStatus:
        return self._move(session, provider_id, "suspend", _SUSPENDABLE, SUSPENDED)

    def issuer_resume(self, session: Session, provider_id: str) -> TokenStatus:
        return self._move(session, provider_id, "resume", _RESUMABLE, ACTIVE)

    def issuer_delete(self, session: Session, provider_id: str) -> TokenStatus:
        return self._move(session, provider_id, "delete", _LIVE, DELETED)

    # -- Steps ---------------------------------------------------------------------

    @counted("provision")
    def new_token_number(self, session: Session, pan: Pan) -> str:
        for _ in range(100):
            number = self.profile.random_token_number()
            taken = session.scalar(
                select(SimulatedToken.id).where(
                    SimulatedToken.network == self.network, SimulatedToken.token_number == number
                )
            )
            if number != pan.reveal() and taken is None:
                return number
        raise NetworkUnavailable("the network could not allocate a token number")

    def _load(self, session: Session, provider_id: str) -> SimulatedToken:
        """The token row, locked for update and settled; :class:`Rejected` if unknown."""
        row = session.scalars(
            select(SimulatedToken)
            .where(SimulatedToken.id == provider_id, SimulatedToken.network == self.network)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one_or_none()
        if row is None:
            raise Rejected(f"the {self.network} network has no token with this id")
        now = utcnow()
        if row.state == PENDING and row.settle_at is not None and row.settle_at <= now:
            row.state = _SETTLES_TO[row.outcome]
            if row.state == FAILED:
                row.failure_reason = "the issuer declined the token request"
            row.settle_at = None
            row.updated_at = now
            session.flush()
        return row

    def _load_live(self, session: Session, provider_id: str, action: str) -> SimulatedToken:
        row = self._load(session, provider_id)
        if row.state not in _LIVE:
            raise InvalidTransition(f"cannot {action} a token in state {row.state}")
        return row

    def _move(
        self,
        session: Session,
        provider_id: str,
        action: str,
        allowed: frozenset[str],
        target: str,
    ) -> TokenStatus:
        row = self._load(session, provider_id)
        if row.state not in allowed:
            raise InvalidTransition(f"cannot {action} a token in state {row.state}")
        row.state = target
        if target == DELETED:
            row.settle_at = None
        row.updated_at = utcnow()
        session.flush()
        return self.status_of(row)

    def _new_card_expiry(
        self, session: Session, row: SimulatedToken, exp_month: int, exp_year: int
    ) -> TokenStatus:
        row.card_exp_month, row.card_exp_year = exp_month, exp_year
        if not self.profile.mastercard_style:
            row.exp_month, row.exp_year = exp_month, exp_year
        row.updated_at = utcnow()
        session.flush()
        return self.status_of(row)

    @staticmethod
    def status_of(row: SimulatedToken | Mapping[str, Any]) -> TokenStatus:
        """The network's view of a token row (a model, or the values of a new one)."""
        get: Callable[[str], Any] = (
            row.__getitem__ if isinstance(row, Mapping) else partial(getattr, row)
        )
        return TokenStatus(
            provider_id=get("id"),
            network=get("network"),
            state=get("state"),
            token_number=get("token_number"),
            exp_month=get("exp_month"),
            exp_year=get("exp_year"),
            payment_account_reference=get("par"),
            card_last4=get("card_last4"),
            card_exp_month=get("card_exp_month"),
            card_exp_year=get("card_exp_year"),
            failure_reason=get("failure_reason"),
        )


def simulators(
    *, unsupported: frozenset[str] = DEFAULT_UNSUPPORTED
) -> dict[str, TokenServiceProvider]:
    """A simulator per network, by brand, leaving out the brands in ``unsupported``."""
    return {
        network: NetworkSimulator(network) for network in PROFILES if network not in unsupported
    }


_DEFAULT_PROVIDERS = Providers(simulators())


def provider_for(
    brand: str, providers: Mapping[str, TokenServiceProvider] | None = None
) -> TokenServiceProvider:
    """The provider of ``brand`` (default: the built-in simulators); raises
    :class:`BrandNotSupported` for a brand without one (JCB, Diners, UnionPay, …).

    Kept for the HTTP routes that still name the simulators; everything else takes
    the :class:`Providers` that :func:`cardvault.networks.registry.providers` builds.
    """
    return (_DEFAULT_PROVIDERS if providers is None else Providers(providers))(brand)


__all__ = [
    "DEFAULT_UNSUPPORTED",
    "SETTLE_DELAY",
    "NetworkSimulator",
    "provider_for",
    "simulators",
]

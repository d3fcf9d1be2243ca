"""Test card numbers with a fixed outcome at the simulated networks.

The built-in simulators approve every valid card number of their brand except the
ones below, which let a test or a demo reach each answer a real network can give.
All are Luhn-valid.

==================  ==========  ===================  ==========================================
PAN                 Brand       Outcome              What the simulator does
==================  ==========  ===================  ==========================================
4242424242424242    Visa        approved             ACTIVE token at once
4111111111111111    Visa        approved             ACTIVE token at once
5555555555554444    Mastercard  approved             ACTIVE token at once
2223003122003222    Mastercard  approved             ACTIVE token at once
378282246310005     Amex        approved             ACTIVE token at once
6011111111111117    Discover    approved             ACTIVE token at once
4000000000000002    Visa        declined             raises ``Declined`` (404 ``declined``)
5200000000000007    Mastercard  declined             raises ``Declined`` (404 ``declined``)
4000000000000069    Visa        not-allowed          raises ``CardNotAllowed`` (422)
4000000000000127    Visa        rejected             raises ``Rejected`` (422)
4000000000000119    Visa        unavailable          raises ``NetworkUnavailable`` (503,
                                                     ``retry_after`` 30 s)
4000000000003220    Visa        pending              PENDING token that never settles
4000000000003063    Visa        pending-then-active  PENDING, ACTIVE after about 1.5 s
4000000000000341    Visa        pending-then-failed  PENDING, FAILED after about 1.5 s
3530111333300000    JCB         brand-not-supported  ``provider_for("jcb")`` raises
                                                     ``BrandNotSupported`` (no JCB simulator)
==================  ==========  ===================  ==========================================

Any other valid card number is approved. Nothing is stored for the outcomes that
raise.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from cardvault.crypto.pan import Pan


class Outcome(StrEnum):
    """What a simulated network answers to a provisioning request."""

    APPROVED = "approved"
    DECLINED = "declined"
    NOT_ALLOWED = "not-allowed"
    REJECTED = "rejected"
    UNAVAILABLE = "unavailable"
    PENDING = "pending"
    PENDING_THEN_ACTIVE = "pending-then-active"
    PENDING_THEN_FAILED = "pending-then-failed"
    BRAND_NOT_SUPPORTED = "brand-not-supported"


TEST_CARDS: Mapping[str, Outcome] = MappingProxyType(
    {
        "4242424242424242": Outcome.APPROVED,
        "4111111111111111": Outcome.APPROVED,
        "5555555555554444": Outcome.APPROVED,
        "2223003122003222": Outcome.APPROVED,
        "378282246310005": Outcome.APPROVED,
        "6011111111111117": Outcome.APPROVED,
        "4000000000000002": Outcome.DECLINED,
        "5200000000000007": Outcome.DECLINED,
        "4000000000000069": Outcome.NOT_ALLOWED,
        "4000000000000127": Outcome.REJECTED,
        "4000000000000119": Outcome.UNAVAILABLE,
        "4000000000003220": Outcome.PENDING,
        "4000000000003063": Outcome.PENDING_THEN_ACTIVE,
        "4000000000000341": Outcome.PENDING_THEN_FAILED,
        "3530111333300000": Outcome.BRAND_NOT_SUPPORTED,
    }
)


def outcome_for(pan: Pan) -> Outcome:
    """The documented outcome for ``pan``; :attr:`Outcome.APPROVED` if it has none."""
    return TEST_CARDS.get(pan.reveal(), Outcome.APPROVED)


__all__ = ["TEST_CARDS", "Outcome", "outcome_for"]

"""The token service provider interface: one per card network.

A provider is the network's side of tokenization (Visa VTS, Mastercard MDES, …). The
platform calls it to provision and manage tokens and to get cryptograms; the built-in
simulators implement it against their own tables, a real network adapter would be one
more implementation. Every method takes the caller's SQLAlchemy session so that the
network's state changes commit together with the platform's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from sqlalchemy.orm import Session

from cardvault.crypto.pan import Pan
from cardvault.observability import labelled, metrics
from cardvault.problems import Problem

# Token states, as the platform reports them (DESIGN §4).
PENDING, ACTIVE, SUSPENDED, DELETED, FAILED = "PENDING", "ACTIVE", "SUSPENDED", "DELETED", "FAILED"


class ProviderError(Problem):
    """The network refused or could not answer; ``code`` and ``status`` go on the wire."""

    code = "rejected"
    status = 422
    retry_after: int | None = None

    def __init__(self, detail: str) -> None:
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after else None
        super().__init__(detail, headers=headers)


class Declined(ProviderError):
    code, status = "declined", 404


class CardNotAllowed(ProviderError):
    code, status = "card-not-allowed", 422


class BrandNotSupported(ProviderError):
    code, status = "card-brand-not-supported", 422


class Rejected(ProviderError):
    code, status = "rejected", 422


class NetworkUnavailable(ProviderError):
    code, status = "network-unavailable", 503
    retry_after = 30


class InvalidTransition(ProviderError):
    """The token's state does not allow the operation (409 ``invalid-state``)."""

    code, status = "invalid-state", 409


class NotActive(ProviderError):
    """Cryptograms need an ACTIVE token (422 ``failed-dependency``)."""

    code, status = "failed-dependency", 422


class _OfNetwork(Protocol):
    network: str


N = TypeVar("N", bound=_OfNetwork)
P = ParamSpec("P")
R = TypeVar("R")


def counted(
    operation: str,
) -> Callable[[Callable[Concatenate[N, P], R]], Callable[Concatenate[N, P], R]]:
    """Counts the :class:`ProviderError` a provider's method raises in the metrics,
    by network, ``operation`` and error code (a provider decorates its methods)."""

    def decorate(method: Callable[Concatenate[N, P], R]) -> Callable[Concatenate[N, P], R]:
        @functools.wraps(method)
        def counting(provider: N, /, *args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return method(provider, *args, **kwargs)
            except ProviderError as error:
                family = metrics().provider_errors
                labelled(family, provider.network, operation, error.code).inc()
                raise

        return counting

    return decorate


@dataclass(frozen=True)
class ProvisionRequest:
    pan: Pan
    exp_month: int
    exp_year: int
    cvc: str | None = None  # passed through, never stored

    def __repr__(self) -> str:
        return f"ProvisionRequest(pan={self.pan!r}, exp={self.exp_month}/{self.exp_year})"


@dataclass(frozen=True)
class TokenStatus:
    """The network's view of one token."""

    provider_id: str
    network: str
    state: str  # PENDING | ACTIVE | SUSPENDED | DELETED | FAILED
    token_number: str
    exp_month: int
    exp_year: int
    payment_account_reference: str
    card_last4: str
    card_exp_month: int
    card_exp_year: int
    failure_reason: str | None = None

    def __repr__(self) -> str:
        return (
            f"TokenStatus({self.provider_id}, {self.network}, {self.state}, "
            f"…{self.token_number[-4:]})"
        )


@dataclass(frozen=True)
class Cryptogram:
    value: str  # base64 of 20 bytes (28 characters)
    eci: str
    cryptogram_type: str


class TokenServiceProvider(Protocol):
    """What the platform needs from a network. Methods raise :class:`ProviderError`."""

    network: str

    def provision(self, session: Session, request: ProvisionRequest) -> TokenStatus:
        """Create a token; its state may be PENDING and settle later (see ``status``)."""
        ...

    def status(self, session: Session, provider_id: str) -> TokenStatus:
        """The token's current state; a PENDING token may have become ACTIVE or FAILED."""
        ...

    def suspend(self, session: Session, provider_id: str, reason: str) -> TokenStatus: ...

    def resume(self, session: Session, provider_id: str, reason: str) -> TokenStatus: ...

    def delete(self, session: Session, provider_id: str) -> TokenStatus: ...

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
        """A single-use cryptogram for an ACTIVE token (else :class:`NotActive`)."""
        ...

    def verify_cryptogram(
        self,
        session: Session,
        provider_id: str,
        value: str,
        *,
        amount: str | None,
        currency_code: str | None,
    ) -> bool:
        """True once for a cryptogram this network issued for these values; then False."""
        ...


class Providers:
    """The provider of each card brand: ``providers(brand)``. Built once per process
    (see :mod:`cardvault.networks.registry`) and handed to the services."""

    def __init__(self, by_brand: Mapping[str, TokenServiceProvider]) -> None:
        self._by_brand = MappingProxyType(dict(by_brand))

    def __call__(self, brand: str) -> TokenServiceProvider:
        """The provider of ``brand``; raises :class:`BrandNotSupported` for a brand
        without one (JCB, Diners, UnionPay, …)."""
        provider = self._by_brand.get(brand)
        if provider is None:
            raise BrandNotSupported(f"card brand {brand} is not supported")
        return provider

    @property
    def brands(self) -> frozenset[str]:
        return frozenset(self._by_brand)

    def __repr__(self) -> str:
        return f"Providers({sorted(self._by_brand)})"

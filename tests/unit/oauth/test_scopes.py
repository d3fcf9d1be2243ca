"""Scopes and how they imply each other (cardvault.accounts.scopes)."""

from __future__ import annotations

import pytest

from cardvault.accounts.scopes import ALL_SCOPES, CARD_SCOPES, MANAGEMENT_SCOPES, satisfies


@pytest.mark.parametrize("scope", ALL_SCOPES)
def test_scope_satisfies_itself(scope: str) -> None:
    assert satisfies([scope], scope)


@pytest.mark.parametrize(
    "area", ["cards", "network-tokens", "service-accounts", "members", "vaults"]
)
def test_write_implies_read(area: str) -> None:
    assert satisfies([f"{area}:write"], f"{area}:read")


@pytest.mark.parametrize(
    "area", ["cards", "network-tokens", "service-accounts", "members", "vaults"]
)
def test_read_does_not_imply_write(area: str) -> None:
    assert not satisfies([f"{area}:read"], f"{area}:write")


def test_write_of_one_area_does_not_imply_another() -> None:
    assert not satisfies(["cards:write"], "network-tokens:read")
    assert not satisfies(["cards:write"], "vaults:read")
    assert not satisfies(["vaults:write"], "cards:read")


@pytest.mark.parametrize("scope", MANAGEMENT_SCOPES)
def test_organization_admin_implies_every_management_scope(scope: str) -> None:
    assert satisfies(["organization:admin"], scope)


@pytest.mark.parametrize("scope", CARD_SCOPES)
def test_organization_admin_does_not_imply_card_scopes(scope: str) -> None:
    assert not satisfies(["organization:admin"], scope)


@pytest.mark.parametrize("scope", MANAGEMENT_SCOPES[1:])
def test_management_scopes_do_not_imply_admin(scope: str) -> None:
    assert not satisfies([scope], "organization:admin")


@pytest.mark.parametrize(
    "required", ["billing:read", "cards:admin", "cards", "", "organization:read", ":read"]
)
def test_unknown_scope_is_not_satisfied_by_all_known_scopes(required: str) -> None:
    assert not satisfies(ALL_SCOPES, required)


def test_nothing_granted_satisfies_nothing() -> None:
    assert not any(satisfies([], scope) for scope in ALL_SCOPES)


def test_granted_may_be_any_iterable() -> None:
    assert satisfies(iter(["cards:write"]), "cards:read")
    assert satisfies((s for s in ["organization:admin"]), "members:write")

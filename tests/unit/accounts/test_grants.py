"""Properties of the grant rule (``scopes.refused_grant``), checked with Hypothesis."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cardvault.accounts.scopes import (
    ADMIN,
    ALL_SCOPES,
    CARD_SCOPES,
    MANAGEMENT_SCOPES,
    Holding,
    RefusedGrant,
    refused_grant,
    satisfies,
)

VAULTS = ("vlt_a", "vlt_b", "vlt_c", "vlt_d")
scope_lists = st.lists(st.sampled_from(ALL_SCOPES), max_size=6, unique=True)
vault_lists = st.lists(st.sampled_from(VAULTS), max_size=3, unique=True)
holdings = st.builds(Holding.of, scope_lists, vault_lists)


def _reaches_every_vault(holding: Holding) -> bool:
    return ADMIN in holding.scopes and not holding.vault_ids


@given(holdings, holdings)
def test_a_grant_never_exceeds_the_caller(caller: Holding, wanted: Holding) -> None:
    if refused_grant(caller, wanted) is not None:
        return
    for scope in wanted.scopes:
        if scope in CARD_SCOPES:
            assert satisfies(caller.scopes, scope) or ADMIN in caller.scopes
        else:
            assert satisfies(caller.scopes, scope)
    if wanted.scopes:
        for vault in wanted.vault_ids:
            assert vault in caller.vault_ids or _reaches_every_vault(caller)
    if _reaches_every_vault(wanted):
        assert _reaches_every_vault(caller)


@given(holdings)
def test_granting_what_you_hold_is_always_allowed(caller: Holding) -> None:
    assert refused_grant(caller, caller) is None


@given(holdings, st.data())
def test_granting_part_of_what_you_hold_is_allowed(caller: Holding, data: st.DataObject) -> None:
    scopes: list[str] = []
    if caller.scopes:
        scopes = data.draw(st.lists(st.sampled_from(caller.scopes), unique=True))
    vaults = list(caller.vault_ids)
    if vaults:  # bound callers bind what they grant to some of their vaults
        vaults = data.draw(st.lists(st.sampled_from(vaults), min_size=1, unique=True))
    assert refused_grant(caller, Holding.of(scopes, vaults)) is None


@given(holdings, st.sampled_from([s for s in ALL_SCOPES if s.endswith(":write")]))
def test_write_implies_read(caller: Holding, write: str) -> None:
    read = write.replace(":write", ":read")
    with_write = Holding.of([*caller.scopes, write], caller.vault_ids)
    assert refused_grant(with_write, Holding.of([read], caller.vault_ids)) is None


@given(
    vault_lists,
    st.lists(st.sampled_from([s for s in MANAGEMENT_SCOPES if s != ADMIN]), unique=True),
)
def test_admin_implies_the_management_scopes(vaults: list[str], scopes: list[str]) -> None:
    admin = Holding.of([ADMIN], vaults)
    assert refused_grant(admin, Holding.of(scopes, vaults)) is None
    assert refused_grant(admin, Holding.of(scopes)) is None


@given(holdings, st.sampled_from(CARD_SCOPES), st.sampled_from(VAULTS))
def test_card_scopes_only_on_vaults_the_caller_reaches(
    caller: Holding, scope: str, vault: str
) -> None:
    refused = refused_grant(caller, Holding.of([scope], [vault]))
    reaches = vault in caller.vault_ids or _reaches_every_vault(caller)
    may_use = satisfies(caller.scopes, scope) or ADMIN in caller.scopes
    assert (refused is None) == (reaches and may_use)
    if refused is not None:
        assert refused.scope == scope
        assert refused.vault_id == (None if not may_use else vault)


@given(
    st.lists(st.sampled_from([s for s in MANAGEMENT_SCOPES if s != ADMIN]), min_size=1),
    vault_lists,
)
def test_only_an_unbound_admin_grants_an_unbound_admin(
    scopes: list[str], vaults: list[str]
) -> None:
    unbound_admin = Holding.of([ADMIN])
    assert refused_grant(Holding.of([ADMIN]), unbound_admin) is None
    if vaults:
        assert refused_grant(Holding.of([ADMIN], vaults), unbound_admin) == RefusedGrant(ADMIN)
    assert refused_grant(Holding.of(scopes, vaults), unbound_admin) == RefusedGrant(ADMIN)


def test_the_reported_escalation_is_refused() -> None:
    caller = Holding.of(["service-accounts:write"])
    wanted = Holding.of([ADMIN, "cards:write"], ["vlt_a"])
    assert refused_grant(caller, wanted) == RefusedGrant(ADMIN)
    assert refused_grant(caller, Holding.of(["cards:write"], ["vlt_a"])) == RefusedGrant(
        "cards:write"
    )
    bound = Holding.of(["service-accounts:write", "cards:write"], ["vlt_a"])
    assert refused_grant(bound, Holding.of(["cards:write"], ["vlt_b"])) == RefusedGrant(
        "cards:write", "vlt_b"
    )

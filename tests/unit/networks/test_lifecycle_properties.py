"""The token state machine, generatively: any sequence of merchant and issuer actions
leaves the simulator's token where the documented machine says (DESIGN §4)."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from cardvault.networks import (
    ACTIVE,
    DELETED,
    PENDING,
    SUSPENDED,
    InvalidTransition,
    NetworkSimulator,
)
from cardvault.store import Database
from tests.unit.networks.support import call, make_due, provision, row

VISA = NetworkSimulator("visa")

# The documented machine: PENDING → ACTIVE ⇄ SUSPENDED → DELETED (final).
MACHINE = {
    "suspend": {ACTIVE: SUSPENDED},
    "resume": {SUSPENDED: ACTIVE},
    "delete": {PENDING: DELETED, ACTIVE: DELETED, SUSPENDED: DELETED},
    "issuer_suspend": {ACTIVE: SUSPENDED},
    "issuer_resume": {SUSPENDED: ACTIVE},
    "issuer_delete": {PENDING: DELETED, ACTIVE: DELETED, SUSPENDED: DELETED},
}
REASONED = {"suspend", "resume"}


def test_any_sequence_of_actions_follows_the_documented_machine(db: Database) -> None:
    class Lifecycle(RuleBasedStateMachine):
        @initialize()
        def provision(self) -> None:
            # 4000000000003063 is PENDING at first, ACTIVE once it settles.
            self.provider_id = provision(db, "4000000000003063").provider_id
            self.expected = PENDING

        def _act(self, action: str) -> None:
            method = getattr(VISA, action)
            args = ("cardholder request",) if action in REASONED else ()
            end = MACHINE[action].get(self.expected)
            try:
                status = call(db, method, self.provider_id, *args)
            except InvalidTransition as refused:
                assert end is None, f"{action} refused in {self.expected}"
                assert refused.detail == (
                    f"cannot {action.removeprefix('issuer_')} a token in state {self.expected}"
                )
                return
            assert end is not None, f"{action} allowed in {self.expected}"
            assert status.state == end
            self.expected = end

        @rule()
        def settle(self) -> None:
            make_due(db, self.provider_id)
            status = call(db, VISA.status, self.provider_id)
            if self.expected == PENDING:
                self.expected = ACTIVE
            assert status.state == self.expected

        @rule()
        def suspend(self) -> None:
            self._act("suspend")

        @rule()
        def resume(self) -> None:
            self._act("resume")

        @rule()
        def delete(self) -> None:
            self._act("delete")

        @rule()
        def issuer_suspend(self) -> None:
            self._act("issuer_suspend")

        @rule()
        def issuer_resume(self) -> None:
            self._act("issuer_resume")

        @rule()
        def issuer_delete(self) -> None:
            self._act("issuer_delete")

        @invariant()
        def stored_state_is_the_expected_one(self) -> None:
            if hasattr(self, "provider_id"):
                assert row(db, self.provider_id).state == self.expected

    Lifecycle.TestCase.settings = settings(
        max_examples=25,
        stateful_step_count=12,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    Lifecycle.TestCase().runTest()

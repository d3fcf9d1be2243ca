"""Scenarios across operations (create → read → change → delete), on both backends.

Schemathesis links the operations by the resources they make and take (the card
``POST /cards`` answers is the one ``GET``/``PATCH``/``DELETE /cards/{card_id}`` then
use, and so on) and Hypothesis draws sequences of such steps. Every answer is checked
as in the sweep of single operations.
"""

from __future__ import annotations

from typing import Any

import hypothesis
import pytest
from hypothesis import HealthCheck

from tests.fuzz.budget import TALLY, Budget
from tests.fuzz.conftest import Credentials
from tests.fuzz.harness import CHECKS, Caller, load_schema
from tests.servers import Server

# One worker runs the fuzz suites: they share a server per backend.
pytestmark = pytest.mark.xdist_group("fuzz")


def test_scenarios(fuzz_server: Server, credentials: Credentials) -> None:
    schema = load_schema(fuzz_server, org_id=credentials.org_id)
    caller = Caller(credentials)
    machine = schema.as_state_machine()
    assert machine.schema.statistic.transitions.total >= 20

    class Scenarios(machine):  # type: ignore[misc,valid-type]
        def call(self, case: Any, **_kwargs: Any) -> Any:
            return caller.call(case)

        def validate_response(self, response: Any, case: Any, *_args: Any, **_kwargs: Any) -> None:
            TALLY.add("stateful")
            case.validate_response(response, checks=CHECKS)

    budget = Budget.from_env("stateful")
    for round_no in budget.rounds():
        Scenarios.run(
            settings=hypothesis.settings(
                max_examples=budget.examples * 3,
                stateful_step_count=8,
                deadline=None,
                database=None,
                derandomize=round_no == 0,
                suppress_health_check=list(HealthCheck),
                print_blob=False,
            )
        )

"""Every operation of ``/openapi.json``, fuzzed with schemathesis on both backends.

Each round sends, per operation, schemathesis's coverage cases (boundaries, missing and
mistyped fields: first round only) and Hypothesis-generated cases, valid and invalid,
half of them aimed at real resources made for the round. Every answer must be a
non-5xx that matches the document (status, content type, body), and the server must
log no unhandled error. ``make test`` runs one round; ``make fuzz`` rounds until its
time is spent.
"""

from __future__ import annotations

import random

import pytest
from schemathesis import GenerationMode

from tests.fuzz.budget import TALLY, Budget
from tests.fuzz.conftest import Credentials
from tests.fuzz.harness import (
    FAILED,
    Caller,
    CaseFailed,
    load_schema,
    modes,
    operations,
    reproduce,
    run_cases,
    seed,
    strategy,
)
from tests.servers import Server

# One worker runs the fuzz suites: they share a server per backend.
pytestmark = pytest.mark.xdist_group("fuzz")


def test_every_operation(fuzz_server: Server, credentials: Credentials) -> None:
    schema = load_schema(fuzz_server)
    ops = operations(schema)
    assert len(ops) >= 50, [op.label for op in ops]
    caller = Caller(credentials)
    budget = Budget.from_env("operations")
    failures: dict[str, str] = {}
    clock = budget.rounds()
    for round_no in clock:
        rng = random.Random(round_no)
        seeds = seed(caller, rng)
        for op in ops:
            if op.label in failures:
                continue
            try:
                if round_no == 0:
                    coverage(schema, op, caller)
                for mode in modes(op):
                    n = run_cases(
                        strategy(op, mode, seeds),
                        budget.examples,
                        seed=round_no * 1000 + len(failures),
                        send=caller.send,
                    )
                    TALLY.add("operations", n)
            except CaseFailed as failed:
                failures[op.label] = str(failed)
            if clock.remaining() <= 0:
                break
    report = "\n\n".join(f"=== {label}\n{text}" for label, text in failures.items())
    assert not failures, f"{len(failures)} of {len(ops)} operations failed:\n\n{report}"


def coverage(schema, op, caller: Caller) -> None:  # type: ignore[no-untyped-def]
    """Schemathesis's deterministic coverage cases of ``op``, valid and invalid."""
    config = schema.config.generation_for(operation=op)
    cases = schema.iter_coverage_cases(
        op,
        generation_modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        generation_config=config,
    )
    for case in cases:
        TALLY.add("operations")
        try:
            caller.send(case)
        except FAILED as error:
            raise CaseFailed(f"{error}\n\nReproduce with:\n  {reproduce(case)}") from None

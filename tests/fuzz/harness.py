"""Running schemathesis cases against a real server: the checks every response must
pass, seeded resources for the path parameters, and one Hypothesis run per operation."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from typing import Any

import hypothesis
import hypothesis.errors
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup
from schemathesis.schemas import APIOperation, BaseSchema

from cardvault.crypto.pan import luhn_check_digit
from tests.fuzz.conftest import Credentials
from tests.servers import Server

# What a failed check raises (an exception group, not an ``Exception``) or any error.
FAILED = (Exception, FailureGroup)
# No 5xx, and every response, errors included, as the document says: its status, its
# content type and its body. CARDVAULT_FUZZ_CHECKS may name fewer, to hunt one kind of
# failure locally; the suite runs them all.
ALL_CHECKS = {
    check.__name__: check
    for check in (
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    )
}
CHECKS = [
    ALL_CHECKS[name.strip()]
    for name in os.environ.get("CARDVAULT_FUZZ_CHECKS", ",".join(ALL_CHECKS)).split(",")
]
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
# The bulk upload takes its CSV file as application/csv too: text on the wire, like
# text/csv (which schemathesis already sends as text).
schemathesis.serializer.alias("application/csv", "text/plain")


def load_schema(server: Server, **parameters: str) -> BaseSchema:
    """The server's own document; ``parameters`` pin named parameters everywhere."""
    config = SchemathesisConfig.from_dict({"parameters": parameters} if parameters else {})
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json", config=config)


def operations(schema: BaseSchema) -> list[APIOperation]:
    """Every operation of the document, deletions last so seeded resources live longer."""
    found = [result.ok() for result in schema.get_all_operations()]
    return sorted(found, key=lambda op: op.method.upper() == "DELETE")


def is_oauth(operation: APIOperation) -> bool:
    """An operation of the authorization server (``oauth/openapi.py`` tags them)."""
    return "oauth" in (operation.tags or [])


def test_pan(rng: random.Random) -> str:
    """A Luhn-valid Visa number the simulator approves, new to the vault."""
    partial = "4" + "".join(rng.choice("0123456789") for _ in range(14))
    return partial + luhn_check_digit(partial)


test_pan.__test__ = False  # type: ignore[attr-defined]


class Caller:
    """Sends a case with the fuzz account's token and validates the answer."""

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials
        self.session = requests.Session()

    def call(self, case: Case) -> Any:
        if is_oauth(case.operation):
            # The authorization server's own paths: the case's form (and any Basic
            # header it drew) is the client authentication; no bearer token.
            return case.call(session=self.session, timeout=60)
        response = case.call(session=self.session, headers=self.credentials.headers(), timeout=60)
        if response.status_code == 401:
            # The fuzzer may have deleted, rotated or demoted its own account.
            self.credentials.renew()
            response = case.call(
                session=self.session, headers=self.credentials.headers(), timeout=60
            )
        return response

    def send(self, case: Case) -> Any:
        response = self.call(case)
        case.validate_response(response, checks=CHECKS)
        return response

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = f"{self.credentials.server.url}{path}"
        headers = {**self.credentials.headers(), **kwargs.pop("headers", {})}
        return self.session.request(method, url, headers=headers, timeout=60, **kwargs)


def seed(caller: Caller, rng: random.Random) -> dict[str, str]:
    """Real resources of each kind, so that path parameters reach past the 404s."""
    creds = caller.credentials
    org = creds.org_id

    def created(response: requests.Response) -> dict[str, Any]:
        assert response.status_code in (200, 201, 202), response.text
        body: dict[str, Any] = response.json()
        return body

    card = created(
        caller.api("POST", "/cards", json={"pan": test_pan(rng), "exp_month": 12, "exp_year": 2031})
    )
    spare = created(
        caller.api("POST", "/cards", json={"pan": test_pan(rng), "exp_month": 1, "exp_year": 2032})
    )
    token = created(
        caller.api(
            "POST",
            "/network-tokens",
            json={"pan_alias": spare["pan_alias"], "exp_month": 1, "exp_year": 2032},
        )
    )
    endpoint = created(
        caller.api(
            "POST",
            "/webhooks",
            json={"url": "http://127.0.0.1:9/hook", "events": ["network_token.activated"]},
        )
    )
    job = created(
        caller.api(
            "POST",
            "/network-tokens/bulk",
            data=f"pan_alias,exp_month,exp_year\n{card['pan_alias']},12,2031\n",
            headers={"Content-Type": "text/csv"},
        )
    )
    account = created(
        caller.api(
            "POST",
            f"/organizations/{org}/service-accounts",
            json={"name": "seeded", "scopes": ["cards:read"], "vault_ids": [creds.vault_id]},
        )
    )
    return {
        "org_id": org,
        "card_id": card["id"],
        "pan_alias": token["pan_alias"],
        "endpoint_id": endpoint["id"],
        "job_id": job["id"],
        "client_id": account["client_id"],
        "member": account["member"],
    }


CONSTRAINED = (
    '"integer"',
    '"number"',
    '"boolean"',
    '"array"',
    '"object"',
    '"enum"',
    '"pattern"',
    "Length",
    "minimum",
    "maximum",
    "Items",
)


def modes(operation: APIOperation) -> list[GenerationMode]:
    """Invalid cases only where something can be invalid: a body, or a parameter of
    a constrained type (a free string cannot be mistyped; Hypothesis would search
    for seconds before giving up)."""
    constrained = any(
        any(word in json.dumps(p.definition.get("schema", {})) for word in CONSTRAINED)
        for p in operation.iter_parameters()
    )
    if len(operation.body) or constrained:
        return list(MODES)
    return [GenerationMode.POSITIVE]


def strategy(
    operation: APIOperation, mode: GenerationMode, seeds: dict[str, str]
) -> st.SearchStrategy[Case]:
    """Cases with generated path parameters, and as many with the seeded resources."""
    names = {p.name for p in operation.path_parameters}
    generated = operation.as_strategy(generation_mode=mode)
    pinned = {name: seeds[name] for name in names if name in seeds}
    if not pinned:
        return generated
    return st.one_of(generated, operation.as_strategy(generation_mode=mode, path_parameters=pinned))


class CaseFailed(AssertionError):
    """A case failed its checks; the message ends with a request that reproduces it."""


def reproduce(case: Case) -> str:
    return case.as_curl_command(headers={"Authorization": "Bearer $TOKEN"})


def run_cases(
    strategy: st.SearchStrategy[Case], examples: int, seed: int, send: Callable[[Case], Any]
) -> int:
    """Send ``examples`` cases; returns how many ran. A failing case is shrunk by
    Hypothesis and raised as :class:`CaseFailed` with its smallest form."""
    ran = 0
    failing: list[Case] = []

    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        print_blob=False,
    )
    @hypothesis.seed(seed)
    @hypothesis.given(case=strategy)
    def run(case: Case) -> None:
        nonlocal ran
        ran += 1
        try:
            send(case)
        except FAILED:
            failing.append(case)
            raise

    try:
        run()
    except hypothesis.errors.Unsatisfiable:
        # Nothing to negate: an operation without parameters or body has no invalid form.
        assert not failing
    except FAILED as error:
        if not failing:
            raise
        raise CaseFailed(f"{error}\n\nReproduce with:\n  {reproduce(failing[-1])}") from None
    return ran

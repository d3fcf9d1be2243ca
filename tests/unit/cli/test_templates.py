"""Service-account templates: whatever a ``--var`` holds, the YAML says exactly that."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from cardvault.cli.templates import TemplateError, known, parse_vars, render

# What a shell can pass in argv: any text without NUL (surrogates stand for bytes that
# are not UTF-8, as Python decodes argv).
ARGV_TEXT = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)))


@pytest.mark.parametrize("template", known("service-account"))
@given(vault_id=ARGV_TEXT)
def test_a_variable_cannot_change_the_documents_shape(template: str, vault_id: str) -> None:
    rendered = render("service-account", template, {"vault_id": vault_id, "name": vault_id})
    document = yaml.safe_load(rendered)

    assert set(document) == {"apiVersion", "kind", "data"}
    assert document["kind"] == "ServiceAccount"
    annotations = document["data"].get("annotations", {})
    assert set(annotations.values()) <= {vault_id}
    assert all(
        isinstance(scope, dict) and set(scope) == {"name"} for scope in document["data"]["scopes"]
    )


@given(key=st.from_regex(r"[a-z_]{1,12}", fullmatch=True), value=ARGV_TEXT)
def test_parse_vars_keeps_everything_after_the_first_equals_sign(key: str, value: str) -> None:
    assert parse_vars([f"{key}={value}"]) == {key: value}


@given(pair=ARGV_TEXT.filter(lambda text: "=" not in text or text.startswith("=")))
def test_parse_vars_refuses_a_pair_without_a_name(pair: str) -> None:
    with pytest.raises(TemplateError, match="--var takes NAME=VALUE"):
        parse_vars([pair])

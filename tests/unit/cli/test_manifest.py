"""The ServiceAccount document: parsing, validation and the printed credentials."""

from __future__ import annotations

import pytest

from cardvault.cli import manifest, templates

CALM = templates.render("service-account", "calm", {"vault_id": "vlt_1"})


def test_calm_template_becomes_the_api_body() -> None:
    body = manifest.request_body(manifest.load(CALM))
    assert body == {
        "name": "calm",
        "scopes": ["cards:write", "network-tokens:write"],
        "annotations": {"vgs.io/vault-id": "vlt_1"},
    }


def test_printed_credentials_keep_the_shape_without_annotations() -> None:
    printed = manifest.dump(manifest.with_credentials(manifest.load(CALM), "cv-1", "cvs_2"))
    assert printed == (
        "apiVersion: 1.0.0\nkind: ServiceAccount\ndata:\n  name: calm\n  scopes:\n"
        "    - name: cards:write\n    - name: network-tokens:write\n"
        "  clientId: cv-1\n  clientSecret: cvs_2\n"
    )


def test_optional_fields() -> None:
    document = manifest.load(
        "kind: ServiceAccount\ndata:\n  name: x\n  scopes: [cards:read]\n"
        "  vaults: [vlt_a, vlt_b]\n  accessTokenLifespan: 900\n"
    )
    body = manifest.request_body(document)
    assert body["vault_ids"] == ["vlt_a", "vlt_b"]
    assert body["access_token_lifespan"] == 900


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- just\n- a list\n", "the document must be a mapping"),
        ("kind: Vault\ndata: {}\n", "kind: expected ServiceAccount"),
        ("kind: ServiceAccount\n", "data: a mapping"),
        ("data: {name: x}\n", "data.scopes"),
        ("data: {name: x, scopes: [{nom: y}]}\n", "data.scopes: each scope"),
        ("data: {scopes: [a]}\n", "data.name"),
        ("data: {name: x, scopes: [a], accessTokenLifespan: '5m'}\n", "accessTokenLifespan"),
        ("data: {name: x, scopes: [a], annotations: [1]}\n", "data.annotations"),
        ("data: {name: x, scopes: [a], vaults: vlt}\n", "data.vaults"),
        ("data: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_documents_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(manifest.ManifestError, match=message):
        manifest.request_body(manifest.load(text))


def test_template_values_cannot_break_the_yaml() -> None:
    rendered = templates.render("service-account", "calm", {"vault_id": 'a"\nname: evil'})
    document = manifest.load(rendered)
    assert document["data"]["name"] == "calm"
    assert document["data"]["annotations"]["vgs.io/vault-id"] == 'a"\nname: evil'


def test_every_shipped_template_is_a_valid_document() -> None:
    for name in templates.known("service-account"):
        body = manifest.request_body(
            manifest.load(templates.render("service-account", name, {"vault_id": "vlt_1"}))
        )
        assert body["scopes"]


def test_parse_vars() -> None:
    assert templates.parse_vars(["a=1", "b=x=y"]) == {"a": "1", "b": "x=y"}
    with pytest.raises(templates.TemplateError, match="NAME=VALUE"):
        templates.parse_vars(["novalue"])

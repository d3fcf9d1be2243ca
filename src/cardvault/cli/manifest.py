"""The ServiceAccount YAML document of ``apply service-account`` (DESIGN §1 steps 1-2)."""

from __future__ import annotations

import copy
from typing import Any

import yaml

VAULT_ANNOTATIONS = ("vgs.io/vault-id", "cardvault.io/vault-id")


class ManifestError(Exception):
    """The document is not a valid ServiceAccount; the message names the field."""


class _IndentedDumper(yaml.SafeDumper):
    """Indents list items under their key, as the reference documents are written."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def dump(document: Any) -> str:
    return yaml.dump(document, Dumper=_IndentedDumper, sort_keys=False, allow_unicode=True)


def load(text: str) -> dict[str, Any]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ManifestError(f"not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise ManifestError("the document must be a mapping with apiVersion, kind and data")
    if document.get("kind", "ServiceAccount") != "ServiceAccount":
        raise ManifestError(f"kind: expected ServiceAccount, got {document.get('kind')!r}")
    if not isinstance(document.get("data"), dict):
        raise ManifestError("data: a mapping with name and scopes is required")
    return document


def _scopes(data: dict[str, Any]) -> list[str]:
    scopes = data.get("scopes")
    if not isinstance(scopes, list) or not scopes:
        raise ManifestError("data.scopes: a non-empty list is required")
    names = []
    for item in scopes:
        name = item.get("name") if isinstance(item, dict) else item
        if not isinstance(name, str) or not name:
            raise ManifestError("data.scopes: each scope is a string or {name: scope}")
        names.append(name)
    return names


def request_body(document: dict[str, Any]) -> dict[str, Any]:
    """The management API's create body for this document."""
    data = document["data"]
    name = data.get("name")
    if not isinstance(name, str):
        raise ManifestError("data.name: a string is required")
    body: dict[str, Any] = {"name": name, "scopes": _scopes(data)}
    annotations = data.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise ManifestError("data.annotations: a mapping is required")
    body["annotations"] = {str(k): str(v) for k, v in annotations.items()}
    vaults = data.get("vaults")
    if vaults is not None:
        if not isinstance(vaults, list) or not all(isinstance(v, str) for v in vaults):
            raise ManifestError("data.vaults: a list of vault ids is required")
        body["vault_ids"] = vaults
    lifespan = data.get("accessTokenLifespan")
    if lifespan is not None:
        if not isinstance(lifespan, int) or isinstance(lifespan, bool):
            raise ManifestError("data.accessTokenLifespan: whole seconds are required")
        body["access_token_lifespan"] = lifespan
    return body


def with_credentials(document: dict[str, Any], client_id: str, secret: str) -> dict[str, Any]:
    """The same document without annotations and with clientId and clientSecret added."""
    result = copy.deepcopy(document)
    result["data"].pop("annotations", None)
    result["data"]["clientId"] = client_id
    result["data"]["clientSecret"] = secret
    return result

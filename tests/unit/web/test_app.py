"""``openapi_document``: the served document, made without a database or a server."""

from __future__ import annotations

import logging
from pathlib import Path

from cardvault.app import openapi_document
from cardvault.settings import Settings


def test_the_document_is_built_without_touching_the_installation(tmp_path: Path) -> None:
    data_dir = tmp_path / "never-created"
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    document = openapi_document(Settings(data_dir=data_dir, realm="shop"))
    assert not data_dir.exists()
    assert (root.handlers, root.level) == (handlers, level)
    assert document["info"]["title"] == "cardvault"
    token = document["paths"]["/auth/realms/{realm}/protocol/openid-connect/token"]["post"]
    assert token["parameters"][0]["schema"]["enum"] == ["shop"]
    assert "/cards" in document["paths"]

"""MkDocs hooks: the two reference pages are generated from the code.

- ``configuration.md`` from the fields of :class:`cardvault.settings.Settings`
  (their types, defaults, bounds and descriptions);
- ``api.md`` from :func:`cardvault.app.openapi_document`, the document the
  service serves at ``/openapi.json``.

Every build renders both pages afresh, so the site always shows the code as it is.
The same pages are committed under ``docs/`` so that they can be read where the
repository is browsed; a build in which a committed copy differs from what the code
gives warns (and ``mkdocs build --strict``, hence ``make test``, fails). ``make docs``
rewrites the committed copies (``python docs/hooks.py``) before it builds.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

DOCS = Path(__file__).resolve().parent
log = logging.getLogger("mkdocs.hooks.reference")


# --------------------------------------------------------------------------- shared


def cell(text: object) -> str:
    """Text for one Markdown table cell: one line, no stray column separator."""
    return " ".join(str(text).split()).replace("|", "\\|")


def one_line(text: object) -> str:
    return " ".join(str(text).split())


def code(text: object) -> str:
    return f"`{text}`"


@contextmanager
def no_cardvault_environment() -> Iterator[None]:
    """The references document the defaults, not the settings of the machine that
    builds them: ``CARDVAULT_*`` variables are hidden meanwhile."""
    saved = {k: v for k, v in os.environ.items() if k.upper().startswith("CARDVAULT_")}
    for name in saved:
        del os.environ[name]
    try:
        yield
    finally:
        os.environ.update(saved)


# --------------------------------------------------------------------------- configuration

CONFIGURATION_INTRO = """\
# Configuration

Every setting is an environment variable with the prefix `{prefix}`. Values are
converted and checked once, at start-up: an invalid value stops `cardvault serve`
(and every local command) with one clear line naming the variable. Nothing else in
the code reads the environment.

The CLI's remote commands also read `CARDVAULT_URL` (or `--url`, default
`http://127.0.0.1:8000`), `CARDVAULT_CLIENT_ID` and `CARDVAULT_CLIENT_SECRET`
(see [the CLI](cli.md)).

This page is generated from the settings' own descriptions
(`src/cardvault/settings.py`); "empty" means the default is derived as the
description says.

| variable | type and bounds | default | description |
| --- | --- | --- | --- |
"""

_BOUNDS = (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<"))


def type_name(annotation: Any) -> str:
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(code(value) for value in get_args(annotation))
    return {str: "text", int: "integer", float: "number", bool: "boolean", Path: "path"}.get(
        annotation, getattr(annotation, "__name__", str(annotation))
    )


def default_text(value: Any) -> str:
    if value == "":
        return "empty"
    if isinstance(value, Path) and not value.is_absolute():
        return code(f"./{value}")
    if isinstance(value, bool):
        return code(str(value).lower())
    if isinstance(value, float) and value.is_integer() and value >= 1000:
        return code(f"{value:.0f}")
    return code(value)


def bounds_text(metadata: list[Any]) -> str:
    found = []
    for constraint in metadata:
        for attribute, sign in _BOUNDS:
            limit = getattr(constraint, attribute, None)
            if limit is not None:
                found.append(f"{sign}&nbsp;{limit}")
    return f"({', '.join(found)})" if found else ""


def configuration_page() -> str:
    from cardvault.settings import Settings

    prefix = str(Settings.model_config.get("env_prefix", ""))
    lines = [CONFIGURATION_INTRO.format(prefix=prefix)]
    for name, field in Settings.model_fields.items():
        lines.append(
            "| "
            + " | ".join(
                (
                    code(prefix + name.upper()),
                    f"{type_name(field.annotation)} {bounds_text(field.metadata)}".strip(),
                    default_text(field.default),
                    cell(field.description or ""),
                )
            )
            + " |\n"
        )
    return "".join(lines)


# --------------------------------------------------------------------------- API

API_INTRO = """\
# API reference

Every operation of the service, generated from the OpenAPI document it serves at
`/openapi.json` ({title} {version}; interactive at `/docs`). The guides tell what
the calls are for: [service accounts and tokens](service-accounts.md),
[the vault API](vault-api.md), [webhooks](webhooks.md), [events](events.md),
[bulk enrolment](bulk.md). Bodies are JSON unless a media type is named.
"""
_METHODS = ("get", "post", "put", "patch", "delete")
JSON = "application/json"
COMMON = "common-errors"
_REF = "#/components/schemas/"


def anchor(name: str) -> str:
    """The anchor MkDocs (Python-Markdown's ``toc``) gives a heading ``name``."""
    from markdown.extensions.toc import slugify

    return str(slugify(name, "-"))


def schema_text(schema: dict[str, Any]) -> str:
    """A short human reading of a JSON schema: ``[CardOut](#cardout)``, ``text ≤ 32``…"""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix(_REF)
        return f"[{code(name)}](#{anchor(name)})"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"]
            text = " or ".join(schema_text(s) for s in options)
            return text + (" or null" if len(options) < len(schema[key]) else "")
    if "enum" in schema:
        return "one of " + ", ".join(code(v) for v in schema["enum"])
    kind = schema.get("type", "any")
    if isinstance(kind, list):  # JSON Schema 2020-12: ["string", "null"]
        kinds = [k for k in kind if k != "null"]
        text = " or ".join(schema_text({**schema, "type": k}) for k in kinds)
        return text + (" or null" if len(kinds) < len(kind) else "")
    if kind == "array":
        return f"list of {schema_text(schema.get('items', {}))}"
    text = {"string": "text", "object": "object", "boolean": "boolean"}.get(kind, kind)
    if schema.get("format"):
        text += f" ({schema['format']})"
    return text + constraints(schema)


def constraints(schema: dict[str, Any]) -> str:
    found = []
    for key, sign in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤")):
        if key in schema:
            value = schema[key]
            found.append(f"{sign} {int(value) if float(value).is_integer() else value}")
    if "minLength" in schema or "maxLength" in schema:
        low, high = schema.get("minLength", 0), schema.get("maxLength", "…")
        found.append(f"length {low} to {high}")
    if "pattern" in schema:
        found.append(f"matching {code(schema['pattern'])}")
    if "default" in schema:
        found.append(f"default {code(json.dumps(schema['default']))}")
    return f" ({', '.join(found)})" if found else ""


def security_text(requirements: list[dict[str, list[str]]] | None) -> str:
    if not requirements:
        return "none"
    options = []
    for requirement in requirements:
        if not requirement:
            options.append("none")
            continue
        for scheme, scopes in requirement.items():
            scoped = f" (scopes {', '.join(code(s) for s in scopes)})" if scopes else ""
            options.append(f"[{code(scheme)}](#security){scoped}")
    return " or ".join(options)


def parameters_text(parameters: list[dict[str, Any]]) -> list[str]:
    shown = []
    for parameter in parameters:
        name = code(parameter["name"])
        schema = parameter.get("schema", {})
        needed = "" if parameter.get("required") else ", optional"
        text = f"{parameter['in']} {name}: {schema_text(schema)}{needed}"
        if parameter.get("description"):
            text += f" — {parameter['description']}"
        shown.append(text)
    return shown


def body_text(body: dict[str, Any]) -> str:
    content = body.get("content", {})
    if list(content) == [JSON]:
        return media_text(content)
    return "; ".join(f"{media_text({kind: media})}" for kind, media in content.items())


def media_text(content: dict[str, Any]) -> str:
    """Schemas and media types of a body; JSON, the usual one, goes without saying."""
    schemas = sorted({schema_text(media.get("schema", {})) for media in content.values()})
    if list(content) == [JSON]:
        return " / ".join(schemas)
    return f"{' / '.join(schemas)} as {', '.join(code(kind) for kind in content)}"


def response_schema(response: dict[str, Any]) -> str:
    content = response.get("content", {})
    return media_text(content) if content else "no body"


def error_codes(document: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """The codes an error schema names (OAuth's ``error`` enum)."""
    if "$ref" in schema:
        schema = document["components"]["schemas"].get(schema["$ref"].removeprefix(_REF), {})
    codes = schema.get("properties", {}).get("error", {}).get("enum", [])
    return [str(c) for c in codes]


def common_errors(operations: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """The errors most operations share, status → (description, body): listed once."""
    seen: dict[tuple[str, str, str], int] = {}
    for operation in operations:
        for status, response in operation["responses"].items():
            if status[0] in "45":
                key = (status, response.get("description", ""), response_schema(response))
                seen[key] = seen.get(key, 0) + 1
    common: dict[str, tuple[str, str]] = {}
    for (status, description, body), count in sorted(seen.items(), key=lambda kv: -kv[1]):
        if count > len(operations) // 2 and status not in common:
            common[status] = (description, body)
    return dict(sorted(common.items()))


def operation_lines(
    document: dict[str, Any],
    method: str,
    paths: list[str],
    operation: dict[str, Any],
    common: dict[str, tuple[str, str]],
) -> list[str]:
    lines = [f"### {method.upper()} {paths[0]}", ""]
    summary = operation.get("summary", "")
    description = operation.get("description", "")
    lines.append(" ".join(filter(None, (f"**{summary}.**" if summary else "", description))))
    lines.append("")
    facts: list[tuple[str, list[str]]] = []
    if len(paths) > 1:
        facts.append(("Also at", [", ".join(code(p) for p in paths[1:])]))
    facts.append(("Security", [security_text(operation.get("security"))]))
    if operation.get("parameters"):
        facts.append(("Parameters", parameters_text(operation["parameters"])))
    if operation.get("requestBody"):
        facts.append(("Request body", [body_text(operation["requestBody"])]))
    answers, shared, own = [], [], []
    for status, response in sorted(operation["responses"].items()):
        description = response.get("description", "")
        body = response_schema(response)
        if status[0] not in "45":
            answers.append(f"{status} {body} — {description}")
        elif common.get(status) == (description, body):
            shared.append(status)
        else:
            schema = next(iter(response.get("content", {}).values()), {}).get("schema", {})
            codes = error_codes(document, schema)
            named = f" ({', '.join(code(c) for c in codes)})" if codes else ""
            own.append(f"{status} {body}{named} — {description}")
    facts.append(("Answers", answers))
    if shared:
        own.append(f"[common errors](#{COMMON}): {', '.join(shared)}")
    if own:
        facts.append(("Errors", own))
    for name, items in facts:
        if len(items) == 1:
            lines.append(f"- **{name}:** {one_line(items[0])}")
        else:
            lines.append(f"- **{name}:**")
            lines += [f"    - {one_line(item)}" for item in items]
    return [*lines, ""]


def grouped(document: dict[str, Any]) -> dict[str, list[tuple[str, list[str], dict[str, Any]]]]:
    """Operations by tag, in the document's order; an operation served under several
    paths (the Keycloak layouts with and without ``/auth``) is listed once."""
    tags: dict[str, list[tuple[str, list[str], dict[str, Any]]]] = {}
    seen: dict[str, list[str]] = {}
    for path, item in document.get("paths", {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            same = {k: v for k, v in operation.items() if k != "operationId"}
            key = method + json.dumps(same, sort_keys=True)
            if key in seen:
                seen[key].append(path)
                continue
            seen[key] = [path]
            tag = (operation.get("tags") or ["other"])[0]
            tags.setdefault(tag, []).append((method, seen[key], operation))
    return tags


def schema_lines(name: str, schema: dict[str, Any]) -> list[str]:
    lines = [f"### {name}", ""]
    if schema.get("description"):
        lines += [cell(schema["description"]), ""]
    properties = schema.get("properties", {})
    if not properties:
        return [*lines, schema_text(schema), ""]
    required = set(schema.get("required", []))
    lines += ["| field | type | required | description |", "| --- | --- | --- | --- |"]
    for field, spec in properties.items():
        lines.append(
            f"| {code(field)} | {cell(schema_text(spec))} | {'yes' if field in required else ''} "
            f"| {cell(spec.get('description', ''))} |"
        )
    return [*lines, ""]


def api_page(document: dict[str, Any]) -> str:
    info = document.get("info", {})
    operations = [op for ops in grouped(document).values() for _m, _p, op in ops]
    common = common_errors(operations)
    lines = [API_INTRO.format(title=info.get("title", ""), version=info.get("version", ""))]
    lines += ["## Security", ""]
    for scheme, spec in document.get("components", {}).get("securitySchemes", {}).items():
        kind = " ".join(filter(None, (spec.get("scheme"), spec.get("bearerFormat"))))
        lines.append(f"- {code(scheme)} ({spec.get('type')} {kind}): {spec.get('description', '')}")
    lines += [
        "",
        "## Common errors",
        "",
        "Most operations can refuse with these (each operation lists its own):",
        "",
    ]
    lines += ["| status | body | meaning |", "| --- | --- | --- |"]
    lines += [f"| {s} | {cell(body)} | {cell(d)} |" for s, (d, body) in common.items()]
    lines.append("")
    for tag, entries in grouped(document).items():
        lines += [f"## {tag[:1].upper()}{tag[1:]}", ""]
        for method, paths, operation in entries:
            lines += operation_lines(document, method, paths, operation, common)
    lines += ["## Schemas", ""]
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        lines += schema_lines(name, schema)
    page = "\n".join(lines).rstrip() + "\n"
    check_anchors(page)
    return page


def check_anchors(page: str) -> None:
    """Two headings with one anchor would send links to the first: refuse it."""
    seen: set[str] = set()
    for line in page.splitlines():
        if line.startswith("#"):
            name = anchor(line.lstrip("#").strip())
            if name in seen:
                raise ValueError(f"two headings of the API reference share the anchor {name!r}")
            seen.add(name)


def api_document() -> dict[str, Any]:
    from cardvault.app import openapi_document

    with no_cardvault_environment():
        return openapi_document()


# --------------------------------------------------------------------------- the pages

PAGES: dict[str, Callable[[], str]] = {
    "configuration.md": configuration_page,
    "api.md": lambda: api_page(api_document()),
}


def stale_pages(pages: dict[str, str]) -> list[str]:
    return [
        name
        for name, content in pages.items()
        if not (DOCS / name).exists() or (DOCS / name).read_text(encoding="utf-8") != content
    ]


def write_pages() -> list[str]:
    """Rewrite the committed copies that differ from the code; their names."""
    pages = {name: render() for name, render in PAGES.items()}
    changed = stale_pages(pages)
    for name in changed:
        (DOCS / name).write_text(pages[name], encoding="utf-8")
    return changed


def on_files(files: Any, config: Any) -> Any:
    """MkDocs: serve each reference page as the code gives it; warn if the committed
    copy differs."""
    from mkdocs.structure.files import File

    for name, render in PAGES.items():
        content = render()
        if name in stale_pages({name: content}):
            log.warning("docs/%s is out of date with the code: run `make docs`", name)
        committed = files.get_file_from_path(name)
        if committed is not None:
            files.remove(committed)
        files.append(File.generated(config, name, content=content))
    return files


if __name__ == "__main__":
    for changed in write_pages():
        print(f"wrote docs/{changed}", file=sys.stderr)

"""Service-account templates: YAML files rendered with Jinja2 (strict undefined)."""

from __future__ import annotations

from pathlib import Path

import jinja2
import yaml
from jinja2 import meta

TEMPLATES = Path(__file__).with_name("templates")
SUFFIX = ".yaml.j2"


class TemplateError(Exception):
    """A template is unknown or a variable is missing; the message says what to do."""


def known(kind: str) -> list[str]:
    return sorted(p.name.removesuffix(SUFFIX) for p in (TEMPLATES / kind).glob(f"*{SUFFIX}"))


def render(kind: str, name: str, variables: dict[str, str]) -> str:
    names = known(kind)
    if name not in names:
        raise TemplateError(f"unknown template {name!r}; known templates: {', '.join(names)}")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES / kind),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 (YAML, not HTML; values go through the yaml filter)
    )
    env.filters["yaml"] = yaml_scalar
    filename = name + SUFFIX
    assert env.loader is not None
    source = env.loader.get_source(env, filename)[0]
    missing = sorted(meta.find_undeclared_variables(env.parse(source)) - set(variables))
    if missing:
        hints = " ".join(f"--var {var}=value" for var in missing)
        raise TemplateError(f"template {name!r} needs {', '.join(missing)}: pass {hints}")
    return env.get_template(filename).render(**variables)


def yaml_scalar(value: str) -> str:
    """``value`` as one double-quoted YAML scalar that reads back exactly as ``value``
    (JSON's escapes are not enough: YAML 1.1 readers split astral characters escaped as
    surrogate pairs, and fold NEL and the Unicode line separators)."""
    return yaml.safe_dump(value, default_style='"', width=float("inf")).rstrip("\n")


def parse_vars(pairs: list[str]) -> dict[str, str]:
    variables: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise TemplateError(f"--var takes NAME=VALUE, got {pair!r}")
        variables[key] = value
    return variables

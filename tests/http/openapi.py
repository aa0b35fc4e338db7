"""OpenAI's own OpenAPI schemas (shared/specs/openai-openapi.yaml) as JSON Schema validators."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

_HERE = Path(__file__).resolve()
# shared/ stands beside the checkout (or beside the folder of git worktrees holding it).
SPEC = next(
    (
        candidate
        for parent in _HERE.parents[2:5]
        if (candidate := parent / "shared" / "specs" / "openai-openapi.yaml").exists()
    ),
    _HERE.parents[3] / "shared" / "specs" / "openai-openapi.yaml",
)


def _nullable_to_anyof(node: Any) -> Any:
    """The spec writes 3.0-style `nullable: true`; JSON Schema 2020-12 wants `anyOf [.., null]`."""
    if isinstance(node, list):
        return [_nullable_to_anyof(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {k: _nullable_to_anyof(v) for k, v in node.items()}
    if node.pop("nullable", False):
        return {"anyOf": [node, {"type": "null"}]}
    return node


def _spec() -> dict[str, Any]:
    if not SPEC.exists():
        pytest.skip(f"OpenAI's OpenAPI spec is not at {SPEC} (shared/ must stand beside the checkout)")
    return _load_spec()


@functools.cache
def _load_spec() -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with SPEC.open("rb") as handle:
        raw = yaml.load(handle, Loader=loader)
    schemas = _nullable_to_anyof(raw["components"]["schemas"])
    return {"components": {"schemas": schemas}}


def validator(name: str) -> Draft202012Validator:
    spec = _spec()
    resource = Resource.from_contents(spec, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource("spec", resource)
    schema = {"$ref": f"spec#/components/schemas/{name}"}
    return Draft202012Validator(schema, registry=registry)


def errors(name: str, instance: object) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(name).iter_errors(instance)
    ]

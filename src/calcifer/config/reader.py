"""The YAML reader every section of the config file is read with: values checked where they stand,
every problem raised as `ConfigFileError` naming the file and the line."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from decimal import Decimal, InvalidOperation

import yaml

Node = yaml.Node
_ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m)?\s*$")
_SCALE = {"ms": Decimal("0.001"), "s": Decimal(1), "m": Decimal(60), None: Decimal(1)}
NULL_TAG = "tag:yaml.org,2002:null"
BOOL_TAG = "tag:yaml.org,2002:bool"


class ConfigFileError(ValueError):
    """A problem in the config file, named with the file and the line: start-up stops on it."""

    def __init__(self, path: str, line: int | None, problem: str) -> None:
        where = f"{path}, line {line}" if line is not None else path
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.line = line
        self.problem = problem


def line_of(node: Node) -> int:
    return int(node.start_mark.line) + 1


class Reader:
    """Reads one file's composed YAML nodes into checked values."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, node: Node, problem: str) -> ConfigFileError:
        return ConfigFileError(self.path, line_of(node), problem)

    def mapping(self, node: Node, where: str, allowed: Collection[str] | None = None) -> dict[str, Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{where} must be a mapping")
        out: dict[str, Node] = {}
        for key_node, value in node.value:
            key = self.text(key_node, f"a key in {where}")
            if key in out:
                raise self.fail(key_node, f"{where} has {key!r} twice")
            if allowed is not None and key not in allowed:
                raise self.fail(key_node, f"{where} has unknown key {key!r} (allowed: {', '.join(allowed)})")
            out[key] = value
        return out

    def sequence(self, node: Node, where: str) -> list[Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, f"{where} must be a list")
        return list(node.value)

    def text(self, node: Node, where: str) -> str:
        if (
            not isinstance(node, yaml.ScalarNode)
            or node.tag in (NULL_TAG, BOOL_TAG)
            or not str(node.value).strip()
        ):
            raise self.fail(node, f"{where} must be a non-empty string")
        return str(node.value).strip()

    def number(self, node: Node, where: str) -> Decimal:
        if isinstance(node, yaml.ScalarNode) and node.tag not in (NULL_TAG, BOOL_TAG):
            try:
                value = Decimal(str(node.value).strip())
            except InvalidOperation:
                value = Decimal("NaN")
            if value.is_finite() and value >= 0:
                return value
        raise self.fail(node, f"{where} must be a number >= 0")

    def count(self, fields: Mapping[str, Node], key: str, where: str) -> int | None:
        """A whole number >= 1 under `key`, or None when the key is absent."""
        if key not in fields:
            return None
        value = self.number(fields[key], f"{where}.{key}")
        if value != value.to_integral_value() or value < 1:
            raise self.fail(fields[key], f"{where}.{key} must be a whole number >= 1")
        return int(value)

    def seconds(self, node: Node, where: str) -> float:
        match = _DURATION.match(str(node.value)) if isinstance(node, yaml.ScalarNode) else None
        if match is None or node.tag == BOOL_TAG:
            raise self.fail(node, f"{where} must be a duration such as 30, 30s, 500ms or 2m")
        value = Decimal(match.group(1)) * _SCALE[match.group(2)]
        if value <= 0:
            raise self.fail(node, f"{where} must be more than 0")
        return float(value)

    def flag(self, node: Node) -> bool | None:
        """A YAML boolean's value, or None when the node is not a boolean."""
        if isinstance(node, yaml.ScalarNode) and node.tag == BOOL_TAG:
            return str(node.value).lower() in ("true", "yes", "on", "y")
        return None

    def env_name(self, node: Node, where: str) -> str:
        value = self.text(node, where)
        if not _ENV_VAR.match(value):  # never echo it: it may be a key pasted in by mistake
            raise self.fail(node, f"{where} must name an environment variable (like GROQ_API_KEY), not a key")
        return value

    def url(self, node: Node, where: str) -> str:
        value = self.text(node, where)
        if not re.match(r"^https?://[^/\s]+", value):
            raise self.fail(node, f"{where} must be an http:// or https:// URL")
        return value

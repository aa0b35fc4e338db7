"""The `bedrock:` section of the config file: Bedrock deployments, each in its own region (and, if
need be, with its own AWS profile), for routes that spread or fail over across regions.

```yaml
bedrock:
  - name: bedrock-eu
    region: eu-central-1
    profile: prod            # optional: a profile of the shared AWS files (else the standard chain)
    claim: false             # reached through routing deployments and bedrock-eu/<model> only
    models: [anthropic.claude-3-5-sonnet-20240620-v1:0]
```
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

from calcifer.config.providers import ModelSpec, ProviderSections
from calcifer.config.reader import Node, line_of

_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")


@dataclass(frozen=True, slots=True)
class BedrockSpec:
    name: str
    region: str
    profile: str | None
    base_url: str | None
    models: tuple[ModelSpec, ...]
    timeout: float | None
    max_retries: int | None
    line: int
    claim: bool = True


def read_bedrock(sections: ProviderSections, node: Node) -> list[BedrockSpec]:
    r = sections.r
    nodes = [node] if isinstance(node, yaml.MappingNode) else r.sequence(node, "bedrock")
    specs = []
    for i, item in enumerate(nodes):
        where = f"bedrock[{i}]"
        keys = ("name", "region", "profile", "base_url", "models", "timeout", "max_retries", "claim")
        fields = r.mapping(item, where, keys)
        claim = sections.claiming = sections.claim(fields, where)
        for required in ("name", "region", "models"):
            if required not in fields:
                raise r.fail(item, f"{where} needs {required!r}")
        name = sections.provider_name(fields["name"], where)
        region = r.text(fields["region"], f"{where}.region")
        if not _REGION.match(region):
            raise r.fail(fields["region"], f"{where}.region {region!r} is not an AWS region (e.g. us-east-1)")
        profile = r.text(fields["profile"], f"{where}.profile") if "profile" in fields else None
        base_url = r.url(fields["base_url"], f"{where}.base_url") if "base_url" in fields else None
        models = sections.model_list(fields["models"], f"{where}.models")
        timeout, retries = sections.limits(fields, where)
        specs.append(
            BedrockSpec(name, region, profile, base_url, models, timeout, retries, line_of(item), claim)
        )
    return specs

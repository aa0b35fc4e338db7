"""Scrape a gateway's `/metrics` and read it with prometheus_client's own parser."""

from __future__ import annotations

from collections.abc import Mapping

import httpx2 as httpx
from prometheus_client.parser import text_string_to_metric_families


class Scrape:
    """The samples of one scrape: `value(name, **labels)` sums the samples that carry those labels."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples = [
            (sample.name, dict(sample.labels), sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        ]
        self.names = {name for name, _, _ in self.samples}

    def value(self, name: str, **labels: str) -> float:
        return sum(v for n, found, v in self.samples if n == name and _matches(found, labels))

    def labels(self, name: str) -> list[dict[str, str]]:
        return [found for n, found, _ in self.samples if n == name]


def _matches(found: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(found.get(k) == v for k, v in wanted.items())


def scrape(url: str, token: str | None = None) -> Scrape:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(url, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return Scrape(response.text)

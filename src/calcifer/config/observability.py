"""The `metrics:` and `tracing:` sections of the config file.

```yaml
metrics:
  labels: [team]   # add chosen labels to the request, token and cost counters: key, user, team, customer
tracing:
  propagate: false            # send `traceparent` to no upstream (default true: to every upstream) ...
  no_propagate: [bedrock]     # ... or to every upstream but these providers (some reject the header)
```
"""

from __future__ import annotations

from dataclasses import dataclass

from calcifer.config.reader import Node, Reader

METRIC_LABELS = ("key", "user", "team", "customer")


@dataclass(frozen=True, slots=True)
class ObservabilitySpec:
    metric_labels: tuple[str, ...] = ()
    propagate: bool = True
    no_propagate: frozenset[str] = frozenset()


def read_observability(reader: Reader, metrics: Node | None, tracing: Node | None) -> ObservabilitySpec:
    labels: list[str] = []
    if metrics is not None:
        top = reader.mapping(metrics, "metrics", ("labels",))
        if "labels" in top:
            for node in reader.sequence(top["labels"], "metrics.labels"):
                name = reader.text(node, "metrics.labels")
                if name not in METRIC_LABELS:
                    raise reader.fail(
                        node, f"metrics.labels: {name!r} is not one of {', '.join(METRIC_LABELS)}"
                    )
                if name not in labels:
                    labels.append(name)
    propagate = True
    skipped: set[str] = set()
    if tracing is not None:
        top = reader.mapping(tracing, "tracing", ("propagate", "no_propagate"))
        if "propagate" in top:
            flag = reader.flag(top["propagate"])
            if flag is None:
                raise reader.fail(top["propagate"], "tracing.propagate must be true or false")
            propagate = flag
        if "no_propagate" in top:
            skipped = {
                reader.text(n, "tracing.no_propagate")
                for n in reader.sequence(top["no_propagate"], "tracing.no_propagate")
            }
    return ObservabilitySpec(tuple(labels), propagate, frozenset(skipped))

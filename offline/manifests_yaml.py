"""How rendered Kubernetes objects are read and written as YAML: PyYAML's libyaml classes when the
wheel has them (its own documented fast path, the same text as the pure-Python ones), else those."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

# A render reads every `helm template` output and writes every object: with the pure-Python classes
# that was a third of `make render` and of the fast tier's time.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def load_all(text: str) -> list[Any]:
    """Every document of a YAML stream, empty ones dropped (as `kubectl apply` does)."""
    return [doc for doc in yaml.load_all(text, Loader=_LOADER) if doc]


def dump_all(docs: Iterable[Any], *, sort_keys: bool = False) -> str:
    """Documents in block style, keys in the order given unless `sort_keys`."""
    return str(yaml.dump_all(docs, Dumper=_DUMPER, sort_keys=sort_keys, default_flow_style=False))

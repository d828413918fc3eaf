"""Property tests: any broken catalog or stack config ends in the one clear ConfigError
(naming the file), never in another exception or a traceback from inside Pulumi."""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.errors import ConfigError
from config.loading import load_catalog, load_settings
from config.naming import PROJECT
from tests.conftest import fixture_project, fixture_stack_config

BASE_CATALOG = yaml.safe_load((fixture_project() / "catalog.yaml").read_text())
BASE_CONFIG, BASE_SECRET_KEYS = fixture_stack_config("staging")

junk = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False),
    st.text(max_size=80), st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += paths(v, (*prefix, i))
    return out


CATALOG_PATHS = paths(BASE_CATALOG)


@st.composite
def broken_catalogs(draw: st.DrawFn) -> tuple[dict, bool]:
    """A mutated catalog, and whether the mutation is certainly invalid."""
    data = copy.deepcopy(BASE_CATALOG)
    path = draw(st.sampled_from(CATALOG_PATHS))
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    kind = draw(st.sampled_from(["replace", "unknown-field", "delete", "bad-name", "duplicate-env"]))
    certain = True
    if kind == "replace":
        parent[path[-1]] = draw(junk)
        certain = False  # junk can happen to be valid (e.g. a string where a string is expected)
    elif kind == "unknown-field":
        target = parent if isinstance(parent, dict) else data
        target["x-" + draw(st.text("abcdefgh", min_size=1, max_size=8))] = draw(junk)
    elif kind == "delete":
        del parent[path[-1]]
        certain = False  # optional fields may be deleted
    elif kind == "bad-name":
        name = draw(st.one_of(st.text("ABC_ .!/", min_size=1, max_size=10), st.just("a" * 48), st.just("-x")))
        data["services"][name] = copy.deepcopy(data["services"]["graph"])
    else:
        svc = data["services"]["graph"]
        svc.setdefault("env", {})["GRAPH_DATABASE_URL"] = "inline"
    return data, certain


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=broken_catalogs())
def test_broken_catalogs_end_in_the_clear_error(tmp_path_factory, case: tuple[dict, bool]) -> None:
    data, certain = case
    path = tmp_path_factory.mktemp("cat") / "catalog.yaml"
    path.write_text(yaml.safe_dump(data))
    try:
        load_catalog(path)
    except ConfigError as err:
        assert str(err).startswith("catalog.yaml: ")
        assert "Traceback" not in str(err)
    else:
        assert not certain, "an invalid catalog was accepted"


CONFIG_KEYS = sorted(k.split(":", 1)[1] for k in BASE_CONFIG) + [
    "secretSources", "secretValues", "serviceOverrides", "egress", "resourceQuota", "runnerRbac", "typoKey",
]


@settings(max_examples=300, deadline=None)
@given(
    key=st.sampled_from(CONFIG_KEYS),
    value=st.one_of(junk, junk.map(json.dumps), st.text(max_size=40)),
)
def test_broken_stack_configs_end_in_the_clear_error(key: str, value: Any) -> None:
    config = dict(BASE_CONFIG)
    config[f"{PROJECT}:{key}"] = value if isinstance(value, str) else json.dumps(value)
    try:
        load_settings(project_dir=fixture_project(), environment="staging", config=config,
                      secret_keys=[*BASE_SECRET_KEYS, f"{PROJECT}:secretValues"])
    except ConfigError as err:
        assert str(err).startswith("Pulumi.staging.yaml: ")
    else:
        assert key != "typoKey", "an unknown config key was accepted"

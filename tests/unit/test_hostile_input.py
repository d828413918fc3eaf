"""Hostile and malformed files and values: each class ends in one ConfigError that names the file
and the fix, fast -- never a hang, a traceback, or a wrong value accepted.

Together with test_properties.py (600 generated broken values) this runs well over 1,000
generated inputs across catalog.yaml and Pulumi.<stack>.yaml."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.errors import ConfigError
from config.files import MAX_EXPANDED_NODES, load_yaml, stack_config
from config.loading import load_catalog, load_settings
from tests.conftest import fixture_project, settings_for

FILES = ("catalog.yaml", "Pulumi.staging.yaml")
BOUND_SECONDS = 2.0


def copy_project(tmp_path: Path, name: str, content: bytes) -> Path:
    for f in ("Pulumi.yaml", "Pulumi.staging.yaml", "catalog.yaml"):
        (tmp_path / f).write_bytes((fixture_project() / f).read_bytes())
    (tmp_path / name).write_bytes(content)
    return tmp_path


def load(project: Path) -> None:
    config, secret_keys = stack_config("staging", project_dir=project)
    load_settings(project_dir=project, environment="staging", config=config, secret_keys=secret_keys)


def assert_clear_error(project: Path, name: str) -> str:
    started = time.monotonic()
    with pytest.raises(ConfigError) as err:
        load(project)
    assert time.monotonic() - started < BOUND_SECONDS
    message = str(err.value)
    assert message.startswith(f"{name}: ") and len(message) < 2000
    return message


def alias_bomb(depth: int, width: int) -> bytes:
    lines = [f"l0: &l0 [{', '.join(['x'] * width)}]"]
    for i in range(1, depth):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (alias_bomb(9, 9), "anchors and aliases expand"),
        (b"a: &a [*a]\n", "anchors and aliases expand"),
        ("services: {caf\u00e9: 1}\n".encode("latin-1"), "not UTF-8"),
        ("config: {}\n".encode("utf-16"), "not UTF-8"),
        (bytes(range(256)), "not UTF-8"),
        (b"? [a]\n: 1\n", "a key must be a plain value"),
        (b"a: 1\na: 2\n", "line 2: a is given twice"),
        (b"x" * 1_000_001, "refused"),
    ],
    ids=["alias-bomb", "recursive-alias", "latin-1", "utf-16", "random-bytes", "complex-key", "duplicate-key",
         "oversized"],
)
def test_each_hostile_file_class_is_one_clear_message(tmp_path: Path, name: str, content: bytes,
                                                     expected: str) -> None:
    message = assert_clear_error(copy_project(tmp_path, name, content), name)
    assert expected in message


def test_the_yaml_merge_key_is_valid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("base: &b {x: 1, y: 1}\nc:\n  <<: *b\n  y: 2\n")
    assert load_yaml(path) == {"base": {"x": 1, "y": 1}, "c": {"x": 1, "y": 2}}


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=400), which=st.sampled_from(FILES))
def test_random_bytes_never_escape_as_another_exception(tmp_path: Path, content: bytes, which: str) -> None:
    project = copy_project(tmp_path, which, content)
    started = time.monotonic()
    try:
        load(project)
    except ConfigError as err:
        assert str(err).startswith(f"{which}: ")
    assert time.monotonic() - started < BOUND_SECONDS


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(depth=st.integers(2, 12), width=st.integers(2, 12), which=st.sampled_from(FILES))
def test_generated_alias_bombs_are_refused_in_bounded_time(tmp_path: Path, depth: int, width: int,
                                                           which: str) -> None:
    project = copy_project(tmp_path, which, alias_bomb(depth, width))
    level, expanded = 1 + width, 1 + 2 + width  # the document, then l0's key and list
    for _ in range(1, depth):
        level = 1 + width * level
        expanded += 1 + level
    if expanded <= MAX_EXPANDED_NODES:
        with pytest.raises(ConfigError):  # small enough to expand: then it is simply not a valid file
            load(project)
        return
    assert "anchors and aliases expand" in assert_clear_error(project, which)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"egress": [{"description": "x", "cidr": "10.0.0.0/33", "ports": [1]}]}, "not an IPv4 network"),
        ({"egress": [{"description": "x", "cidr": "999.1.1.1/8", "ports": [1]}]}, "not an IPv4 network"),
        ({"egress": [{"description": "x", "cidr": "10.0.0.0/8\n", "ports": [1]}]}, "not an IPv4 network"),
        ({"egress": [{"description": "x", "cidr": "10.0.0.1/8", "ports": [1]}]}, "has host bits set"),
        ({"egress": [{"description": "x", "cidr": "0.0.0.0/0", "ports": [443]}]}, "allowAnyAddress"),
        ({"egress": [{"description": "x", "cidr": "169.254.169.254/32", "ports": [80]}]}, "metadata"),
        ({"egress": [{"description": "x", "namespace": "a", "ports": [True]}]}, "egress[0].ports[0]"),
        ({"vaultAddress": "https://user:pw@vault.example:8200"}, "holds credentials"),
        ({"vaultAddress": "http://vault.example:8200"}, "plain http outside `local`"),
        ({"namespace": "kube-system"}, "namespace of the cluster itself"),
        ({"vaultMount": "sys"}, "Vault's own"),
        ({"vaultCaBundle": "not base64!"}, "not base64"),
        ({"vaultCaBundle": "aGVsbG8="}, "no PEM certificate"),
        ({"secretRefreshInterval": "500ms"}, "1m or more"),
        ({"serviceOverrides": {"graph": {"env": {"INTEGRATION_TEST_TIMEOUT": "9999"}}}}, "set by the chart"),
        ({"serviceOverrides": {"graph": {"env": {"PYTEST_ADDOPTS": "-p no:junitxml"}}}}, "set by the chart"),
        ({"serviceOverrides": {"graph": {"env": {"GRAPH_DATABASE_URL": "postgres://x"}}}}, "already read from Vault"),
        ({"serviceOverrides": {"grpah": {"imageTag": "x"}}}, "did you mean graph?"),
        ({"waitForJobs": True, "releaseTimeoutSeconds": 300}, "shorter than"),
        ({"runnerRbac": [{"apiGroups": ["*"], "resources": ["pods"], "verbs": ["get"]}]}, "apiGroups ['*'] not allowed"),
        ({"runnerRbac": [{"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}]}, "resources ['*'] not allowed"),
        ({"runnerRbac": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}, "never secrets"),
        ({"runnerRbac": [{"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]}]},
         "resources ['serviceaccounts/token'] not allowed"),
        ({"runnerRbac": [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}]}, "not allowed"),
        ({"runnerRbac": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["get"]}]},
         "not allowed"),
        ({"runnerRbac": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}]}, "may only read"),
        ({"runnerRbac": [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "patch"]}]}, "may only read"),
        ({"runnerRbac": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}]}, "runnerRbac[0].verbs[0]"),
        ({"serviceOverrides": {"graph": {"imageTag": "x", "imageDigest": "sha256:" + "a" * 64}}}, "not both"),
        ({"serviceOverrides": {"graph": {"imageDigest": "sha256:abc"}}}, "serviceOverrides.graph.imageDigest"),
        ({"serviceOverrides": {"graph": {"resources": {"requests": {"cpu": "2", "memory": "1Gi"},
                                                       "limits": {"cpu": "1", "memory": "1Gi"}}}}},
         "requests.cpu 2 exceeds limits.cpu 1"),
        ({"serviceOverrides": {"graph": {"resources": {"requests": {"cpu": "0", "memory": "1Gi"},
                                                       "limits": {"cpu": "1", "memory": "1Gi"}}}}}, "requests.cpu of 0"),
        ({"serviceOverrides": {"graph": {"tolerations": [{"operator": "Exists", "value": "x"}]}}}, "takes no value"),
        ({"serviceOverrides": {"graph": {"tolerations": [{"key": "k", "tolerationSeconds": 5}]}}}, "only to effect NoExecute"),
        ({"serviceOverrides": {"graph": {"nodeSelector": {"bad key!": "x"}}}}, "serviceOverrides.graph.nodeSelector"),
        ({"imagePullSecrets": ["Not_A_Name"]}, "imagePullSecrets[0]"),
        ({"serviceOverrides": {"graph": {"env": {"CACHE_URL": "redis://:hunter2@cache:6379"}}}},
         "serviceOverrides.graph.env.CACHE_URL: looks like a credential (a password in a URL)"),
        ({"serviceOverrides": {"graph": {"env": {"DB_PASS": "x"}}}}, "env.DB_PASS: looks like a credential (its name)"),
    ],
    ids=["cidr-33", "cidr-999", "cidr-newline", "cidr-host-bits", "cidr-anywhere", "cidr-metadata", "port-bool",
         "vault-credentials", "vault-http", "system-namespace", "sys-mount", "ca-not-base64", "ca-not-pem",
         "refresh-too-fast", "chart-timeout-env", "chart-junit-env", "env-shadows-secret", "misspelt-service",
         "deadline-past-timeout", "rbac-any-group", "rbac-any-resource", "rbac-secrets", "rbac-sa-token", "rbac-exec",
         "rbac-roles", "rbac-create-pods", "rbac-patch-jobs", "rbac-any-verb", "tag-and-digest", "short-digest",
         "requests-above-limits-pod", "zero-request-pod", "toleration-exists-value", "toleration-seconds",
         "node-selector-key", "pull-secret-name", "override-env-credential-value", "override-env-credential-name"],
)
def test_wrong_values_accepted_before_are_refused(overrides: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        settings_for("staging", **overrides)
    assert expected in str(err.value)
    assert str(err.value).startswith("Pulumi.staging.yaml: ")


def test_a_broad_egress_is_allowed_only_with_the_opt_in() -> None:
    rule = {"description": "x", "cidr": "0.0.0.0/0", "ports": [443], "allowAnyAddress": True}
    assert settings_for("staging", egress=[rule]).stack.egress[0].allow_any_address


def test_schema_version_true_is_not_1(tmp_path: Path) -> None:
    data = yaml.safe_load((fixture_project() / "catalog.yaml").read_text())
    data["schemaVersion"] = True
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="schemaVersion"):
        load_catalog(tmp_path / "catalog.yaml")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("  testinfra:imageTag: 2026.10\n", "is a float in YAML, not a string: quote it"),
        ("  testinfra:kubeContext:\n", "kubeContext: empty"),  # replaces the file's own lines below
        ("  testinfar:protect: true\n", "did you mean `testinfra:protect`?"),
        ("  testinfra:secretValues:\n    graph:\n      database-url: {secure: v1:abc}\n      other: plain\n",
         "secretValues.graph.other: plaintext"),
    ],
    ids=["unquoted-tag", "null-context", "misspelt-namespace", "plaintext-sibling"],
)
def test_stack_file_values_yaml_would_change_are_refused(tmp_path: Path, line: str, expected: str) -> None:
    key = line.split(":")[0] + ":" + line.split(":")[1]
    kept = [x for x in (fixture_project() / "Pulumi.staging.yaml").read_text().splitlines(keepends=True)
            if not x.startswith(key + ":")]
    text = "".join(kept).replace("config:\n", "config:\n" + line, 1)
    project = copy_project(tmp_path, "Pulumi.staging.yaml", text.encode())
    with pytest.raises(ConfigError) as err:
        load(project)
    assert expected in str(err.value)


def test_model_errors_never_echo_the_whole_config() -> None:
    with pytest.raises(ConfigError) as err:
        settings_for("staging", egress=[{"description": "x", "cidr": "10.0.0.0/8", "namespace": "a", "ports": [1]}])
    assert "{" not in str(err.value).split("exactly one")[-1]
    assert json.dumps({"description": "x"})[:10] not in str(err.value)


@pytest.mark.parametrize(
    ("quota", "expected"),
    [
        ({"pods": 2}, "pods: 2 cannot hold the {n} suites"),
        ({"limitsCpu": "2"}, "limitsCpu: 2 cannot hold the limits of the {n} suites that start on install: "
                             "set it to at least {n}"),
        ({"requestsMemory": "1Gi"}, "requestsMemory: 1Gi cannot hold the requests of the {n} suites"),
        ({"requestsCpu": "0"}, "cpu of 0 admits no suite"),
        ({"requestsCpu": "20", "limitsCpu": "16"}, "requestsCpu 20 exceeds limitsCpu 16"),
    ],
    ids=["pods", "limits-cpu", "requests-memory", "zero", "requests-above-limits"],
)
def test_the_quota_must_hold_every_suite_that_starts_on_install(quota: dict[str, object], expected: str) -> None:
    n = len(settings_for("staging").services)  # follows the catalog
    with pytest.raises(ConfigError) as err:
        settings_for("staging", resourceQuota=quota)
    assert expected.format(n=n) in str(err.value)


def test_the_quota_counts_each_suites_own_resources() -> None:
    big = {"requests": {"cpu": "4", "memory": "1Gi"}, "limits": {"cpu": "8", "memory": "2Gi"}}
    n = len(settings_for("staging").services)
    # The checked-in staging quota (16 CPU of limits) holds n default suites (1 CPU each), not one of 8.
    with pytest.raises(ConfigError, match=rf"limitsCpu: 16 cannot hold the limits .* at least {n - 1 + 8}$"):
        settings_for("staging", serviceOverrides={"graph": {"resources": big}})
    assert settings_for("staging").services  # and without it, it does


@pytest.mark.parametrize(("indent", "fix"), [
    ("     ", "check this line's indentation"),  # one space too many
    ("   \t", "a tab is not indentation in YAML"),
])
def test_a_yaml_indentation_slip_names_the_line_the_key_above_and_the_fix(tmp_path: Path, indent: str,
                                                                          fix: str) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text("services:\n  graph:\n    runner: pytest\n" + indent + "timeoutSeconds: 600\n    env: {}\n")
    with pytest.raises(ConfigError) as said:
        load_yaml(path)
    message = str(said.value)
    assert message.startswith("catalog.yaml: line 4, column ") and "`timeoutSeconds: 600`" in message, message
    assert "under `graph`" in message and fix in message, message

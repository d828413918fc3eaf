"""Values a red team found accepted, each now refused at load with the file, the field and the fix,
and messages in plain words: no regex, no pydantic phrases, list positions from 1, "did you mean"."""

from __future__ import annotations

import pytest
import yaml

from config.errors import ConfigError
from config.loading import load_catalog
from tests.conftest import fixture_project, settings_for

WRONG_STACK_VALUES = [
    ({"secretRefreshInterval": "9999999h"}, "secretRefreshInterval", "at most 720h"),
    ({"vaultAddress": "https://vault.example:8200?token=s.abcdef"}, "vaultAddress", "query or fragment"),
    ({"vaultAddress": "https://vault.example:99999"}, "vaultAddress", "port must be 1-65535"),
    ({"vaultAddress": "https://vault.example:8200/v1/secret"}, "vaultAddress", "has a path"),
    ({"vaultClusterAddress": "https://vault.example:8200#frag"}, "vaultClusterAddress", "query or fragment"),
    ({"vaultAuthMount": "token"}, "vaultAuthMount", "Vault's own token method"),
    ({"vaultKubernetesHost": "not a url"}, "vaultKubernetesHost", "not a server URL"),
    ({"kubernetesVersion": "1.99"}, "kubernetesVersion", "a supported Kubernetes minor, 1.29 to 1.37"),
    ({"namespace": "external-secrets"}, "(top level)", "ESO's own namespace"),
    ({"namespace": "ameide"}, "(top level)", "where the services under test run"),
    ({"resourceQuota": {"requestsMemory": "512m"}}, "resourceQuota.requestsMemory", "memory amount with a unit"),
    ({"serviceOverrides": {"graph": {"resources": {"requests": {"cpu": "1", "memory": "1"},
                                                   "limits": {"cpu": "1", "memory": "1Gi"}}}}},
     "serviceOverrides.graph.resources.requests.memory", "memory amount with a unit"),
    ({"serviceOverrides": {"graph": {"resources": {"requests": {"cpu": "1", "memory": "1Ki"},
                                                   "limits": {"cpu": "1", "memory": "1Gi"}}}}},
     "serviceOverrides.graph.resources.requests", "below 16Mi"),
    ({"egress": [{"description": "x", "cidr": "0.0.0.0/1", "ports": [443]}]}, "egress[0]", "a /1, far more"),
    ({"egress": [{"description": "x", "cidr": "100.100.100.200/32", "ports": [80]}]}, "egress[0]",
     "cloud metadata address 100.100.100.200/32"),
    ({"serviceOverrides": {"graph": {"env": {"NOTE": "a\x00b"}}}}, "serviceOverrides.graph.env.NOTE",
     "without NUL or other control characters"),
    ({"serviceOverrides": {"graph": {"timeoutSeconds": 300}}}, "serviceOverrides.graph.timeoutSeconds",
     "above the suite's cap of 100 s"),
    ({"egress": [{"description": "a", "namespace": "x", "ports": [80]},
                 {"description": "b", "namespace": "x", "ports": [80]}]}, "(top level)", "egress[1] repeats egress[0]"),
    ({"secretSources": {"grpah": "config"}}, "secretSources.grpah", "did you mean graph?"),
    ({"namespase": "x"}, "namespase", "did you mean namespace?"),
    # The third red-team round (issue 30, finding 7).
    ({"egress": [{"description": "x", "cidr": "168.63.128.0/22", "ports": [80]}]}, "egress[0]",
     "cloud metadata address 168.63.129.16/32"),
    ({"egress": [{"description": "x", "namespace": "kube-system", "ports": [443]}]}, "egress[0]",
     "namespace kube-system is the cluster's own"),
    ({"egress": [{"description": "x", "cidr": "10.20.0.0/16", "ports": [10250]}]}, "egress[0]", "10250 (the kubelet)"),
    ({"egress": [{"description": "x", "cidr": "10.20.0.0/16", "ports": [443, 2379]}]}, "egress[0]", "2379 (etcd)"),
    ({"serviceOverrides": {"graph": {"tolerations": [{"operator": "Exists"}]}}},
     "serviceOverrides.graph.tolerations[0]", "tolerates every taint"),
    ({"serviceOverrides": {"graph": {"tolerations": [{"key": "node-role.kubernetes.io/control-plane",
                                                       "operator": "Exists"}]}}},
     "serviceOverrides.graph.tolerations[0]", "tolerates the control plane's taint"),
    ({"serviceOverrides": {"graph": {"nodeSelector": {"node-role.kubernetes.io/control-plane": ""}}}},
     "serviceOverrides.graph", "on a control-plane node"),
    ({"kubeconfig": "apiVersion: v1\nusers:\n- user:\n    token: abc.def-canary\n"}, "kubeconfig",
     "a kubeconfig's content, not a path"),
    ({"serviceOverrides": {"graph": {"env": {"LD_PRELOAD": "/scratch/x.so"}}}}, "serviceOverrides.graph.env.LD_PRELOAD",
     "changes how the suite's wrapper and interpreter start"),
    ({"serviceOverrides": {"graph": {"env": {"PATH": "/scratch"}}}}, "serviceOverrides.graph.env.PATH",
     "changes how the suite's wrapper and interpreter start"),
    ({"runnerRbac": [{"apiGroups": [""], "resources": ["services"], "verbs": ["create"]}]}, "runnerRbac[0]",
     "a runner may only read these"),
    ({"runnerRbac": [{"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["create"]}]},
     "runnerRbac[0]", "a runner may only read these"),
    ({"runnerRbac": [{"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}]}, "runnerRbac[0]",
     "resources ['pods/log'] not allowed"),
    ({"serviceOverrides": {"graph": {"runnerRbac": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}}},
     "serviceOverrides.graph.runnerRbac[0]", "never secrets"),
]


@pytest.mark.parametrize(("overrides", "field", "expected"), WRONG_STACK_VALUES,
                         ids=[f"{f}-{e[:18]}" for _, f, e in WRONG_STACK_VALUES])
def test_a_wrong_stack_value_is_refused_naming_the_field(overrides: dict[str, object], field: str,
                                                         expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        settings_for("staging", **overrides)
    message = str(err.value)
    assert message.startswith("Pulumi.staging.yaml: ")
    assert expected in message and (field == "(top level)" or f"testinfra:{field}" in message), message
    for jargon in ("Field required", "Input should be", "String should match", "^[", "Value error"):
        assert jargon not in message


def test_an_inline_kubeconfig_is_never_echoed() -> None:
    with pytest.raises(ConfigError) as err:
        settings_for("staging", kubeconfig="apiVersion: v1\nusers:\n- user:\n    token: abc.def-canary\n")
    assert "canary" not in str(err.value) and "token: abc" not in str(err.value)


def test_a_refused_address_never_echoes_its_password() -> None:
    with pytest.raises(ConfigError) as err:
        settings_for("staging", vaultAddress="https://admin:hunter2-secret@vault.example:8200")
    assert "hunter2" not in str(err.value) and "admin" not in str(err.value)
    with pytest.raises(ConfigError) as err:
        settings_for("staging", vaultAddress="https://vault.example:8200?token=s.TOPSECRET")
    assert "TOPSECRET" not in str(err.value)


def catalog_with(tmp_path, change) -> str:
    data = yaml.safe_load((fixture_project() / "catalog.yaml").read_text())
    change(data)
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as err:
        load_catalog(tmp_path / "catalog.yaml")
    return str(err.value)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["services"]["graph"]["secrets"].append({"secretKey": "..", "property": "x"}),
         "'.' and '..' are not valid Secret keys"),
        (lambda d: d["generatedFormats"].update({"database-url": "{password:>20000000}"}), "plain fields only"),
        (lambda d: d["services"]["graph"].update(timeoutSeconds=300), "above maxTimeoutSeconds 100"),
        (lambda d: d["services"]["graph"].setdefault("env", {}).update(PYTEST_ADDOPTS="-p no:junitxml"),
         "PYTEST_ADDOPTS is set by the chart"),
        (lambda d: d["services"]["graph"]["secrets"].append({"secretKey": "HOME", "property": "x"}),
         "HOME is set by the chart"),
        (lambda d: d["services"]["graph"].update(timeoutSecondz=10), "did you mean timeoutSeconds?"),
        (lambda d: d["services"]["threads"]["secrets"][1].update(key="integration-test-bearer-tokn"),
         "did you mean integration-test-bearer-token?"),
        (lambda d: d["services"]["graph"].update(image="GHCR.io/Org/x"), "an image repository without tag"),
        (lambda d: d["services"]["graph"].update(image="ghcr.io/org/x", imageDigest="sha256:abc"),
         "sha256: followed by 64 lower-case hex digits"),
        (lambda d: d["services"].update({"Bad_Name": d["services"]["graph"]}), "must be a DNS label"),
    ],
    ids=["secret-key-dotdot", "format-width", "timeout-above-cap", "chart-variable-in-env",
         "chart-variable-as-secret", "misspelt-field", "misspelt-shared-key", "image-pattern", "digest-pattern",
         "service-name-pattern"],
)
def test_a_wrong_catalog_value_is_refused_in_plain_words(tmp_path, change, expected: str) -> None:
    message = catalog_with(tmp_path, change)
    assert message.startswith("catalog.yaml: ") and expected in message, message
    for jargon in ("Field required", "Input should be", "String should match", "^["):
        assert jargon not in message


def test_a_secure_value_outside_secret_values_is_refused() -> None:
    from config.loading import parse_stack_config

    raw = {"testinfra:serviceOverrides": '{"graph": {"env": {"API_KEY_ID": "decrypted-by-the-cli"}}}'}
    with pytest.raises(ConfigError) as err:
        parse_stack_config(raw, stack="staging", secret_keys=["testinfra:serviceOverrides"])
    assert "config.testinfra:serviceOverrides holds a `secure:` value" in str(err.value)
    assert "decrypted-by-the-cli" not in str(err.value)

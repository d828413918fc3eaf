"""catalog.yaml + Pulumi.<stack>.yaml -> Settings: what loads, and the one clear error for bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from config.errors import ConfigError
from config.loading import load_catalog, load_settings
from config.naming import PROJECT
from tests.conftest import PROJECT_DIR, STACKS, fixture_project, fixture_stack_config, settings_for

SEED_SERVICES = {
    "agents", "agents-runtime", "graph", "threads", "transformation", "inference",
    "inference-gateway", "platform", "workflows", "www-ameide", "www-ameide-platform",
    "workflows-runtime",
}




def write_catalog(tmp_path: Path, mutate) -> Path:
    data = yaml.safe_load((fixture_project() / "catalog.yaml").read_text())
    mutate(data)
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_catalog_keeps_the_twelve_seed_services() -> None:
    # The seed's services stay; adding one (README, "Add a service") keeps this green.
    catalog = load_catalog(fixture_project() / "catalog.yaml")
    assert set(catalog.services) >= SEED_SERVICES


def test_services_without_sensitive_env_get_no_secret() -> None:
    s = settings_for("staging")
    by_name = {svc.name: svc for svc in s.services}
    assert by_name["inference-gateway"].secret_name is None
    assert by_name["www-ameide"].secret_name is None
    assert by_name["graph"].secret_name == "graph-int-tests-secrets"


def test_seed_secret_names_are_kept() -> None:
    by_name = {svc.name: svc for svc in settings_for("staging").services}
    assert {m.env for m in by_name["graph"].secrets} == {"GRAPH_DATABASE_URL", "DATABASE_URL"}
    assert {m.secret_key for m in by_name["transformation"].secrets} == {
        "transformation-db-url", "transformation-db-username", "transformation-db-password",
    }
    bearer = [m for m in by_name["www-ameide-platform"].secrets if m.env == "INTEGRATION_TEST_BEARER_TOKEN"]
    assert bearer and bearer[0].vault_key.name == "integration-test-bearer-token"
    assert by_name["graph"].timeout_seconds == 100


@pytest.mark.parametrize("stack", STACKS)
def test_vault_keys_live_under_one_prefix_per_environment(stack: str) -> None:
    s = settings_for(stack)
    assert s.vault_keys
    for key in s.vault_keys:
        assert key.path == f"integration/{stack}/{key.name}"
        assert "/data/" not in f"/{key.path}/"


def test_value_sources_per_stack() -> None:
    assert {k.source for k in settings_for("local").vault_keys} == {"generated"}
    for stack in ("staging", "prod"):
        token = next(k for k in settings_for(stack).vault_keys if k.name == "integration-test-bearer-token")
        assert token.source == "external"


def test_generated_values_take_their_property_format() -> None:
    s = settings_for("local")
    graph = next(k for k in s.vault_keys if k.name == "graph")
    assert s.generated_property(graph, "database-url").value("pw") == (
        "postgresql://graph:pw@postgres.ameide.svc.cluster.local:5432/graph")
    agents_runtime = next(k for k in s.vault_keys if k.name == "agents")
    assert s.generated_property(agents_runtime, "minio-secret-key").value("pw") == "pw"


def test_overrides_change_one_service_only() -> None:
    s = settings_for("staging", serviceOverrides={"graph": {"imageTag": "pinned-1", "enabled": True},
                                                  "www-ameide": {"enabled": False}})
    images = {svc.name: svc.image for svc in s.services}
    assert images["graph"].endswith(":pinned-1")
    assert images["agents"].endswith(":2026.11.24")
    assert "www-ameide" not in images


DIGEST_A, DIGEST_B = "sha256:" + "a" * 64, "sha256:" + "b" * 64


def test_the_most_specific_image_setting_wins(tmp_path: Path) -> None:
    write_catalog(tmp_path, lambda d: d["services"]["graph"].update(imageDigest=DIGEST_A))
    config, secret_keys = fixture_stack_config("staging")

    def graph(**override: object):
        cfg = {**config, f"{PROJECT}:serviceOverrides": json.dumps({"graph": override})} if override else config
        s = load_settings(project_dir=tmp_path, environment="staging", config=cfg, secret_keys=secret_keys)
        return next(svc for svc in s.services if svc.name == "graph")

    assert graph().image == f"ghcr.io/ameideio/graph-integration-tests@{DIGEST_A}"  # the catalog's pin
    assert graph().image_pull_policy == "IfNotPresent"
    assert graph(imageDigest=DIGEST_B).image.endswith(f"@{DIGEST_B}")
    assert graph(imageTag="hotfix-1").image.endswith(":hotfix-1")  # this stack's tag beats the catalog pin
    assert graph(imageTag="hotfix-1").image_pull_policy == "Always"
    assert graph(image="ghcr.io/other/graph-tests").image == f"ghcr.io/other/graph-tests:{config[f'{PROJECT}:imageTag']}"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["services"]["graph"].update(colour="blue"), "services.graph.colour"),
        (lambda d: d["services"]["graph"].update(imageDigest="sha256:short"), "services.graph.imageDigest"),
        (lambda d: d["services"]["graph"].update(env={"GRAPH_API_TOKEN": "abc"}),
         "services.graph: env.GRAPH_API_TOKEN looks like a credential (its name)"),
        (lambda d: d["services"]["graph"].update(timeoutSeconds="soon"), "services.graph.timeoutSeconds"),
        (lambda d: d["services"]["graph"].pop("runner"), "services.graph.runner"),
        (lambda d: d["services"]["graph"].update(runner="mocha"), "services.graph.runner"),
        (lambda d: d["services"]["graph"].update(timeoutSeconds=99999), "services.graph.timeoutSeconds"),
        (lambda d: d["services"].update({"Bad_Name": d["services"]["graph"]}), "services.Bad_Name"),
        (lambda d: d["services"].update({"x" * 48: d["services"]["graph"]}), "services." + "x" * 48),
        (lambda d: d["services"]["graph"]["requiredEnv"].append("MISSING_VAR"), "services.graph"),
        (lambda d: d["services"]["threads"]["secrets"][1].update(key="nope"), "services.threads.secrets"),
        (lambda d: d["generatedFormats"].update({"db-url": "postgresql://db/app"}),
         "generatedFormats.db-url"),
        (lambda d: d["generatedFormats"].update({"db-url": "{password}{host}"}), "generatedFormats.db-url"),
        (lambda d: d["generatedFormats"].update({"db-url": "{password"}), "generatedFormats.db-url"),
    ],
    ids=["unknown-field", "short-digest", "inline-credential", "wrong-type", "missing-field", "bad-enum",
         "out-of-range", "bad-name", "too-long", "required-env-missing", "unknown-vault-key", "format-without-fields",
         "format-unknown-field", "format-unbalanced"],
)
def test_broken_catalog_names_file_and_field(tmp_path: Path, mutate, field: str) -> None:
    path = write_catalog(tmp_path, mutate)
    with pytest.raises(ConfigError) as err:
        load_catalog(path)
    message = str(err.value)
    assert message.startswith("catalog.yaml: ")
    assert field in message


def test_duplicate_service_is_an_error(tmp_path: Path) -> None:
    text = (fixture_project() / "catalog.yaml").read_text()
    graph = text[text.index("  graph:\n"): text.index("  threads:\n")]
    path = tmp_path / "catalog.yaml"
    path.write_text(text + graph)
    with pytest.raises(ConfigError) as err:
        load_catalog(path)
    # The file, the line, the service's whole key path and the fix; nothing of the parser's internals.
    assert re.fullmatch(r"catalog\.yaml: line \d+: services\.graph is given twice \(YAML keeps only one of them\): "
                        r"keep one entry -- merge the two, or rename one", str(err.value)), str(err.value)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("vaultAdress", "http://x", "config.testinfra:vaultAdress: unknown field"),
        ("namespace", "Not_A_Label", "config.testinfra:namespace"),
        ("secretStoreKind", "Vault", "config.testinfra:secretStoreKind"),
        ("secretRefreshInterval", "0s", "0 means 'never refresh'"),
        ("releaseTimeoutSeconds", "ten", "config.testinfra:releaseTimeoutSeconds"),
        ("serviceOverrides", {"nosuch": {"imageTag": "x"}}, "serviceOverrides.nosuch: no such service"),
        ("secretSources", {"graph": "vault"}, "config.testinfra:secretSources.graph"),
        ("egress", [{"description": "x", "cidr": "10.0.0.0/8", "namespace": "a", "ports": [1]}],
         "exactly one of `cidr` or `namespace`"),
    ],
)
def test_broken_stack_config_names_file_and_field(key: str, value: object, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        settings_for("staging", **{key: value})
    message = str(err.value)
    assert message.startswith("Pulumi.staging.yaml: ")
    assert expected in message


def test_config_source_without_value_says_how_to_set_it() -> None:
    with pytest.raises(ConfigError) as err:
        settings_for("staging", secretSources={"graph": "config"})
    assert "secretValues.graph.database-url: missing" in str(err.value)
    assert "pulumi config set --secret --path" in str(err.value)


def test_secret_values_must_be_pulumi_secrets() -> None:
    config, secret_keys = fixture_stack_config("staging")
    config[f"{PROJECT}:secretSources"] = json.dumps({"graph": "config"})
    config[f"{PROJECT}:secretValues"] = json.dumps({"graph": {"database-url": "postgres://u:p@h/db"}})
    with pytest.raises(ConfigError, match="stored in plaintext"):
        load_settings(project_dir=fixture_project(), environment="staging", config=config, secret_keys=secret_keys)


def test_invalid_secret_value_is_never_echoed() -> None:
    config, secret_keys = fixture_stack_config("staging")
    config[f"{PROJECT}:secretValues"] = json.dumps({"graph": {"database-url": {"nested": "s3cr3t-value"}}})
    with pytest.raises(ConfigError) as err:
        load_settings(project_dir=fixture_project(), environment="staging", config=config,
                      secret_keys=[*secret_keys, f"{PROJECT}:secretValues"])
    assert "secretValues.graph.database-url" in str(err.value)
    assert "s3cr3t-value" not in str(err.value)


def test_missing_required_stack_key(tmp_path: Path) -> None:
    config, secret_keys = fixture_stack_config("staging")
    del config[f"{PROJECT}:vaultAddress"]
    with pytest.raises(ConfigError, match=r"config.testinfra:vaultAddress: missing: add it"):
        load_settings(project_dir=fixture_project(), environment="staging", config=config, secret_keys=secret_keys)


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("namespace", "n" * 64, "config.testinfra:namespace"),
        ("namespace", "-leading-dash", "config.testinfra:namespace"),
        ("vaultPathPrefix", "integration/../sys", "config.testinfra:vaultPathPrefix"),
        ("vaultPathPrefix", "with space", "config.testinfra:vaultPathPrefix"),
        ("vaultMount", "a/b", "config.testinfra:vaultMount"),
        ("imageTag", "has:colon", "config.testinfra:imageTag"),
        ("serviceOverrides", {"graph": {"env": {"1BAD": "x"}}}, "serviceOverrides.graph.env.1BAD"),
    ],
)
def test_names_kubernetes_or_vault_would_reject_fail_at_load_time(key: str, value: object, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        settings_for("staging", **{key: value})
    assert field in str(err.value)


def test_both_files_are_reported_in_one_round(tmp_path: Path) -> None:
    from config.files import stack_config as read_stack

    catalog = write_catalog(tmp_path, lambda d: d["services"]["graph"].update(timeoutSeconds="soon"))
    (tmp_path / "Pulumi.yaml").write_text((PROJECT_DIR / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.staging.yaml").write_text(
        (fixture_project() / "Pulumi.staging.yaml").read_text()
        .replace("config:\n", "config:\n  testinfra:namespace: Bad_Name\n", 1)
        .replace("  testinfra:namespace: integration-tests\n", ""))
    assert catalog.parent == tmp_path
    config, secret_keys = read_stack("staging", project_dir=tmp_path)
    with pytest.raises(ConfigError) as err:
        load_settings(project_dir=tmp_path, environment="staging", config=config, secret_keys=secret_keys)
    message = str(err.value)
    assert message.startswith("catalog.yaml: ") and "services.graph.timeoutSeconds" in message
    assert "\nPulumi.staging.yaml: " in message and "config.testinfra:namespace" in message


def test_the_release_timeout_follows_the_longest_suite_unless_the_stack_sets_it() -> None:
    """Raising a suite's timeout is one edit: unset, Helm's timeout is 900 s or the longest Job deadline
    plus a margin; set, the stack's value holds (and is checked against the deadlines)."""
    from config.naming import DEFAULT_RELEASE_TIMEOUT_SECONDS, RELEASE_TIMEOUT_MARGIN_SECONDS
    from tests.conftest import settings_for

    short = settings_for("staging")
    assert short.stack.release_timeout_seconds is None
    longest = max(s.active_deadline_seconds for s in short.services)
    assert short.release_timeout_seconds == max(DEFAULT_RELEASE_TIMEOUT_SECONDS, longest + RELEASE_TIMEOUT_MARGIN_SECONDS)
    service = short.services[0].name
    raised = settings_for("staging", serviceOverrides={service: {"timeoutSeconds": 3000}})
    assert raised.release_timeout_seconds == 3000 + 120 + RELEASE_TIMEOUT_MARGIN_SECONDS
    assert settings_for("staging", releaseTimeoutSeconds=4000).release_timeout_seconds == 4000

"""charts/test-job-runner with the real helm: lint, schema, restricted pods, immutable-Job-safe names."""

from __future__ import annotations

import json
import re
import subprocess

import kubernetes_validate
import pytest
import yaml

from config.chart_values import release_values
from config.naming import JUNIT_PATH, RELEASE_TYPE
from offline import helm
from tests.conftest import PROJECT_DIR, STACKS, settings_for

CHART = PROJECT_DIR / "charts" / "test-job-runner"
ENTRYPOINT = "/app/__tests__/integration/run_integration_tests.sh"


def run_helm(helm_bin: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm_bin, *args], capture_output=True, text=True)


def test_chart_lints_strictly(helm_bin: str) -> None:
    proc = run_helm(helm_bin, "lint", "--strict", str(CHART))
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("values", sorted(p.name for p in (CHART / "ci").glob("*.yaml")))
def test_chart_lints_with_each_ci_values_file(helm_bin: str, values: str) -> None:
    proc = run_helm(helm_bin, "lint", "--strict", str(CHART), "-f", str(CHART / "ci" / values))
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("flag", "complaint"),
    [
        ("runner=mocha", "runner"),
        ("timeoutSeconds=5", "timeoutSeconds"),
        ("colour=blue", "colour"),
        ("securityContext.runAsUser=0", "runAsUser"),
        ("run.id=Not-Valid!", "id"),
        ("image.digest=latest", "digest"),
        ("tolerations[0].operator=Maybe", "operator"),
    ],
)
def test_values_outside_the_schema_fail_with_helms_schema_error(helm_bin: str, flag: str, complaint: str) -> None:
    proc = run_helm(helm_bin, "template", "t", str(CHART), "--set", flag)
    assert proc.returncode != 0
    assert "values don't meet the specifications of the schema" in proc.stderr
    assert complaint in proc.stderr


def test_deadline_below_the_suite_timeout_is_refused(helm_bin: str) -> None:
    proc = run_helm(helm_bin, "template", "t", str(CHART), "--set", "timeoutSeconds=600", "--set",
                    "activeDeadlineSeconds=100")
    assert proc.returncode != 0 and "activeDeadlineSeconds must be at least timeoutSeconds" in proc.stderr


def assert_restricted(pod_spec: dict) -> None:
    sc = pod_spec["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] > 0
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod_spec["automountServiceAccountToken"] is False
    assert pod_spec["restartPolicy"] == "Never"
    for c in pod_spec["containers"]:
        csc = c["securityContext"]
        assert csc["allowPrivilegeEscalation"] is False
        assert csc["readOnlyRootFilesystem"] is True
        assert csc["capabilities"] == {"drop": ["ALL"]}
        assert c["resources"]["requests"] and c["resources"]["limits"]
        assert {m["mountPath"] for m in c["volumeMounts"]} == {"/tmp", "/results"}
    assert all("emptyDir" in v for v in pod_spec["volumes"])


@pytest.mark.parametrize("stack", STACKS)
def test_every_service_renders_a_restricted_job_and_on_demand_cronjob(evaluations, stack: str) -> None:
    for release in evaluations[stack].of_type(RELEASE_TYPE):
        values = release.inputs["values"]
        docs = helm.template(CHART, release.inputs["name"], "integration-tests", values, kube_version="1.35.0")
        assert {d["metadata"]["namespace"] for d in docs} == {"integration-tests"}
        kinds = {d["kind"]: d for d in docs}
        assert set(kinds) == {"Job", "CronJob"}
        job, cron = kinds["Job"], kinds["CronJob"]
        for doc in docs:
            kubernetes_validate.validate(doc, "1.35.0", strict=True)
        assert job["spec"]["backoffLimit"] == 0
        assert job["spec"]["activeDeadlineSeconds"] > values["timeoutSeconds"]
        assert job["spec"]["ttlSecondsAfterFinished"] > 0
        assert cron["spec"]["suspend"] is True
        assert cron["spec"]["jobTemplate"]["spec"] == job["spec"]
        pod = job["spec"]["template"]["spec"]
        assert_restricted(pod)
        container = pod["containers"][0]
        assert ENTRYPOINT in container["command"]
        env = {e["name"]: e for e in container["env"]}
        assert env["INTEGRATION_TEST_TIMEOUT"]["value"] == str(int(values["timeoutSeconds"]))
        assert env["INTEGRATION_TEST_JUNIT_PATH"]["value"] == JUNIT_PATH
        for ref in values["secretEnv"]:
            assert env[ref["name"]]["valueFrom"]["secretKeyRef"] == {"name": ref["secretName"], "key": ref["key"]}
            assert "value" not in env[ref["name"]]
        # The suite checks these names at start (never their values).
        if values["requiredEnv"]:
            assert env["INTEGRATION_TEST_REQUIRED_ENV"]["value"] == ",".join(values["requiredEnv"])
        else:
            assert "INTEGRATION_TEST_REQUIRED_ENV" not in env


def test_graph_suite_timeout_is_capped_at_100_seconds(evaluations) -> None:
    graph = next(r for r in evaluations["staging"].of_type(RELEASE_TYPE) if r.name == "graph")
    assert graph.inputs["values"]["timeoutSeconds"] == 100


def _values(stack: str, **changes: object):
    settings = settings_for(stack, **changes)
    graph = next(s for s in settings.services if s.name == "graph")
    return release_values(settings, graph)


def test_a_changed_run_spec_gets_a_new_job_name_and_an_equal_one_keeps_it(helm_bin: str) -> None:
    def job_name(values: dict) -> str:
        docs = helm.template(CHART, "test-graph", "integration-tests", values)
        return next(d for d in docs if d["kind"] == "Job")["metadata"]["name"]

    base = _values("staging")
    assert job_name(base) == job_name(_values("staging"))
    assert job_name(base) != job_name(_values("staging", imageTag="2026.12.01"))
    assert job_name(base) != job_name(_values("staging", serviceOverrides={"graph": {"env": {"EXTRA": "1"}}}))


def test_run_on_install_off_ships_only_the_on_demand_cronjob() -> None:
    values = _values("staging", runOnInstall="false")
    kinds = [d["kind"] for d in helm.template(CHART, "test-graph", "integration-tests", values)]
    assert kinds == ["CronJob"]


DIGEST = "sha256:" + "0123456789abcdef" * 4


def _pod(values: dict) -> dict:
    docs = helm.template(CHART, "test-graph", "integration-tests", values, kube_version="1.35.0")
    for doc in docs:
        kubernetes_validate.validate(doc, "1.35.0", strict=True)
    spec: dict = next(d for d in docs if d["kind"] == "Job")["spec"]["template"]["spec"]
    return spec


def test_a_tag_is_pulled_always_and_a_digest_once() -> None:
    tagged = _pod(_values("staging"))["containers"][0]
    tag = settings_for("staging").stack.image_tag
    assert tagged["image"] == f"ghcr.io/ameideio/graph-integration-tests:{tag}"
    assert tagged["imagePullPolicy"] == "Always"
    pinned = _pod(_values("staging", serviceOverrides={"graph": {"imageDigest": DIGEST}}))["containers"][0]
    assert pinned["image"] == f"ghcr.io/ameideio/graph-integration-tests@{DIGEST}"
    assert pinned["imagePullPolicy"] == "IfNotPresent"


def test_a_service_runs_on_its_own_resources_nodes_and_registry_credentials() -> None:
    override = {
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}},
        "imagePullSecrets": ["ghcr-pull"],
        "nodeSelector": {"ameide.io/pool": "integration-tests"},
        "tolerations": [{"key": "dedicated", "value": "tests", "effect": "NoSchedule"}],
    }
    pod = _pod(_values("staging", resourceQuota={"limitsMemory": "64Gi"}, serviceOverrides={"graph": override}))
    # Its own cpu and memory; the chart's ephemeral-storage bounds where the service states none.
    assert pod["containers"][0]["resources"] == {
        "requests": {**override["resources"]["requests"], "ephemeral-storage": "256Mi"},
        "limits": {**override["resources"]["limits"], "ephemeral-storage": "2Gi"}}
    own_disk = {"requests": {"cpu": "500m", "memory": "1Gi", "ephemeral-storage": "1Gi"},
                "limits": {"cpu": "1", "memory": "2Gi", "ephemeral-storage": "4Gi"}}
    pod = _pod(_values("staging", resourceQuota={"limitsMemory": "64Gi"},
                       serviceOverrides={"graph": {**override, "resources": own_disk}}))
    assert pod["containers"][0]["resources"] == own_disk
    assert pod["imagePullSecrets"] == [{"name": "ghcr-pull"}]
    assert pod["nodeSelector"] == {"ameide.io/pool": "integration-tests"}
    assert pod["tolerations"] == [{"key": "dedicated", "operator": "Equal", "value": "tests", "effect": "NoSchedule"}]
    # The stack-wide registry credential applies to services that do not name their own.
    assert _pod(_values("staging", imagePullSecrets=["org-pull"]))["imagePullSecrets"] == [{"name": "org-pull"}]
    assert "imagePullSecrets" not in _pod(_values("staging"))


def test_the_chart_readme_documents_every_value() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    readme = (CHART / "README.md").read_text()

    def leaves(node: object, prefix: str = "") -> list[str]:
        if isinstance(node, dict) and node:
            return [leaf for key, child in node.items() for leaf in leaves(child, f"{prefix}{key}.")]
        return [prefix.rstrip(".")]

    documented = set(re.findall(r"^\| `([A-Za-z.]+)`", readme, re.MULTILINE))  # the table's first column
    missing = [leaf for leaf in leaves(values)
               if not any(leaf == key or leaf.startswith(key + ".") for key in documented)]
    assert missing == [], f"charts/test-job-runner/README.md lacks: {missing}"


def test_the_chart_refuses_exactly_the_variables_the_program_calls_its_own() -> None:
    from config.naming import CHART_ENV, PROCESS_ENV, PROCESS_ENV_PREFIX

    schema = json.loads((CHART / "values.schema.json").read_text())
    refusals = [part["not"] for part in schema["definitions"]["userEnvName"]["allOf"] if "not" in part]
    assert [set(r["enum"]) for r in refusals if "enum" in r] == [CHART_ENV, PROCESS_ENV]
    assert [r["pattern"] for r in refusals if "pattern" in r] == [f"^{PROCESS_ENV_PREFIX}"]

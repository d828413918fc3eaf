"""The local stack through the real engine: `make up`, ESO syncing OpenBao, `make verify`, an
idempotent preview, a one-service change, the policy pack, the outputs contract, `destroy`.

Real here: the Pulumi CLI, the kubernetes and random providers (built from Go modules), our Python
language host, kube-apiserver + kube-controller-manager + etcd, OpenBao, the ESO controller. Stand-in:
the vault provider plugin (tools/toolchain/standin_providers.py: its Go modules are refused by the proxy).
The node (kubelet + containerd + runc) really runs every suite from the project's own suite image,
so suite results, pod security and the values the suites saw are asserted.
Secret values are compared in the tests and never printed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hvac
import jsonschema
import pytest

from config.loading import stack_settings
from offline.project import copy_project
from tests.e2e.conftest import EXTERNAL_KEY, PROJECT_DIR, LocalStack
from tests.e2e.local_steps import (
    CHANGED_SERVICE,
    NAMESPACE,
    PREFIX,
    case_outcomes,
    deploy_from_empty,
    deployment,
    stack_outputs,
    suite_report,
    vault_values,
)
from tools.localenv.stacks import read_env_file

pytestmark = pytest.mark.e2e


def preview_steps(stack: LocalStack, *extra: str) -> list[dict[str, Any]]:
    proc = stack.pulumi("preview", "--json", *extra)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return list(json.loads(proc.stdout).get("steps") or [])


def changed(steps: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(operation, type, name) of every step that is not a no-op."""
    out = []
    for s in steps:
        if s["op"] in ("same", "read"):
            continue
        type_chain, name = s["urn"].rsplit("::", 2)[-2:]
        out.append((s["op"], type_chain.rsplit("$", 1)[-1], name))
    return out


def test_make_up_from_empty_deploys_the_local_stack(local_stack: LocalStack) -> None:
    # The platform auth owners populate the bearer token; the stack only checks it exists.
    proc = deploy_from_empty(local_stack)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    # The policy pack ran inside the real update and reported nothing.
    assert "testinfra" in proc.stdout and "Policies:" in proc.stdout, proc.stdout[-3000:]
    assert "mandatory" not in proc.stdout.lower()


def test_every_declared_resource_exists_in_the_api_server_and_openbao(local_stack: LocalStack) -> None:
    resources = deployment(local_stack)
    kube = [r for r in resources if r["type"].startswith("kubernetes:") and r.get("custom")
            and not r["type"].startswith("pulumi:providers") and "id" in r]
    assert kube, "the stack declared no Kubernetes objects"
    missing = []
    for r in kube:
        out = r.get("outputs", {})
        if r["type"] == "kubernetes:helm.sh/v3:Release":
            found = local_stack.kubectl_json("get", "secrets", "-n", NAMESPACE, "-l",
                                             f"owner=helm,name={out['name']}")
            if not found["items"]:
                missing.append(f"helm release {out['name']}")
            continue
        meta = out.get("metadata", {})
        args = ["get", f"{out['kind']}.{out['apiVersion'].split('/')[0]}" if "/" in out["apiVersion"]
                else out["kind"], meta["name"]]
        if meta.get("namespace"):
            args += ["-n", meta["namespace"]]
        if local_stack.run("kubectl", *args, "-o", "name").returncode != 0:
            missing.append(f"{out['kind']} {meta.get('namespace', '')}/{meta['name']}")
    vault = local_stack.vault
    for r in resources:
        out = r.get("outputs", {})
        if r["type"] == "vault:kv/secretV2:SecretV2":
            vault.secrets.kv.v2.read_secret_version(path=out["name"], mount_point=out["mount"],
                                                    raise_on_deleted_version=True)
        elif r["type"] == "vault:index/policy:Policy":
            assert vault.sys.read_acl_policy(out["name"])["data"]["policy"] == out["policy"]
        elif r["type"] == "vault:kubernetes/authBackendRole:AuthBackendRole":
            role = vault.read(f"auth/{out['backend']}/role/{out['roleName']}")["data"]
            assert role["bound_service_account_names"] == out["boundServiceAccountNames"]
    assert not missing, missing


def test_eso_syncs_every_external_secret_with_the_values_in_vault(local_stack: LocalStack) -> None:
    outputs = stack_outputs(local_stack)
    vault = local_stack.vault
    checked = 0
    for name, svc in outputs["services"].items():
        if svc["secretName"] is None:
            continue
        es = local_stack.kubectl_json("get", "externalsecret.external-secrets.io", svc["secretName"], "-n", NAMESPACE)
        ready = [c for c in es.get("status", {}).get("conditions", []) if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True", f"{svc['secretName']}: {ready}"
        data = local_stack.kubectl_json("get", "secret", svc["secretName"], "-n", NAMESPACE)["data"]
        for item in es["spec"]["data"]:
            ref = item["remoteRef"]
            mount, path = "secret", ref["key"]
            value = vault.secrets.kv.v2.read_secret_version(
                path=path, mount_point=mount, raise_on_deleted_version=True)["data"]["data"][ref["property"]]
            synced = base64.b64decode(data.get(item["secretKey"], "")).decode()
            # Compared, never printed.
            assert synced == value, f"{name}: {item['secretKey']} differs from Vault {path}#{ref['property']}"
            checked += 1
    assert checked >= 10


def test_generated_database_urls_are_urls(local_stack: LocalStack) -> None:
    data = local_stack.vault.secrets.kv.v2.read_secret_version(
        path=f"{PREFIX}/graph", mount_point="secret", raise_on_deleted_version=True)["data"]["data"]
    assert data["database-url"].startswith("postgresql://graph:")
    assert data["database-url"].endswith("@postgres.ameide.svc.cluster.local:5432/graph")


def test_make_verify_passes_and_names_a_deleted_vault_property(local_stack: LocalStack) -> None:
    passed = local_stack.make("verify")
    assert passed.returncode == 0, passed.stdout[-3000:] + passed.stderr[-2000:]
    kv = local_stack.vault.secrets.kv.v2
    path = f"{PREFIX}/{CHANGED_SERVICE}"
    original = kv.read_secret_version(path=path, mount_point="secret", raise_on_deleted_version=True)["data"]["data"]
    dropped = sorted(original)[0]
    kv.create_or_update_secret(path=path, mount_point="secret",
                               secret={k: v for k, v in original.items() if k != dropped})
    try:
        failed = local_stack.make("verify")
        assert failed.returncode != 0 and dropped in failed.stdout, failed.stdout[-3000:]
        # make reports any failed recipe as 2; the command itself says "missing" with exit 1.
        direct = local_stack.run("tools/deploy/stack_env.sh", ".venv/bin/python", "-m", "deploy.verify", "--stack", "local",
                                 extra_env={"STACK": "local"})
        assert direct.returncode == 1, direct.stdout[-3000:] + direct.stderr[-2000:]
    finally:
        kv.create_or_update_secret(path=path, mount_point="secret", secret=original)
    # ESO may have re-read Vault meanwhile: let it sync again before the cluster half is checked.
    es_name = f"{CHANGED_SERVICE}-int-tests-secrets"
    local_stack.run("kubectl", "annotate", "--overwrite", "-n", NAMESPACE, f"externalsecret.external-secrets.io/{es_name}",
                    f"force-sync={time.time()}", check=True)
    local_stack.run("kubectl", "wait", "-n", NAMESPACE, "--for=condition=Ready", "--timeout=60s",
                    f"externalsecret.external-secrets.io/{es_name}", check=True)
    again = local_stack.make("verify")
    assert again.returncode == 0, again.stdout[-3000:]
    for forbidden in original.values():
        assert forbidden not in passed.stdout + failed.stdout + direct.stdout + again.stdout


def test_an_absent_external_key_is_named_by_the_preflight_and_by_a_raw_preview_without_a_crash(
        local_stack: LocalStack) -> None:
    kv = local_stack.vault.secrets.kv.v2
    path = f"{PREFIX}/{EXTERNAL_KEY}"
    original = kv.read_secret_version(path=path, mount_point="secret", raise_on_deleted_version=True)["data"]["data"]
    kv.delete_metadata_and_all_versions(path=path, mount_point="secret")
    try:
        stopped = local_stack.make("preview")
        assert stopped.returncode != 0 and f"secret/{path}" in stopped.stderr and "does not exist" in stopped.stderr
        assert "Previewing update" not in stopped.stdout  # the CLI never started
        raw = local_stack.pulumi("preview", "--policy-pack", "policy")
        out = raw.stdout + raw.stderr
        assert raw.returncode != 0 and f"Vault key secret/{path}" in out and "does not exist" in out, out[-3000:]
        for crash in ("panic", "plugin exited", "nil pointer", "grpc: the client connection is closing"):
            assert crash not in out, out[-3000:]
    finally:
        kv.create_or_update_secret(path=path, mount_point="secret", secret=original)


def test_make_up_of_a_stack_the_backend_lacks_creates_nothing(local_stack: LocalStack) -> None:
    proc = local_stack.run("make", "-s", "up", "STACK=prod")
    assert proc.returncode != 0 and "Stack prod cannot be selected" in proc.stderr, proc.stderr[-2000:]
    assert "no stack named 'prod' found" in proc.stderr and "make init STACK=prod" in proc.stderr
    stacks = json.loads(local_stack.run("pulumi", "stack", "ls", "--json", check=True).stdout)
    assert "prod" not in {s["name"].rsplit("/", 1)[-1] for s in stacks}


def test_a_second_preview_expects_no_changes(local_stack: LocalStack) -> None:
    started = time.monotonic()
    proc = local_stack.pulumi("preview", "--expect-no-changes", "--policy-pack", "policy")
    local_stack.timings["preview_no_change_s"] = round(time.monotonic() - started, 1)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def _jobs(stack: LocalStack) -> set[str]:
    return {j["metadata"]["name"] for j in stack.kubectl_json("get", "jobs", "-n", NAMESPACE)["items"]}


def test_two_ups_at_once_one_waits_for_the_lock_and_the_state_stays_whole(local_stack: LocalStack) -> None:
    """The second `up` starts only while the first one is held inside its update (a release whose new
    suite sleeps, which `waitForJobs` waits for), and the test checks the first was still running when the
    second was refused: the overlap is arranged, not hoped for."""
    held = "threads"
    local_stack.config_set(f"serviceOverrides.{held}.env.SUITE_FAULT", "sleep:20")
    jobs_before = _jobs(local_stack)
    argv = ["pulumi", "up", "--yes", "--skip-preview", "--stack", "local", "--non-interactive"]
    first = subprocess.Popen(argv, cwd=local_stack.project, env=local_stack.env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (_jobs(local_stack) - jobs_before):
            assert first.poll() is None, "the first `up` ended before its held release's Job existed"
            assert time.monotonic() < deadline, "the held release's new Job never appeared"
            time.sleep(0.3)
        second = local_stack.pulumi("up", "--yes", "--skip-preview")
        assert first.poll() is None, "the first `up` had finished: the two did not overlap"
        refused = second.stdout + second.stderr
        assert second.returncode != 0 and "locked" in refused, refused[-3000:]
        first_out, _ = first.communicate(timeout=600)
        assert first.returncode == 0, first_out[-3000:]
        exported = json.loads(local_stack.pulumi("stack", "export", check=True).stdout)
        assert len(exported["deployment"]["resources"]) > 50
        still = local_stack.pulumi("preview", "--expect-no-changes", "--policy-pack", "policy")
        assert still.returncode == 0, still.stdout[-3000:]
    finally:
        if first.poll() is None:
            first.communicate(timeout=600)
        local_stack.config_rm(f"serviceOverrides.{held}")
        local_stack.pulumi("up", "--yes", "--skip-preview", check=True)


def test_a_timeout_change_updates_only_that_release_with_a_new_job(local_stack: LocalStack) -> None:
    before = stack_outputs(local_stack)["services"][CHANGED_SERVICE]
    local_stack.config_set(f"serviceOverrides.{CHANGED_SERVICE}.timeoutSeconds", "90")
    steps = preview_steps(local_stack)
    assert changed(steps) == [("update", "kubernetes:helm.sh/v3:Release", CHANGED_SERVICE)], changed(steps)
    started = time.monotonic()
    up = local_stack.pulumi("up", "--yes", "--skip-preview", "--policy-pack", "policy")
    local_stack.timings["up_one_service_change_s"] = round(time.monotonic() - started, 1)
    assert up.returncode == 0, up.stdout[-4000:] + up.stderr[-2000:]
    after = stack_outputs(local_stack)["services"][CHANGED_SERVICE]
    assert after["timeoutSeconds"] == 90 and after["job"] != before["job"]
    jobs = _jobs(local_stack)
    assert after["job"] in jobs and before["job"] not in jobs


def test_an_inline_credential_is_refused_by_config_and_by_the_policy_pack(local_stack: LocalStack) -> None:
    # Through the stack config: refused when the settings load, before the CLI starts.
    local_stack.config_set(f"serviceOverrides.{CHANGED_SERVICE}.env.GRAPH_DB_PASSWORD", "inline-hunter2")
    try:
        proc = local_stack.make("preview")
        assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert (f"serviceOverrides.{CHANGED_SERVICE}.env.GRAPH_DB_PASSWORD: looks like a credential (its name)"
                in proc.stderr)
        assert "inline-hunter2" not in proc.stdout + proc.stderr
    finally:
        local_stack.config_rm(f"serviceOverrides.{CHANGED_SERVICE}.env")
    # Through a code change that bypasses the config checks: the pack blocks it in the real preview.
    chart_values = local_stack.project / "config" / "chart_values.py"
    original = chart_values.read_text()
    bypass = original.replace(
        '"env": [{"name": k, "value": v} for k, v in sorted(service.env.items())],',
        '"env": [{"name": "SMTP_URL", "value": "smtp://ci:inline-hunter2@mail:587"}],', 1)
    assert bypass != original
    chart_values.write_text(bypass)
    try:
        proc = local_stack.pulumi("preview", "--policy-pack", "policy")
        assert proc.returncode != 0
        assert "no-inline-credentials" in proc.stdout and "mandatory" in proc.stdout
        assert "env var SMTP_URL is inline but looks like a credential (a password in a URL)" in proc.stdout
        assert "inline-hunter2" not in proc.stdout + proc.stderr
    finally:
        chart_values.write_text(original)


def test_stack_outputs_match_the_schema_and_the_offline_render(local_stack: LocalStack) -> None:
    outputs = stack_outputs(local_stack)
    schema = json.loads((PROJECT_DIR / "schemas" / "stack-outputs.schema.json").read_text())
    jsonschema.validate(outputs, schema)
    render = local_stack.run(".venv/bin/python", "-m", "offline.render", "--stack", "local", check=True)
    assert render.returncode == 0
    rendered = json.loads((local_stack.project / "build" / "render" / "local" / "outputs.json").read_text())
    # The render can only assume what a deploy reads: nothing in the outputs contract today.
    assert outputs == rendered


def install_jobs(stack: LocalStack) -> dict[str, dict[str, Any]]:
    """The install-time Job of each service, as the stack outputs name it."""
    outputs = stack_outputs(stack)["services"]
    jobs = {j["metadata"]["name"]: j for j in stack.kubectl_json("get", "jobs", "-n", NAMESPACE)["items"]}
    return {name: jobs[svc["job"]] for name, svc in outputs.items() if svc["job"] in jobs}


def test_every_install_job_ran_its_suite_on_the_node_as_non_root(local_stack: LocalStack) -> None:
    """The node really ran each suite: its pod started from the pinned image, read its Secret, ran the
    suite as a non-root user on a read-only root, and the suite's own JUnit came back in its log."""
    jobs = install_jobs(local_stack)
    enabled = [n for n, svc in stack_outputs(local_stack)["services"].items() if svc["job"]]
    assert sorted(jobs) == sorted(enabled) and len(jobs) >= 10
    for name, job in jobs.items():
        assert any(c["type"] == "Complete" and c["status"] == "True" for c in job["status"].get("conditions", [])), name
        pods = local_stack.kubectl_json("get", "pods", "-n", NAMESPACE, "-l", f"job-name={job['metadata']['name']}")
        pod = pods["items"][0]
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
        outcomes = case_outcomes(suite_report(local_stack, job["metadata"]["name"]))
        assert outcomes["test_runs_unprivileged_on_a_read_only_root"] == "passed", (name, outcomes)
        assert all(v in ("passed", "skipped") for v in outcomes.values()), (name, outcomes)


def test_a_pod_that_breaks_restricted_is_refused_in_the_namespace(local_stack: LocalStack) -> None:
    image = stack_outputs(local_stack)["services"][CHANGED_SERVICE]["image"]
    # The suite's own image, without the chart's securityContext: root allowed, privilege escalation
    # allowed, capabilities kept, no seccomp profile.
    proc = local_stack.run("kubectl", "run", "unrestricted-probe", "-n", NAMESPACE, f"--image={image}",
                           "--restart=Never", "--command", "--", "/bin/sh", "-c", "true")
    assert proc.returncode != 0
    assert "violates PodSecurity" in proc.stderr and '"restricted' in proc.stderr, proc.stderr[-800:]


def test_each_suite_saw_exactly_the_values_in_vault(local_stack: LocalStack) -> None:
    """Pod env -> Secret key -> ExternalSecret remoteRef -> Vault property, from the live objects; the
    suite recorded a SHA-256 of each value it saw, compared here with Vault's (never printed)."""
    vault = local_stack.vault
    compared = 0
    for name, job in install_jobs(local_stack).items():
        container = job["spec"]["template"]["spec"]["containers"][0]
        refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
        if not refs:
            continue
        report = suite_report(local_stack, job["metadata"]["name"])
        seen = {p.get("name"): p.get("value") for p in report.iter("property")}
        for env_name, ref in refs.items():
            es = local_stack.kubectl_json("get", "externalsecret.external-secrets.io", ref["name"], "-n", NAMESPACE)
            remote = next(d["remoteRef"] for d in es["spec"]["data"] if d["secretKey"] == ref["key"])
            value = vault.secrets.kv.v2.read_secret_version(
                path=remote["key"], mount_point="secret", raise_on_deleted_version=True)["data"]["data"][remote["property"]]
            if env_name not in seen:
                continue  # not among the service's requiredEnv: the suite does not fingerprint it
            assert seen[env_name] == "sha256:" + hashlib.sha256(value.encode()).hexdigest(), f"{name}: {env_name}"
            compared += 1
    assert compared >= 10


BESIDE = "beside"  # a second local environment, started by name in its own working copy


@pytest.fixture(scope="module", autouse=True)
def beside_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str], subprocess.Popen[str]]]:
    """`make local-env NAME=beside` in a working copy of its own, started with this module's first
    test (it comes up while this environment deploys); stopped by name at the module's end whatever
    happened."""
    copy = copy_project(tmp_path_factory.mktemp("beside"))
    env = {k: v for k, v in os.environ.items() if k not in ("STACK", "NAME", "TESTINFRA_LOCAL_ENV")}
    env["PULUMI_SKIP_CONFIRMATIONS"] = "true"
    log = (copy / "local-env.log").open("w")
    starting = subprocess.Popen(["make", "-s", "local-env", f"NAME={BESIDE}"], cwd=copy, env=env, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
    try:
        yield copy, env, starting
    finally:
        if starting.poll() is None:
            starting.wait(timeout=600)
        log.close()
        subprocess.run(["make", "-s", "local-env-down", f"NAME={BESIDE}"], cwd=copy, env=env, capture_output=True,
                       timeout=300, check=False)


def test_a_second_environment_by_name_runs_its_suites_while_this_one_runs_its_own(
        local_stack: LocalStack, beside_environment: tuple[Path, dict[str, str], subprocess.Popen[str]]) -> None:
    """`make local-env NAME=beside` (in another working copy, as a second checkout would): its own
    folder, free ports, PKI, node and stack `local-beside`. Its `make up` runs every suite on its node
    while this environment's `make run` runs every suite on its own; neither cluster nor Vault holds
    the other's objects; `make local-env-down NAME=beside` stops exactly that one."""
    copy, env, starting = beside_environment

    def make(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["make", "-s", *args], cwd=copy, env=env, capture_output=True, text=True,
                              timeout=timeout, check=False, stdin=subprocess.DEVNULL)

    assert starting.wait(timeout=600) == 0, (copy / "local-env.log").read_text()[-3000:]
    folder = copy / "build" / "local-envs" / BESIDE
    try:
        ports = json.loads((folder / "ports.json").read_text())
        ours = {int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", " ".join(local_stack.env.values()))}
        assert ours and ours.isdisjoint(ports.values()), (ours, ports)
        listed = make("local-envs").stdout
        assert re.search(rf"^{BESIDE}\s+running \(\d+ processes\)\s+stack local-{BESIDE}\s", listed, re.MULTILINE), listed

        runs_here: dict[str, subprocess.CompletedProcess[str]] = {}
        here = threading.Thread(target=lambda: runs_here.setdefault(
            "all", local_stack.make("run", "RUN_ID=e2e-beside", "CALLER=e2e", timeout=600)))
        started = time.monotonic()
        here.start()
        deployed = make("up", f"STACK=local-{BESIDE}")  # waitForJobs: every install suite ran and passed
        here.join()
        local_stack.timings["two_environments_suites_at_once_s"] = round(time.monotonic() - started, 1)
        assert deployed.returncode == 0, deployed.stdout[-4000:] + deployed.stderr[-3000:]
        assert runs_here["all"].returncode == 0, runs_here["all"].stdout[-3000:]
        ran = make("run", f"STACK=local-{BESIDE}", f"SERVICE={CHANGED_SERVICE}", "CALLER=e2e")
        assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-2000:]
        assert case_outcomes(ET.parse(copy / "build" / "junit" / f"{CHANGED_SERVICE}.xml").getroot())[
            "test_runs_unprivileged_on_a_read_only_root"] == "passed"

        kubectl = str(PROJECT_DIR / ".tools" / "bin" / "kubectl")
        for kubeconfig, foreign in ((local_stack.env["KUBECONFIG"], f"local-{BESIDE}"), (str(folder / "kubeconfig"), "local")):
            seen = subprocess.run([kubectl, f"--kubeconfig={kubeconfig}", "get", "all,externalsecrets,secretstores", "-A",
                                   "-l", f"ameide.io/environment={foreign}", "-o", "name"],
                                  capture_output=True, text=True, timeout=60, check=True).stdout
            assert seen.strip() == "", (kubeconfig, seen[:500])
        recorded = read_env_file(folder / "env")
        beside_vault = hvac.Client(url=recorded["VAULT_ADDR"], token=recorded["VAULT_TOKEN"], timeout=10)
        for vault, own, foreign in ((local_stack.vault, "local", f"local-{BESIDE}"), (beside_vault, f"local-{BESIDE}", "local")):
            folders = vault.secrets.kv.v2.list_secrets(path="integration", mount_point="secret")["data"]["keys"]
            assert f"{own}/" in folders and f"{foreign}/" not in folders, folders
    finally:
        down = make("local-env-down", f"NAME={BESIDE}", timeout=300)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "stopped" in make("local-envs").stdout.split(BESIDE, 1)[1].splitlines()[0]
    assert not (copy / f"Pulumi.local-{BESIDE}.yaml").exists()
    # This environment did not notice: its API server and Vault answer, its suites run on.
    assert local_stack.run("kubectl", "get", "--raw", "/readyz", timeout=60).returncode == 0
    assert local_stack.vault.sys.is_initialized()


def fingerprint(data: dict[str, str]) -> str:
    """Compares secret values without a value ever reaching the test's output."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def test_a_key_switched_to_external_keeps_its_value_for_its_owner(local_stack: LocalStack) -> None:
    kv = local_stack.vault.secrets.kv.v2
    path = f"{PREFIX}/{CHANGED_SERVICE}"
    def current() -> str:
        return fingerprint(kv.read_secret_version(path=path, mount_point="secret",
                                                  raise_on_deleted_version=True)["data"]["data"])

    before = current()
    local_stack.config_set(f"secretSources.{CHANGED_SERVICE}", "external")
    proc = local_stack.make("up", extra_env={"PULUMI_SKIP_CONFIRMATIONS": "true"})
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    # Pulumi no longer manages it, and Vault still holds the value ESO syncs.
    written = {r["inputs"].get("name") for r in deployment(local_stack) if r["type"] == "vault:kv/secretV2:SecretV2"}
    assert path not in written and f"{PREFIX}/{EXTERNAL_KEY}" not in written and len(written) >= 5
    assert current() == before
    secret_name = stack_outputs(local_stack)["services"][CHANGED_SERVICE]["secretName"]
    es = local_stack.kubectl_json("get", "externalsecret.external-secrets.io", secret_name, "-n", NAMESPACE)
    assert [c["status"] for c in es["status"]["conditions"] if c["type"] == "Ready"] == ["True"]


def run_drift(stack: LocalStack) -> tuple[int, list[dict[str, Any]]]:
    """`python -m deploy.drift` as the scheduled job runs it (make turns its exit 6 into 2)."""
    proc = stack.run(str(stack.project / ".venv" / "bin" / "python"), "-m", "deploy.drift", "--stack", "local",
                     timeout=300)
    assert proc.returncode in (0, 6), proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.returncode, json.loads((stack.project / "build" / "drift" / "local.json").read_text())["findings"]


def test_drift_names_each_change_made_by_hand_and_nothing_on_a_clean_stack(local_stack: LocalStack) -> None:
    """Three clean runs find nothing; then ten changes made by hand, each beside the stack's back, are
    each reported with the resource's URN and the property path, and an owner's new version of an
    `external` key is reported as expected, not as drift."""
    # The gate's drills above wrote a key beside Pulumi (threads' new version): a refresh makes what is
    # there the state's, so the clean runs start from a stack that has not drifted.
    refreshed = local_stack.pulumi("refresh", "--yes", "--skip-preview")
    assert refreshed.returncode == 0, refreshed.stdout[-3000:] + refreshed.stderr[-2000:]
    for i in range(3):
        started = time.monotonic()
        status, findings = run_drift(local_stack)
        local_stack.timings[f"drift_clean_{i}_s"] = round(time.monotonic() - started, 1)
        assert status == 0 and [f for f in findings if not f["expected"]] == [], findings

    kv = local_stack.vault.secrets.kv.v2
    written = next(r["inputs"]["name"] for r in deployment(local_stack) if r["type"] == "vault:kv/secretV2:SecretV2")
    generated = written.rsplit("/", 1)[-1]

    def new_version(path: str) -> None:  # a new version of every property (values never printed)
        data = kv.read_secret_version(path=path, mount_point="secret", raise_on_deleted_version=True)["data"]["data"]
        kv.create_or_update_secret(path=path, mount_point="secret", secret={k: secrets.token_hex(16) for k in data})

    def kubectl(*args: str) -> None:
        proc = local_stack.run("kubectl", *args)
        assert proc.returncode == 0, proc.stderr[-1000:]

    policy = local_stack.vault.sys.read_policy("integration-tests-local-read")["data"]["rules"]
    changes = {  # (resource type, its name in the URN, property path): the change made by hand
        ("Namespace", "namespace", "metadata.labels.changed-by"):
            lambda: kubectl("label", "namespace", NAMESPACE, "changed-by=hand"),
        ("Namespace", "namespace", "metadata.labels.pod-security.kubernetes.io/enforce"):
            lambda: kubectl("label", "namespace", NAMESPACE, "pod-security.kubernetes.io/enforce-"),
        ("NetworkPolicy", "allow-dns", ""):
            lambda: kubectl("delete", "networkpolicy", "allow-dns-egress", "-n", NAMESPACE),
        ("ResourceQuota", "quota", "spec.hard.pods"):
            lambda: kubectl("patch", "resourcequota", NAMESPACE, "-n", NAMESPACE, "--type=merge",
                            "-p", '{"spec":{"hard":{"pods":"99"}}}'),
        ("SecretV2", generated, "metadata.version"): lambda: new_version(written),
        ("Policy", "eso-read", "policy"): lambda: local_stack.vault.sys.create_or_update_policy(
            "integration-tests-local-read", policy + '\npath "secret/data/elsewhere/*" { capabilities = ["read"] }\n'),
        ("AuthBackendRole", "eso", "tokenTtl"): lambda: local_stack.vault.write_data(
            "auth/kubernetes/role/integration-tests-local-eso", data={"token_ttl": 600}),
        ("ExternalSecret", "agents", "spec.refreshInterval"):
            lambda: kubectl("patch", "externalsecret.external-secrets.io", "agents-int-tests-secrets", "-n", NAMESPACE,
                            "--type=merge", "-p", '{"spec":{"refreshInterval":"7m"}}'),
        ("Release", "graph", "values.ttlSecondsAfterFinished"):
            lambda: local_stack.run("helm", "upgrade", f"test-{CHANGED_SERVICE}", "./charts/test-job-runner", "-n",
                                    NAMESPACE, "--reuse-values", "--set", "ttlSecondsAfterFinished=42", "--no-hooks",
                                    check=True),
        ("ServiceAccount", "runner", "automountServiceAccountToken"):
            lambda: kubectl("patch", "serviceaccount", "integration-test-runner", "-n", NAMESPACE, "--type=merge",
                            "-p", '{"automountServiceAccountToken":true}'),
    }
    for change in changes.values():
        change()
    [owned, *_] = [k for k in stack_settings("local", project_dir=local_stack.project).vault_keys if k.source == "external"]
    new_version(owned.path)  # its owner's rotation (graph's key, made `external` above): expected

    status, findings = run_drift(local_stack)
    assert status == 6
    drifted = {(f["urn"].split("::")[-2].rsplit(":", 1)[-1], f["urn"].rsplit("::", 1)[-1], f["path"])
               for f in findings if not f["expected"]}
    assert set(changes) <= drifted, sorted(set(changes) - drifted)
    local_stack.timings["drift_found_of_10"] = len(set(changes) & drifted)
    assert [f["urn"] for f in findings if f["expected"]] == [f"vault:{owned.full_path}"]
    suite = ET.parse(local_stack.project / "build" / "drift" / "local.xml").getroot().find("testsuite")
    assert suite is not None and int(suite.get("failures") or 0) == len({f["urn"] for f in findings if not f["expected"]})
    values = vault_values(local_stack)
    for name in ("local.xml", "local.md", "local.json"):
        text = (local_stack.project / "build" / "drift" / name).read_text()
        assert not [v for v in values if v in text], name


def test_destroy_removes_what_it_made_and_keeps_every_vault_key(local_stack: LocalStack) -> None:
    assert local_stack.run("kubectl", "get", "namespace", NAMESPACE).returncode == 0
    assert len(deployment(local_stack)) > 50
    kv = local_stack.vault.secrets.kv.v2
    keys_before = set(kv.list_secrets(path=PREFIX, mount_point="secret")["data"]["keys"])
    proc = local_stack.make("destroy", timed="destroy_s", extra_env={"PULUMI_SKIP_CONFIRMATIONS": "true"})
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert local_stack.run("kubectl", "get", "namespace", NAMESPACE).returncode != 0
    # Written keys are retained (retainOnDelete): a credential is never deleted by a destroy.
    keys = set(kv.list_secrets(path=PREFIX, mount_point="secret")["data"]["keys"])
    assert keys == keys_before and {EXTERNAL_KEY, CHANGED_SERVICE} <= keys
    assert local_stack.vault.read("auth/kubernetes/role/integration-tests-local-eso") is None
    policies = local_stack.vault.sys.list_acl_policies()["data"]["keys"]
    assert not [p for p in policies if "integration-tests-local" in p]

"""The local stack's runs through the real engine and node, on an environment of their own (a worker
of its own beside test_local_stack.py's): suites that fail, time out and recover; what each run records
(key versions, replays, phases, an OTLP trace); the readiness gate's reasons; an image that cannot be
pulled; an evicted suite reported flaky; the rotation drill; the run-history page in a real browser.
Secret values are compared in the tests and never printed.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from runs.phases import PHASES, percentiles
from tests.e2e.browser import CHROMIUM, chromium, served
from tests.e2e.conftest import EXTERNAL_KEY, LocalStack
from tests.e2e.local_steps import (
    CHANGED_SERVICE,
    NAMESPACE,
    PREFIX,
    case_outcomes,
    deploy_from_empty,
    stack_outputs,
    suite_report,
    vault_values,
)

pytestmark = pytest.mark.e2e

FAILING = "agents"  # its suite fails on purpose (SUITE_FAULT=fail) in the failing-suites test


@pytest.fixture(scope="module", autouse=True)
def deployed(local_stack: LocalStack) -> None:
    """This module's environment with the local stack deployed from empty, every install suite passed."""
    proc = deploy_from_empty(local_stack)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]


def start_fault_jobs(stack: LocalStack) -> dict[str, str]:
    """Two Jobs from graph's CronJob template, left running while the test goes on: one whose suite
    ignores its timeout (only the Job's activeDeadlineSeconds, shortened here, stops it), one that
    sleeps past INTEGRATION_TEST_TIMEOUT (the suite stops itself and still reports)."""
    cron = stack.kubectl_json("get", "cronjob", f"test-{CHANGED_SERVICE}", "-n", NAMESPACE)
    names = {"overrun": "e2e-overrun", "sleep:30": "e2e-own-timeout"}
    for fault, name in names.items():
        spec = json.loads(json.dumps(cron["spec"]["jobTemplate"]["spec"]))
        spec["activeDeadlineSeconds"] = 15 if fault == "overrun" else 60
        container = spec["template"]["spec"]["containers"][0]
        container["env"] = [e for e in container["env"] if e["name"] != "INTEGRATION_TEST_TIMEOUT"] + [
            {"name": "INTEGRATION_TEST_TIMEOUT", "value": "8"}, {"name": "SUITE_FAULT", "value": fault}]
        job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": NAMESPACE}, "spec": spec}
        proc = subprocess.run(["kubectl", "apply", "-f", "-"], input=json.dumps(job), env=stack.env,
                              capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
    return names



def test_failing_suites_fail_up_reach_all_xml_and_a_rerun_recovers(local_stack: LocalStack) -> None:
    """In the test's own stack copy (never the committed local stack): agents fails on purpose
    (SUITE_FAULT=fail) and graph's required property is emptied in Vault. One gated `up` fails naming
    both Jobs; `make run` of every suite exits 1 with exactly their failing cases in all.xml among every
    suite's real cases; graph's rerun fails naming the variable (never a value), passes once the value is
    back, and the next `up` goes through."""
    fault_jobs = start_fault_jobs(local_stack)
    kv = local_stack.vault.secrets.kv.v2
    path = f"{PREFIX}/{CHANGED_SERVICE}"
    original = kv.read_secret_version(path=path, mount_point="secret", raise_on_deleted_version=True)["data"]["data"]
    secret_name = stack_outputs(local_stack)["services"][CHANGED_SERVICE]["secretName"]

    def synced(expect_empty: bool) -> None:
        local_stack.run("kubectl", "annotate", "--overwrite", "externalsecret.external-secrets.io", secret_name,
                        "-n", NAMESPACE, f"force-sync={time.time()}", check=True)
        for _ in range(60):
            data = local_stack.kubectl_json("get", "secret", secret_name, "-n", NAMESPACE)["data"]
            if (data.get("GRAPH_DATABASE_URL", "") == "") == expect_empty:
                return
            time.sleep(0.5)
        pytest.fail(f"ESO did not sync {secret_name}")

    failing = FAILING
    kv.create_or_update_secret(path=path, mount_point="secret", secret={**original, "database-url": ""})
    synced(expect_empty=True)
    local_stack.config_set(f"serviceOverrides.{failing}.env.SUITE_FAULT", "fail")
    local_stack.config_set(f"serviceOverrides.{CHANGED_SERVICE}.env.SUITE_MARK", "emptied")  # a new install Job
    up = local_stack.pulumi("up", "--yes", "--skip-preview")
    said = up.stdout + up.stderr
    assert up.returncode != 0 and f"test-{failing}" in said and f"test-{CHANGED_SERVICE}" in said, said[-3000:]

    junit = local_stack.project / "build" / "junit"
    started = time.monotonic()
    proc = local_stack.make("run", "RUN_ID=e2e-all", "CALLER=e2e", timeout=600)
    local_stack.timings["run_all_suites_s"] = round(time.monotonic() - started, 1)
    assert proc.returncode != 0, proc.stdout[-3000:]
    for name in (failing, CHANGED_SERVICE):
        assert re.search(rf"^{name}\s+failed\s", proc.stdout, re.MULTILINE), proc.stdout[-3000:]
    assert re.search(r"^threads\s+passed\s", proc.stdout, re.MULTILINE), proc.stdout[-3000:]
    merged = ET.parse(junit / "all.xml").getroot()
    failures = sorted(c.get("name", "") for c in merged.iter("testcase") if c.find("failure") is not None)
    assert failures == ["test_injected_fault", "test_required_variable_is_set[DATABASE_URL]",
                        "test_required_variable_is_set[GRAPH_DATABASE_URL]"], failures
    # Every suite's real cases, one report per pod (its hostname), each service once.
    suites = {s.get("hostname", "").rsplit("-", 2)[0] for s in merged.iter("testsuite")}
    assert suites == {f"test-{name}" for name in stack_outputs(local_stack)["services"]}, suites

    rerun = local_stack.make("run", f"SERVICE={CHANGED_SERVICE}", "RERUN=1", "CALLER=e2e")
    assert rerun.returncode != 0, rerun.stdout[-2000:]
    report = (junit / f"{CHANGED_SERVICE}.xml").read_text()
    assert "GRAPH_DATABASE_URL is missing or empty" in report
    assert original["database-url"] not in report + rerun.stdout + rerun.stderr
    kv.create_or_update_secret(path=path, mount_point="secret", secret=original)
    synced(expect_empty=False)
    rerun = local_stack.make("run", f"SERVICE={CHANGED_SERVICE}", "RERUN=1", "CALLER=e2e")
    assert rerun.returncode == 0, rerun.stdout[-2000:]
    local_stack.config_rm(f"serviceOverrides.{failing}")
    again = local_stack.pulumi("up", "--yes", "--skip-preview")
    assert again.returncode == 0, again.stdout[-3000:]
    local_stack.config_rm(f"serviceOverrides.{CHANGED_SERVICE}.env")

    # The two Jobs started first have long finished.
    for name in fault_jobs.values():
        waited = local_stack.run("kubectl", "wait", f"job/{name}", "-n", NAMESPACE, "--for=condition=Failed",
                                 "--timeout=60s")
        assert waited.returncode == 0, (name, waited.stderr)
    overrun = local_stack.kubectl_json("get", "job", fault_jobs["overrun"], "-n", NAMESPACE)
    assert any(c["type"] == "Failed" and c["reason"] == "DeadlineExceeded" for c in overrun["status"]["conditions"])
    own = fault_jobs["sleep:30"]
    assert case_outcomes(suite_report(local_stack, own))["test_injected_fault"] == "failure"
    log = local_stack.run("kubectl", "logs", f"job/{own}", "-n", NAMESPACE, check=True).stdout
    assert "ran past INTEGRATION_TEST_TIMEOUT=8 s" in log



# --------------------------------------------------------------------------- runs you can trust (issue 33)

GATE_BOUND_S = 60  # runs.run's default --gate-seconds: the reason codes must come well within it


def run_cli(stack: LocalStack, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`python -m runs.run` as a pipeline calls it (make would turn every failure into its own 2)."""
    return stack.run(str(stack.project / ".venv" / "bin" / "python"), "-m", "runs.run", "--stack", "local", *args,
                     timeout=timeout, extra_env={"STACK": "local"})


def junit_properties(stack: LocalStack, service: str) -> dict[str, str]:
    root = ET.parse(stack.project / "build" / "junit" / f"{service}.xml").getroot()
    return {p.get("name", ""): p.get("value", "") for p in root.iter("property")}


def manifest(stack: LocalStack, run_id: str | None = None) -> dict[str, Any]:
    path = (stack.project / "build" / "runs" / run_id / "run-manifest.json" if run_id
            else stack.project / "build" / "junit" / "run-manifest.json")
    return json.loads(path.read_text())


def current_version(stack: LocalStack, key: str) -> int:
    meta = stack.vault.secrets.kv.v2.read_secret_metadata(path=f"{PREFIX}/{key}", mount_point="secret")
    return int(meta["data"]["current_version"])


def test_each_run_records_the_vault_version_it_used_after_a_config_key_changes(local_stack: LocalStack) -> None:
    """platform's key becomes a `config` key; each `make run` after a value change names the version
    Vault held (JUnit properties, run manifest, PR summary), the suite saw that version's value (its
    fingerprint), and no value -- nor a prefix of one -- appears in any of them or in the output."""
    service, path = "platform", f"secret/{PREFIX}/platform"
    values = [f"postgresql://platform:{secrets.token_urlsafe(18)}@db.invalid:5432/platform" for _ in range(2)]
    local_stack.config_set("secretSources.platform", "config")
    said = ""
    for i, value in enumerate(values, start=1):
        local_stack.run("pulumi", "config", "set", "--secret", "--path", "testinfra:secretValues.platform.database-url",
                        value, "--stack", "local", check=True)
        up = local_stack.make("up", extra_env={"PULUMI_SKIP_CONFIRMATIONS": "true"})
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-2000:]
        version = current_version(local_stack, "platform")
        proc = local_stack.make("run", f"SERVICE={service}", f"RUN_ID=e2e-provenance-{i}", "CALLER=e2e")
        said += proc.stdout + proc.stderr
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
        props = junit_properties(local_stack, service)
        assert props[f"testinfra.vault.{path}.version"] == str(version)
        assert props["testinfra.image.id"].endswith(local_stack_digest(local_stack))
        assert props["testinfra.chart.version"] and props["testinfra.externalSecret.refreshTime"]
        recorded = manifest(local_stack, f"e2e-provenance-{i}")["services"][service]
        assert [(k["path"], k["version"]) for k in recorded["keys"]] == [(path, version)]
        # What the suite saw was that version's value: its own fingerprint of the variable.
        fingerprint_seen = next(v for n, v in props.items() if n.endswith("DATABASE_URL"))
        assert fingerprint_seen == "sha256:" + hashlib.sha256(value.encode()).hexdigest()
        local_stack.timings[f"gate_after_change_{i}_s"] = recorded["gate"]["seconds"]
    assert recorded["gate"]["forcedSync"] is True  # ESO's own refresh (1m) had not come yet: the gate asked
    outputs_file = local_stack.project / "build" / "outputs-local.json"
    outputs_file.write_text(json.dumps(stack_outputs(local_stack)))
    comment = local_stack.run(str(local_stack.project / ".venv" / "bin" / "python"), "-m", "ci.review_comment",
                              "--pr", "1", "--outputs", str(outputs_file), "--baseline", str(outputs_file), check=True)
    text = (local_stack.project / "build" / "pr-comment.md").read_text()
    assert f"`platform v{version}`" in text, text[-2000:]  # a code span: nothing a suite writes formats
    written = [p.read_text(errors="replace") for p in (local_stack.project / "build").rglob("*")
               if p.is_file() and p.suffix in (".xml", ".json", ".md")]
    for value in values:
        secret_part = value.split(":")[2].split("@")[0]
        for text in [*written, said, comment.stdout]:
            assert secret_part[:8] not in text


def local_stack_digest(stack: LocalStack) -> str:
    return str(stack_outputs(stack)["services"]["platform"]["image"]).rpartition("@")[2]


def test_a_replay_runs_the_recorded_digest_and_says_when_a_version_it_used_is_gone(local_stack: LocalStack) -> None:
    first = manifest(local_stack, "e2e-provenance-1")["services"]["platform"]
    old = first["keys"][0]["version"]
    proc = local_stack.make("run", "SERVICE=platform", "RERUN=e2e-provenance-1", "RUN_ID=e2e-replay-1")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert f"the replayed run read version {old}; this run reads version {old + 1}" in proc.stdout
    job = manifest(local_stack, "e2e-replay-1")["services"]["platform"]["attempts"][0]["job"]
    spec = local_stack.kubectl_json("get", "job", job, "-n", NAMESPACE)["spec"]["template"]["spec"]
    assert spec["containers"][0]["image"] == first["imageId"]  # pinned by the digest the pod ran
    local_stack.vault.secrets.kv.v2.destroy_secret_versions(path=f"{PREFIX}/platform", versions=[old],
                                                            mount_point="secret")
    proc = local_stack.make("run", "SERVICE=platform", "RERUN=e2e-provenance-1", "RUN_ID=e2e-replay-2")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (f"version {old}, which the replayed run read, no longer exists (destroyed); this run reads version "
            f"{old + 1} -- the value is stored nowhere by this project") in proc.stdout


def test_a_deleted_key_and_a_revoked_eso_role_end_the_run_in_their_reason_within_the_bound(
        local_stack: LocalStack) -> None:
    """No Job starts: the run ends with its reason code, exit 3, an error case typed by the code, and one
    line naming service, key and owner -- not a pod stuck in CreateContainerConfigError."""
    kv, service = local_stack.vault.secrets.kv.v2, "threads"
    path = f"{PREFIX}/{service}"
    version = current_version(local_stack, service)
    kv.delete_latest_version_of_secret(path=path, mount_point="secret")
    try:
        started = time.monotonic()
        proc = run_cli(local_stack, service, "--run-id", "e2e-missing")
        local_stack.timings["gate_secret_missing_s"] = round(time.monotonic() - started, 1)
    finally:
        kv.undelete_secret_versions(path=path, versions=[version], mount_point="secret")
    assert proc.returncode == 3, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert (f"{service}: Vault key secret/{path}: its current version {version} is deleted (owner: {service})"
            in proc.stdout)
    assert re.search(rf"^{service}\s+blocked\s+SECRET_MISSING\s", proc.stdout, re.MULTILINE), proc.stdout
    error = ET.parse(local_stack.project / "build" / "junit" / f"{service}.xml").getroot().find(".//error")
    assert error is not None and error.get("type") == "SECRET_MISSING"
    assert local_stack.kubectl_json("get", "jobs", "-n", NAMESPACE, "-l", "ameide.io/run-id=e2e-missing")["items"] == []

    role_path = "auth/kubernetes/role/integration-tests-local-eso"
    role = local_stack.vault.read(role_path)["data"]
    # A new version the ExternalSecret has not synced, and ESO's role revoked: the Secret cannot follow.
    data = kv.read_secret_version(path=path, mount_point="secret", raise_on_deleted_version=True)["data"]["data"]
    kv.create_or_update_secret(path=path, secret=data, mount_point="secret")
    local_stack.vault.delete(role_path)
    try:
        started = time.monotonic()
        proc = run_cli(local_stack, service, "--run-id", "e2e-denied")
        local_stack.timings["gate_vault_auth_denied_s"] = round(time.monotonic() - started, 1)
    finally:
        local_stack.vault.write(role_path, **role)
    assert proc.returncode == 3, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "VAULT_AUTH_DENIED" in proc.stdout and "Vault has no role integration-tests-local-eso" in proc.stdout
    for measured in ("gate_secret_missing_s", "gate_vault_auth_denied_s"):
        assert local_stack.timings[measured] < GATE_BOUND_S / 2, local_stack.timings
    again = run_cli(local_stack, service, "--run-id", "e2e-restored")
    assert again.returncode == 0, again.stdout[-2000:]


def test_an_image_that_cannot_be_pulled_is_the_infrastructures_and_is_retried(local_stack: LocalStack) -> None:
    recorded = manifest(local_stack, "e2e-restored")
    bogus = local_stack.project / "build" / "bogus-manifest.json"
    recorded["services"]["threads"]["imageId"] = "testinfra.invalid/integration-suite@sha256:" + "0" * 64
    bogus.write_text(json.dumps(recorded))
    started = time.monotonic()
    proc = run_cli(local_stack, "threads", "--replay", str(bogus), "--run-id", "e2e-pull", "--stuck-seconds", "5")
    local_stack.timings["image_pull_two_attempts_s"] = round(time.monotonic() - started, 1)
    assert proc.returncode == 4, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "IMAGE_PULL" in proc.stdout and "retrying (1 of at most 1 retries)" in proc.stdout
    attempts = manifest(local_stack, "e2e-pull")["services"]["threads"]["attempts"]
    assert [(a["cause"], a["reason"]) for a in attempts] == [("infrastructure", "IMAGE_PULL")] * 2
    root = ET.parse(local_stack.project / "build" / "junit" / "threads.xml").getroot()
    assert [e.get("type") for e in root.iter("rerunFailure")] == ["IMAGE_PULL"]
    # Each stuck attempt was ended, not left pulling until its deadline.
    left = local_stack.kubectl_json("get", "jobs", "-n", NAMESPACE, "-l", "ameide.io/run-id=e2e-pull")["items"]
    assert [j["metadata"]["name"] for j in left if not j["metadata"].get("deletionTimestamp")] == []


def evict_first_running_pod(stack: LocalStack, run_id: str, found: list[str]) -> None:
    """What a node drain does to a suite: the Eviction API on its pod, once it runs."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not found:
        pods = stack.kubectl_json("get", "pods", "-n", NAMESPACE, "-l", f"ameide.io/run-id={run_id}")["items"]
        running = [p for p in pods if any("running" in (s.get("state") or {})
                                          for s in p["status"].get("containerStatuses") or [])]
        if running:
            name = running[0]["metadata"]["name"]
            eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": NAMESPACE},
                        "deleteOptions": {"gracePeriodSeconds": 0}}
            subprocess.run(["kubectl", "create", "--raw", f"/api/v1/namespaces/{NAMESPACE}/pods/{name}/eviction",
                            "-f", "-"], input=json.dumps(eviction), env=stack.env, capture_output=True, text=True,
                           timeout=60, check=True)
            found.append(name)
        time.sleep(0.3)


def test_a_suite_evicted_once_then_passing_is_reported_flaky(local_stack: LocalStack) -> None:
    """workflows sleeps 15 s in its suite (SUITE_FAULT, this test's stack copy only): its first pod is
    evicted while it runs; the Job fails by the chart's podFailurePolicy, the run is the infrastructure's,
    retried once, passes, and is reported flaky (flakyFailure), never as a clean pass."""
    service = "workflows"
    local_stack.config_set(f"serviceOverrides.{service}.env.SUITE_FAULT", "sleep:15")
    up = local_stack.make("up", extra_env={"PULUMI_SKIP_CONFIRMATIONS": "true"})
    assert up.returncode == 0, up.stdout[-3000:]
    evicted: list[str] = []
    evictor = threading.Thread(target=evict_first_running_pod, args=(local_stack, "e2e-flaky", evicted))
    evictor.start()
    started = time.monotonic()
    proc = run_cli(local_stack, service, "--run-id", "e2e-flaky")
    local_stack.timings["evicted_then_flaky_run_s"] = round(time.monotonic() - started, 1)
    evictor.join()
    local_stack.config_rm(f"serviceOverrides.{service}")
    assert evicted and proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert re.search(rf"^{service}\s+flaky\s+PASSED\s", proc.stdout, re.MULTILINE), proc.stdout
    root = ET.parse(local_stack.project / "build" / "junit" / f"{service}.xml").getroot()
    assert [e.get("type") for e in root.iter("flakyFailure")] == ["EVICTED"]
    assert root.find(".//failure") is None and root.find(".//error") is None
    record = manifest(local_stack, "e2e-flaky")["services"][service]
    assert record["flaky"] is True and [a["reason"] for a in record["attempts"]] == ["EVICTED", "PASSED"]


def test_the_rotation_drill_moves_every_consumer_to_the_new_version_and_destroys_the_old_after_the_window(
        local_stack: LocalStack) -> None:
    """The shared bearer token (four consumers) back to `generated`, then `make rotate`: a new version,
    every consumer's run used it (provenance), and the previous version is destroyed after the window."""
    local_stack.config_set(f"secretSources.{EXTERNAL_KEY}", "generated")
    up = local_stack.make("up", extra_env={"PULUMI_SKIP_CONFIRMATIONS": "true"})
    assert up.returncode == 0, up.stdout[-3000:]
    consumers = sorted(n for n, s in stack_outputs(local_stack)["services"].items()
                       if f"secret/{PREFIX}/{EXTERNAL_KEY}" in s["vaultKeys"])
    assert len(consumers) >= 2
    before = current_version(local_stack, EXTERNAL_KEY)
    started = time.monotonic()
    proc = local_stack.make("rotate", f"KEY={EXTERNAL_KEY}", "OVERLAP=5", timeout=900)
    local_stack.timings["rotation_drill_s"] = round(time.monotonic() - started, 1)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    after = current_version(local_stack, EXTERNAL_KEY)
    assert after == before + 1 and f"version {before} -> {after}" in proc.stdout
    propagation = []
    for service in consumers:
        line = re.search(rf"^rotate: {service}\s+used version (\d+)\s+propagation ([\d.]+) s", proc.stdout, re.MULTILINE)
        assert line and int(line.group(1)) == after, proc.stdout[-3000:]
        propagation.append(float(line.group(2)))
    local_stack.timings["rotation_propagation_max_s"] = max(propagation)
    meta = local_stack.vault.secrets.kv.v2.read_secret_metadata(path=f"{PREFIX}/{EXTERNAL_KEY}", mount_point="secret")
    assert meta["data"]["versions"][str(before)]["destroyed"] is True
    assert meta["data"]["versions"][str(after)]["destroyed"] is False
    runs = sorted((local_stack.project / "build" / "runs").glob("rotate-*/run-manifest.json"))
    recorded = json.loads(runs[-1].read_text())["services"]
    assert sorted(recorded) == consumers
    assert {k["version"] for r in recorded.values() for k in r["keys"]
            if k["path"] == f"secret/{PREFIX}/{EXTERNAL_KEY}"} == {after}


def test_each_run_records_its_phases_summing_to_its_time_and_an_otlp_trace(local_stack: LocalStack) -> None:
    """The 12 suites of the `make run` above where two failed: every phase boundary read from the real
    pod, its events and its report, for a failing suite as for a passing one; the phases sum to the
    runner's own clock within 2 %; the 15 s the flaky suite sleeps lands in its report phase; the run's
    OTLP trace has a task per suite, each with its own result."""
    runs = local_stack.project / "build" / "runs"
    records = manifest(local_stack, "e2e-all")["services"]
    assert len(records) == 12
    for service, record in records.items():
        phases = record["phases"]
        assert phases["missing"] == [] and set(phases["seconds"]) == set(PHASES), (service, phases)
        total = sum(phases["seconds"].values())
        assert abs(total - record["seconds"]) <= 0.02 * record["seconds"], (service, total, record["seconds"])
    table = percentiles([r["phases"] for r in records.values()])
    for phase, quantiles in table.items():
        local_stack.timings[f"run_phase_{phase}_p50_s"] = quantiles[50]
    flaky = manifest(local_stack, "e2e-flaky")["services"]["workflows"]["phases"]["seconds"]
    assert flaky["reportWritten"] >= 14, flaky  # SUITE_FAULT=sleep:15 runs inside the suite
    trace = json.loads((runs / "e2e-all" / "run-trace.otlp.json").read_text())
    spans = [s for r in trace["resourceSpans"] for ss in r["scopeSpans"] for s in ss["spans"]]
    attributes = [{a["key"]: a["value"].get("stringValue") for a in s["attributes"]} for s in spans]
    results = {a["cicd.pipeline.task.name"]: a.get("cicd.pipeline.task.run.result")
               for a in attributes if "cicd.pipeline.task.name" in a}
    assert results == {**{service: "success" for service in records}, FAILING: "failure", CHANGED_SERVICE: "failure"}


def test_the_run_history_page_works_in_a_real_browser_and_holds_no_secret(local_stack: LocalStack) -> None:
    """`make report` over every run this module made (passes, failures, a flaky pass, blocked and
    infrastructure runs), opened in headless Chromium: no console error, one cell per run and suite,
    the suite filter, every JUnit link; no value of any Vault key in the page or the runs' files."""
    if not CHROMIUM.exists():
        pytest.skip("no Chromium: `make node-packages` installs Debian's chromium (it needs root and apt-get)")
    proc = local_stack.make("report")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    runs_dir = local_stack.project / "build" / "runs"
    manifests = [json.loads(p.read_text()) for p in runs_dir.glob("*/run-manifest.json")]
    suites = {s for m in manifests for s in m["services"]}
    assert len(manifests) >= 10 and len(suites) == 12
    with served(runs_dir) as url, chromium() as page:
        page.goto(url + "index.html")
        assert page.locator("#grid tbody td").count() == len(manifests) * len(suites)
        shown = {page.locator("#grid tbody td").nth(i).get_attribute("data-result")
                 for i in range(page.locator("#grid tbody td").count())}
        assert {"pass", "fail", "flaky", "secret", "infrastructure"} <= shown, shown
        links = page.eval_on_selector_all("#grid a", "links => links.map(a => a.href)")
        assert len(links) >= len(manifests)
        for link in links:
            response = page.request.get(link)
            assert response.status == 200 and b"<testsuite" in response.body(), link
        page.fill("#suite-filter", CHANGED_SERVICE)
        visible = page.eval_on_selector_all("#grid tbody tr", "rows => rows.filter(r => !r.hidden).map(r => r.dataset.suite)")
        assert visible == sorted(s for s in suites if CHANGED_SERVICE in s)
        assert page.console_errors == []
    values = vault_values(local_stack)
    assert len(values) >= 10
    for path in [runs_dir / "index.html", *runs_dir.glob("*/*")]:
        text = path.read_text(errors="replace")
        assert not [v for v in values if v in text], f"{path.name} holds a value of a Vault key"



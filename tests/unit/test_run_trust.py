"""What `make run` trusts: a replayed manifest chooses only a digest, never the repository, stack or
namespace; VAULT_TOKEN goes only to the Vault the stack file names, never over plain http beyond
loopback, whatever the outputs (written from the state) say."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest

import config.files
from runs import run as live_run
from tests.conftest import project_with_stack
from tests.unit.fakes import PASSING, FakeCluster, wrapped

DIGEST = "sha256:" + "e" * 64
STACK_IMAGE = "registry.test/suites/graph:2026.12"


def saved_outputs(tmp_path: Path, **changes: Any) -> Path:
    data: dict[str, Any] = {
        "schemaVersion": "1.1", "environment": "local", "namespace": "integration-tests", "kubeContext": "ctx",
        "vault": {"address": "http://127.0.0.1:8200", "role": "r", "authMount": "kubernetes"},
        "services": {"graph": {"cronJob": "test-graph", "timeoutSeconds": 100, "image": STACK_IMAGE}}}
    data.update(changes)
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(data))
    return path


def manifest(tmp_path: Path, *, image: str = STACK_IMAGE, namespace: str = "integration-tests",
             stack: str = "local", image_id: str = f"registry.test/suites/graph@{DIGEST}") -> Path:
    path = tmp_path / "run-manifest.json"
    path.write_text(json.dumps({"runId": "r1", "stack": stack, "namespace": namespace,
                                "services": {"graph": {"image": image, "imageId": image_id}}}))
    return path


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    fake = FakeCluster({"graph": "Complete"}, {"graph": PASSING})
    monkeypatch.setattr(live_run, "ClientCluster", lambda *a, **k: fake)
    monkeypatch.setattr(live_run, "Runner", functools.partial(live_run.Runner, sleep=lambda _: None))
    return fake


def run(tmp_path: Path, *args: str) -> int:
    return live_run.main(["graph", "--junit-dir", str(tmp_path / "j"), "--runs-dir", str(tmp_path / "runs"), *args])


@pytest.mark.parametrize(
    ("recorded", "named"),
    [({"image": "evil.example/miner:1", "image_id": f"evil.example/miner@{DIGEST}"}, "repository 'evil.example/miner'"),
     ({"namespace": "integration-tests-staging"}, "namespace 'integration-tests-staging'"),
     ({"stack": "staging"}, "stack 'staging'"),
     ({"image_id": "sha256:not-a-digest$(id)"}, "imageId is not a sha256 digest")],
    ids=["repository", "namespace", "stack", "digest"])
def test_a_replayed_manifest_that_does_not_match_the_run_is_refused_naming_what(
        tmp_path: Path, cluster: FakeCluster, capsys: pytest.CaptureFixture[str], recorded: dict[str, str],
        named: str) -> None:
    code = run(tmp_path, "--outputs", str(saved_outputs(tmp_path)), "--skip-gate",
               "--replay", str(manifest(tmp_path, **recorded)))
    assert code == 2 and named in capsys.readouterr().err
    assert cluster.jobs == {}  # nothing started


def test_a_replay_runs_the_stacks_repository_at_the_recorded_digest(tmp_path: Path, cluster: FakeCluster) -> None:
    # The manifest names the same repository under another tag: only its digest is taken.
    recorded = manifest(tmp_path, image="registry.test/suites/graph:other-tag")
    assert run(tmp_path, "--outputs", str(saved_outputs(tmp_path)), "--skip-gate", "--replay", str(recorded)) == 0
    (job,) = cluster.jobs.values()
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == f"registry.test/suites/graph@{DIGEST}"
    written = json.loads((tmp_path / "j" / "run-manifest.json").read_text())
    assert written["stack"] == "local"  # what the next replay is checked against


@pytest.fixture
def stack_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    project = project_with_stack(tmp_path / "project", vaultAddress="https://vault.stack-file.test:8200",
                                 kubeContext="context-of-the-stack-file")
    monkeypatch.setattr(config.files, "PROJECT_DIR", project)
    return project


def test_with_stack_the_token_goes_to_the_stack_files_vault_and_context_not_the_outputs(
        tmp_path: Path, stack_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from config.outputs import read_file

    stack = read_file(saved_outputs(
        tmp_path, vault={"address": "http://attacker.test:8200", "role": "r", "authMount": "kubernetes"},
        kubeContext="context-from-the-state"))
    args = type("Args", (), {"stack": "local", "outputs": None, "context": None, "skip_gate": False,
                             "vault_address": None})()
    where = live_run.endpoints(args, stack, "local")  # type: ignore[arg-type]
    assert where.vault_address == "https://vault.stack-file.test:8200"
    assert where.vault_from == "vaultAddress in Pulumi.local.yaml"
    assert where.kube_context == "context-of-the-stack-file"


def test_with_outputs_a_vault_address_other_than_the_stack_files_is_refused(
        tmp_path: Path, stack_project: Path, cluster: FakeCluster, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_TOKEN", "canary-token-1b2c")
    saved = saved_outputs(tmp_path, vault={"address": "https://attacker.test:8200", "role": "r",
                                           "authMount": "kubernetes"})
    assert run(tmp_path, "--outputs", str(saved)) == 2
    err = capsys.readouterr().err
    assert "attacker.test" in err and "vaultAddress in Pulumi.local.yaml" in err and "canary" not in err
    assert cluster.jobs == {}


def test_with_outputs_and_no_stack_file_the_vault_must_be_given(
        tmp_path: Path, cluster: FakeCluster, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config.files, "PROJECT_DIR", tmp_path)  # no stack files here
    monkeypatch.setenv("VAULT_TOKEN", "x")
    assert run(tmp_path, "--outputs", str(saved_outputs(tmp_path))) == 2
    assert "pass --vault-address" in capsys.readouterr().err


@pytest.mark.parametrize("address", ["http://vault.example:8200", "http://10.0.0.8:8200", "http://[::ffff:1.2.3.4]:8200"])
def test_a_token_is_never_sent_over_plain_http_beyond_loopback(
        tmp_path: Path, cluster: FakeCluster, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        address: str) -> None:
    monkeypatch.setenv("VAULT_TOKEN", "x")
    assert run(tmp_path, "--outputs", str(saved_outputs(tmp_path)), "--vault-address", address) == 2
    assert "is not https" in capsys.readouterr().err


BEARER = "Zq8LmN2pR4tV6xB9cD1fG3hJ5kS7wYaE"  # as the stack generates one: 32 letters and digits
DB_URL = "postgres://graph:s3cr3t-external-value@db.test:5432/graph"


@pytest.mark.parametrize("readable", [True, False], ids=["secret-readable", "secret-forbidden"])
def test_the_log_and_junit_a_run_writes_never_hold_a_value_the_suite_received(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, readable: bool) -> None:
    """The suite prints its secrets (mid-line, in a case name, in a failure message): what `make run`
    writes -- uploaded as the review workflow's artifact -- holds none of them."""
    leaky = wrapped(f'<testsuite name="graph" tests="1"><testcase name="token {BEARER}"><failure message="'
                    f'could not connect to {DB_URL}"/></testcase></testsuite>',
                    before=f"env: TOKEN={BEARER} USER=transformation")
    fake = FakeCluster({"graph": "Complete"}, {"graph": leaky})
    fake.secrets = {"graph-int-tests-secrets": {"INTEGRATION_TEST_BEARER_TOKEN": BEARER, "GRAPH_DATABASE_URL": DB_URL,
                                                "GRAPH_DATABASE_USER": "transformation"} if readable else None}
    monkeypatch.setattr(live_run, "ClientCluster", lambda *a, **k: fake)
    monkeypatch.setattr(live_run, "Runner", functools.partial(live_run.Runner, sleep=lambda _: None))
    outputs = saved_outputs(tmp_path, services={"graph": {"cronJob": "test-graph", "timeoutSeconds": 100,
                                                          "image": STACK_IMAGE,
                                                          "secretName": "graph-int-tests-secrets"}})
    run(tmp_path, "--outputs", str(outputs), "--skip-gate")
    written = {p: p.read_text() for p in (tmp_path / "j").rglob("*") if p.is_file()}
    assert any(p.suffix == ".log" for p in written) and any(p.suffix == ".xml" for p in written)
    for path, text in written.items():
        assert BEARER not in text, path
        if readable:
            assert DB_URL not in text and "s3cr3t-external-value" not in text, path
    assert "[redacted: a value of graph-int-tests-secrets]" in written[tmp_path / "j" / "graph.log"]
    # A plain word among the values (a user name, here the service's own name) is left alone: the
    # suite's name in the JUnit stays readable (the e2e tier once saw `test-[redacted: ...]`).
    assert "USER=transformation" in written[tmp_path / "j" / "graph.log"]


@pytest.mark.parametrize(("name", "value", "redacted"), [
    ("DATABASE_USER", "transformation", False),  # a plain word: garbling it would hide nothing
    ("MINIO_ACCESS_KEY", "agents", False),  # an access key id that is the service's name (e2e found it)
    ("DATABASE_PASSWORD", "hunter22", True),  # short, but its name says what it is
    ("API_URL", "https://user:pw1234@api.test/v1", True),  # a password in a URL
    ("SHARED", "Zq8LmN2pR4tV6xB9cD1fG3hJ5kS7wYaE", True),  # generated
    ("OPAQUE", "d41d8cd98f00b204e9800998ecf8427e", True),  # 20+ characters, no space
    ("GREETING", "hello world", False),
])
def test_which_values_of_a_secret_are_redacted(name: str, value: str, redacted: bool) -> None:
    from config.credentials import worth_redacting

    assert worth_redacting(name, value) is redacted

"""`make diff`: renders BASE and the working tree and shows, per object, what a change does.

Runs on a throwaway git repository holding a copy of the project, with the real helm."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_DIR, overlay_fixture_files

pytestmark = pytest.mark.helm


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("diff-repo")
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=PROJECT_DIR,
                           capture_output=True, text=True, check=True).stdout.splitlines()
    for rel in files:
        src = PROJECT_DIR / rel
        if src.is_file():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(src.read_bytes())
    overlay_fixture_files(root)  # the tests' own catalog and stack files
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "base"], cwd=root, check=True)
    for shared in (".venv", ".tools"):  # after the commit: like the real ones, never committed
        (root / shared).symlink_to(PROJECT_DIR / shared)
    return root


def run_diff(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "offline.diff", *args], cwd=repo, capture_output=True,
                          text=True, timeout=300, check=False)


def test_no_change_says_so(repo: Path) -> None:
    proc = run_diff(repo, "--base", "HEAD", "--stack", "staging")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "staging: no changes\n"


def test_a_timeout_change_shows_exactly_that_services_job_cron_job_and_outputs(repo: Path) -> None:
    catalog = repo / "catalog.yaml"
    original = catalog.read_text()
    graph = original.index("  graph:\n")
    changed = original[:graph] + original[graph:].replace("timeoutSeconds: 100", "timeoutSeconds: 90", 1)
    assert changed != original
    catalog.write_text(changed)
    try:
        proc = run_diff(repo, "--base", "HEAD", "--stack", "staging")
    finally:
        catalog.write_text(original)
    assert proc.returncode == 0, proc.stderr
    objects = set(re.findall(r"^\+\+\+ head/staging/(.+)$", proc.stdout, re.MULTILINE))
    # The install-time Job gets a new name (a hash of its spec): the old one goes, the new one comes.
    jobs = {o for o in objects if o.startswith("Job ")}
    assert len(jobs) == 2 and all(o.startswith("Job integration-tests/test-graph-") for o in jobs)
    assert objects - jobs == {"CronJob integration-tests/test-graph", "outputs.json"}
    assert proc.stdout.splitlines()[0] == "staging: 1 added, 2 changed, 1 removed"
    assert '+      "timeoutSeconds": 90,' in proc.stdout  # outputs.json
    assert "+          value: '90'" in proc.stdout  # INTEGRATION_TEST_TIMEOUT of the Job and CronJob


def test_a_bad_base_is_one_clear_message(repo: Path) -> None:
    proc = run_diff(repo, "--base", "no-such-ref", "--stack", "staging")
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("diff: BASE 'no-such-ref' is not a commit of this repository: give a branch, "
                                   "tag or commit (e.g. BASE=origin/main), fetched first")
    assert "Traceback" not in proc.stderr


def test_the_base_renders_without_credentials_or_the_checkouts_interpreter(repo: Path, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    probe = tmp_path / "probe.json"
    hostile = (
        "import json, os, sys, sysconfig\n"
        f"json.dump({{'env': sorted(os.environ), 'prefix': sys.prefix, 'home': os.environ.get('HOME')}}, "
        f"open({str(probe)!r}, 'w'))\n"
        "open(os.path.join(sysconfig.get_path('purelib'), 'planted.pth'), 'w').write('import os\\n')\n"
        "sys.exit(1)\n"
    )
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    render_py = repo / "offline" / "render.py"
    original = render_py.read_text()
    render_py.write_text(hostile)
    subprocess.run([*git, "commit", "-qam", "hostile base"], cwd=repo, check=True)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                         check=True).stdout.strip()
    subprocess.run(["git", "reset", "-q", "--hard", "HEAD~1"], cwd=repo, check=True)
    assert render_py.read_text() == original
    checkout_purelib = Path(subprocess.run([str(repo / ".venv" / "bin" / "python"), "-c",
                                            "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                           capture_output=True, text=True, check=True).stdout.strip())
    for name in ("VAULT_TOKEN", "GH_TOKEN", "PULUMI_CONFIG_PASSPHRASE", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "CANARY-not-for-the-base")
    proc = run_diff(repo, "--base", sha, "--stack", "staging")
    assert proc.returncode == 2 and "the render of staging at BASE" in proc.stderr
    seen = json.loads(probe.read_text())
    assert not {"VAULT_TOKEN", "GH_TOKEN", "PULUMI_CONFIG_PASSPHRASE", "AWS_SECRET_ACCESS_KEY"} & set(seen["env"])
    assert Path(seen["prefix"]).resolve() != (PROJECT_DIR / ".venv").resolve()
    assert "testinfra-diff-" in seen["home"]
    assert not (checkout_purelib / "planted.pth").exists()

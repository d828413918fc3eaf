"""The local suite image's suite (images/suite/app), run here with this checkout's pytest: it finds
its JUnit path by each runner's convention, stops naming a missing variable, checks shapes, honours
its timeout, and records fingerprints -- never values. (On the node it runs inside the image: make e2e.)"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.conftest import PROJECT_DIR

SUITE_APP = PROJECT_DIR / "images" / "suite" / "app"
ENTRYPOINT = Path("__tests__") / "integration" / "run_integration_tests.sh"
DB_URL = "postgresql://graph:s3cr3t-canary@postgres:5432/graph"


def run_suite(tmp_path: Path, env: dict[str, str], timeout: float = 60) -> tuple[subprocess.CompletedProcess[str], Path]:
    """The suite as the image holds it: its own folder (no project pytest.ini above it) and pytest
    without this checkout's plugins (the image installs pytest alone: images/suite/requirements.txt)."""
    junit = tmp_path / "results" / "junit.xml"
    junit.parent.mkdir(exist_ok=True)
    app = tmp_path / "app"
    if not app.exists():
        shutil.copytree(SUITE_APP, app, ignore=shutil.ignore_patterns("__pycache__"))
    base = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path),
            "INTEGRATION_TEST_JUNIT_PATH": str(junit), "INTEGRATION_TEST_TIMEOUT": "60",
            "PYTHONDONTWRITEBYTECODE": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    proc = subprocess.run(["/bin/sh", str(app / ENTRYPOINT)], env={**base, **env}, cwd=tmp_path, capture_output=True,
                          text=True, timeout=timeout, check=False)
    return proc, junit


def outcomes(junit: Path) -> dict[str, str]:
    out = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        out[case.get("name", "")] = next((c.tag for c in case if c.tag in ("failure", "skipped", "error")), "passed")
    return out


def test_present_variables_pass_and_are_recorded_as_fingerprints_only(tmp_path: Path) -> None:
    proc, junit = run_suite(tmp_path, {"INTEGRATION_TEST_REQUIRED_ENV": "GRAPH_DATABASE_URL,TEMPORAL_ADDRESS",
                                       "GRAPH_DATABASE_URL": DB_URL, "TEMPORAL_ADDRESS": "temporal:7233",
                                       "PYTEST_ADDOPTS": f"--junitxml={tmp_path / 'results' / 'junit.xml'}"})
    result = outcomes(junit)
    assert result["test_required_variable_is_set[GRAPH_DATABASE_URL]"] == "passed"
    assert result["test_variable_has_the_promised_shape[TEMPORAL_ADDRESS]"] == "passed"
    report = junit.read_text()
    assert f"sha256:{hashlib.sha256(DB_URL.encode()).hexdigest()}" in report
    assert "s3cr3t-canary" not in report + proc.stdout + proc.stderr


def test_a_missing_variable_stops_the_suite_naming_it_not_any_value(tmp_path: Path) -> None:
    proc, junit = run_suite(tmp_path, {"INTEGRATION_TEST_REQUIRED_ENV": "GRAPH_DATABASE_URL,DATABASE_URL",
                                       "GRAPH_DATABASE_URL": DB_URL, "DATABASE_URL": ""})
    assert proc.returncode == 1
    result = outcomes(junit)
    assert result["test_required_variable_is_set[DATABASE_URL]"] == "failure"
    assert result["test_variable_has_the_promised_shape[GRAPH_DATABASE_URL]"] == "skipped"
    assert "DATABASE_URL is missing or empty" in junit.read_text()
    assert "s3cr3t-canary" not in junit.read_text() + proc.stdout + proc.stderr


def test_a_value_without_the_promised_shape_fails(tmp_path: Path) -> None:
    _, junit = run_suite(tmp_path, {"INTEGRATION_TEST_REQUIRED_ENV": "X_URL,Y_ADDRESS",
                                    "X_URL": "not a url", "Y_ADDRESS": "no-port"})
    result = outcomes(junit)
    assert result["test_variable_has_the_promised_shape[X_URL]"] == "failure"
    assert result["test_variable_has_the_promised_shape[Y_ADDRESS]"] == "failure"


def test_gotestsum_and_jest_conventions_place_the_report(tmp_path: Path) -> None:
    go_file = tmp_path / "go" / "report.xml"
    go_file.parent.mkdir()
    run_suite(tmp_path, {"GOTESTSUM_JUNITFILE": str(go_file)})
    assert "test_injected_fault" in go_file.read_text()
    jest_dir = tmp_path / "jest"
    jest_dir.mkdir()
    run_suite(tmp_path, {"JEST_JUNIT_OUTPUT_DIR": str(jest_dir), "JEST_JUNIT_OUTPUT_NAME": "out.xml"})
    assert "test_injected_fault" in (jest_dir / "out.xml").read_text()


def test_the_suite_stops_itself_at_its_timeout_and_still_reports(tmp_path: Path) -> None:
    started = time.monotonic()
    proc, junit = run_suite(tmp_path, {"INTEGRATION_TEST_TIMEOUT": "2", "SUITE_FAULT": "sleep:60"}, timeout=40)
    assert time.monotonic() - started < 30
    assert proc.returncode == 1
    assert outcomes(junit)["test_injected_fault"] == "failure"
    assert "ran past INTEGRATION_TEST_TIMEOUT=2 s" in junit.read_text()


def test_an_injected_failure_is_one_failing_case(tmp_path: Path) -> None:
    proc, junit = run_suite(tmp_path, {"SUITE_FAULT": "fail"})
    assert proc.returncode == 1
    assert [n for n, o in outcomes(junit).items() if o == "failure" and n != "test_runs_unprivileged_on_a_read_only_root"] == [
        "test_injected_fault"]
    assert os.path.getsize(junit) > 0

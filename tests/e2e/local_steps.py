"""What the local stack's two e2e modules (test_local_stack.py, test_local_stack_runs.py) share: the
names the local stack is deployed under, its deployment from empty, and the reads both make of it."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import xml.etree.ElementTree as ET
from typing import Any

from tests.e2e.conftest import EXTERNAL_KEY, LocalStack

NAMESPACE = "integration-tests"
PREFIX = "integration/local"
CHANGED_SERVICE = "graph"


def deploy_from_empty(stack: LocalStack) -> subprocess.CompletedProcess[str]:
    """A new environment's first `make up`: the bearer token written by its owner first, the stack made
    (what `make up` does first on a new backend) so its config can name that key `external`."""
    stack.vault.secrets.kv.v2.create_or_update_secret(
        path=f"{PREFIX}/{EXTERNAL_KEY}", mount_point="secret", secret={"token": secrets.token_urlsafe(24)})
    stack.run("pulumi", "stack", "select", "--create", "--secrets-provider", "passphrase", "local", check=True)
    stack.config_set(f"secretSources.{EXTERNAL_KEY}", "external")
    return stack.make("up", timed="up_from_empty_s", extra_env={"PULUMI_SKIP_CONFIRMATIONS": "true"})


def stack_outputs(stack: LocalStack) -> dict[str, Any]:
    return json.loads(stack.pulumi("stack", "output", "--json", check=True).stdout)


def deployment(stack: LocalStack) -> list[dict[str, Any]]:
    exported = json.loads(stack.pulumi("stack", "export", check=True).stdout)
    return list(exported["deployment"].get("resources") or [])


def suite_report(stack: LocalStack, job: str) -> ET.Element:
    """The JUnit the suite itself wrote, as the chart's wrapper printed it at the end of the pod's log."""
    log = stack.run("kubectl", "logs", f"job/{job}", "-n", NAMESPACE, check=True, timeout=60).stdout
    body = re.search(r"--- BEGIN JUNIT (\S+) ---\n(.*)\n--- END JUNIT \1 ---", log, re.DOTALL)
    assert body, f"{job}: no JUnit between the wrapper's markers"
    return ET.fromstring(body.group(2).strip())


def case_outcomes(report: ET.Element) -> dict[str, str]:
    out = {}
    for case in report.iter("testcase"):
        kind = next((c.tag for c in case if c.tag in ("failure", "error", "skipped")), "passed")
        out[case.get("name", "")] = kind
    return out


def vault_values(stack: LocalStack) -> set[str]:
    """Every value under the stack's Vault prefix of at least 16 characters: the generated values, the
    URLs and tokens (a shorter one, a user name such as `transformation`, is also a service's name)."""
    kv = stack.vault.secrets.kv.v2
    values = set()
    for key in kv.list_secrets(path=PREFIX, mount_point="secret")["data"]["keys"]:
        data = kv.read_secret_version(path=f"{PREFIX}/{key}", mount_point="secret",
                                      raise_on_deleted_version=False)["data"]["data"] or {}
        values |= {str(v) for v in data.values() if len(str(v)) >= 16}
    return values



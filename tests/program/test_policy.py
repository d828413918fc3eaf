"""The CrossGuard rules, called without the Pulumi CLI on the resources each stack declares."""

from __future__ import annotations

import copy
import sys

import pytest
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)

from offline.harness import Evaluation, RecordedResource
from tests.conftest import PROJECT_DIR, STACKS

sys.path.insert(0, str(PROJECT_DIR / "policy"))
import rules


def opts(res: RecordedResource) -> PolicyResourceOptions:
    return PolicyResourceOptions(res.protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), list(res.secret_outputs))


def resource_args(res: RecordedResource) -> ResourceValidationArgs:
    return ResourceValidationArgs(res.type, res.inputs, res.urn, res.name, opts(res), None)


def stack_args(ev: Evaluation) -> StackValidationArgs:
    return StackValidationArgs([
        PolicyResource(r.type, r.inputs, r.urn, r.name, opts(r), None, None, [], {}) for r in ev.resources
    ])


def test_the_pack_declares_every_rule() -> None:
    names = {p.name for p in rules.policies()}
    assert names == {"no-inline-credentials", "unified-entrypoint", "external-secrets-use-the-store",
                     "every-service-has-a-release", "prod-state-protected"}


def violations(ev: Evaluation) -> list[str]:
    found: list[str] = []
    report = lambda message, urn=None: found.append(message)  # noqa: E731
    for res in ev.resources:
        rules.no_inline_credentials(resource_args(res), report)
        rules.unified_entrypoint(resource_args(res), report)
    rules.external_secret_uses_the_store(stack_args(ev), report)
    rules.prod_state_is_protected(stack_args(ev), report)
    rules.every_catalog_service_has_a_release(stack_args(ev), report)
    return found


@pytest.mark.parametrize("stack", STACKS)
def test_the_program_passes_every_rule(evaluations, stack: str) -> None:
    assert violations(evaluations[stack]) == []


def mutated(ev: Evaluation, type_: str, change) -> Evaluation:
    resources = []
    for r in ev.resources:
        if r.type == type_:
            r = copy.deepcopy(r)
            change(r)
        resources.append(r)
    return Evaluation(ev.stack, resources, ev.outputs, ev.secret_output_names)


CREDENTIALS = {
    "query-password": "https://api.example.com/v1?user=ci&password=hunter2",
    "redis-empty-user": "redis://:hunter2@redis.ameide.svc:6379/0",
    "basic-header": "Basic dXNlcjpwYXNzd29yZA==",
    "bearer-header": "Bearer 4f9a1c2e8b7d6a5f4e3d2c1b",
    "jwt": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJjaSJ9.c2lnbmF0dXJlLW5vdC1yZWFsLWF0LWFsbA",
    "github-token": "ghp_" + "x1Y2z3" * 6,
    "slack-token": "xoxb-123456789012-123456789012-" + "a" * 24,
    "aws-key": "AKIA" + "QWERTYUIOPASDFGH",
    "stripe-key": "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "pem-key": "-----BEGIN PRIVATE KEY-----\nMIIB...\n-----END PRIVATE KEY-----",
    "libpq-dsn": "host=db.ameide.svc user=app password=hunter2 dbname=app",
    "url-credentials": "postgres://user:pw@db:5432/x",
    "slack-webhook": "https://hooks.slack.com/services/T00000000/B00000000/" + "X" * 24,
    "presigned-s3": "https://b.s3.amazonaws.com/r.zip?X-Amz-Credential=abc%2F20261125&X-Amz-Signature=0a1b2c3d",
    "presigned-gcs": "https://storage.googleapis.com/b/o?X-Goog-Signature=0a1b2c3d4e",
    "azure-sas": "https://acct.blob.core.windows.net/c/b?sv=2024-01-01&sig=abcdEFGH%3D",
}
CREDENTIAL_NAMES = ("DB_PASS", "ADMIN_PWD", "SMTP_AUTH", "GPG_PASSPHRASE")
NOT_CREDENTIALS = (
    "http://graph.ameide.svc.cluster.local:8080", "temporal-frontend.ameide.svc.cluster.local:7233", "ameide",
    "https://example.com/search?page=2&sort=asc", "Bearer", "debug", "minio.ameide.svc.cluster.local:9000",
    "postgres://db.ameide.svc:5432/app", "2026-11-25T00:00:00Z", "--junitxml=/results/junit.xml",
)


@pytest.mark.parametrize("value", list(CREDENTIALS.values()), ids=list(CREDENTIALS))
def test_a_credential_is_recognised_by_its_value(value: str) -> None:
    why = rules.credential_in("SETTING", value)
    assert why and value not in why


@pytest.mark.parametrize("name", CREDENTIAL_NAMES)
def test_a_credential_is_recognised_by_its_name(name: str) -> None:
    assert rules.credential_in(name, "x") == "its name"


@pytest.mark.parametrize("value", NOT_CREDENTIALS)
def test_ordinary_settings_are_not_credentials(value: str) -> None:
    assert rules.credential_in("SERVICE_URL", value) is None


def test_the_catalogs_own_env_has_no_false_positive() -> None:
    for name, service in rules.catalog()["services"].items():
        for env, value in (service.get("env") or {}).items():
            assert rules.credential_in(env, str(value)) is None, (name, env)


@pytest.mark.parametrize(
    ("stack", "type_", "change", "expected"),
    [
        ("staging", rules.RELEASE, lambda r: r.inputs["values"]["env"].append({"name": "DB_PASSWORD", "value": "x"}),
         "DB_PASSWORD is inline"),
        ("staging", rules.RELEASE, lambda r: r.inputs["values"]["env"].append(
            {"name": "DB", "value": "postgres://user:pw@db:5432/x"}), "looks like a credential (a password in a URL)"),
        ("staging", rules.RELEASE, lambda r: r.inputs["values"]["env"].append(
            {"name": "CI_LOGIN", "value": CREDENTIALS["github-token"]}), "looks like a credential (a GitHub Token)"),
        ("staging", rules.RELEASE, lambda r: r.inputs["values"].update(entrypoint="/bin/true"), "shared entrypoint"),
        ("staging", rules.EXTERNAL_SECRET, lambda r: r.inputs["spec"]["secretStoreRef"].update(name="other"),
         "is not this stack's store"),
        ("staging", rules.EXTERNAL_SECRET, lambda r: r.inputs["metadata"].update(namespace="default"),
         "integration namespace"),
        ("prod", "kubernetes:core/v1:Namespace", lambda r: object.__setattr__(r, "protect", False),
         "must be protected in prod"),
        ("staging", rules.RELEASE, lambda r: r.inputs.update(name=r.inputs["name"] + "-renamed"),
         "has no release test-"),
    ],
    ids=["secret-name", "url-credentials", "token-format", "entrypoint", "store", "namespace", "prod-protect", "missing-release"],
)
def test_each_rule_reports_its_violation(evaluations, stack, type_, change, expected: str) -> None:
    found = violations(mutated(evaluations[stack], type_, change))
    assert found and all(expected in v for v in found[:1]), found

"""config/credentials.py: what looks like a credential in an inline setting, by value and by name --
and what does not (the catalog's own env, service URLs and addresses)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from config.credentials import credential_in
from tests.conftest import PROJECT_DIR, fixture_project

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
    why = credential_in("SETTING", value)
    assert why and value not in why


@pytest.mark.parametrize("name", CREDENTIAL_NAMES)
def test_a_credential_is_recognised_by_its_name(name: str) -> None:
    assert credential_in(name, "x") == "its name"


@pytest.mark.parametrize("value", NOT_CREDENTIALS)
def test_ordinary_settings_are_not_credentials(value: str) -> None:
    assert credential_in("SERVICE_URL", value) is None


def test_the_catalogs_own_env_has_no_false_positive() -> None:
    for name, service in yaml.safe_load((fixture_project() / "catalog.yaml").read_text())["services"].items():
        for env, value in (service.get("env") or {}).items():
            assert credential_in(env, str(value)) is None, (name, env)


def test_the_rule_catches_at_least_95_percent_of_the_corpus_and_flags_no_ordinary_value() -> None:
    from tests.unit.credential_corpus import CREDENTIALS, ORDINARY

    missed = sorted(case for case, (name, value) in CREDENTIALS.items() if not credential_in(name, value))
    flagged = sorted(case for case, (name, value) in ORDINARY.items() if credential_in(name, value))
    assert len(CREDENTIALS) >= 100 and len(ORDINARY) >= 50
    assert 1 - len(missed) / len(CREDENTIALS) >= 0.95, missed
    assert flagged == []


@pytest.mark.parametrize("name", ["OAUTH_TOKEN_URL", "DB_PASSWORD_FILE", "API_KEY_HEADER", "AUTH_SCHEME"])
def test_a_name_that_describes_a_credential_is_not_one(name: str) -> None:
    assert credential_in(name, "https://auth.example.io/oauth/token") is None



def test_detect_secrets_is_configured_once_however_many_threads_ask_first() -> None:
    # Its settings are process-global: a second configuration while another thread scans would empty
    # the plugin list under that scan. The policy pack loads it in a thread while resources arrive.
    probe = (
        "import threading\n"
        "import detect_secrets.settings as settings\n"
        "from config.credentials import credential_in, load_detector\n"
        "configured, real = [], settings.configure_settings_from_baseline\n"
        "settings.configure_settings_from_baseline = lambda *a, **k: configured.append(1) or real(*a, **k)\n"
        "start = threading.Barrier(9)\n"
        "def ask(check):\n"
        "    start.wait()\n"
        "    check()\n"
        f"value = {CREDENTIALS['pem-key']!r}\n"
        "found = []\n"
        "threads = [threading.Thread(target=ask, args=(load_detector,))] + [threading.Thread(\n"
        "    target=ask, args=(lambda: found.append(credential_in('SETTING', value)),)) for _ in range(8)]\n"
        "[t.start() for t in threads]\n"
        "[t.join() for t in threads]\n"
        "print(len(configured), sorted(set(map(str, found))))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT_DIR, capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "1 ['a Private Key']"

"""A corpus of realistic inline credentials (fake, format-correct, made from a fixed seed) and of
ordinary settings, to measure the inline-credential rule: what it catches and what it wrongly flags.
Grouped by what they are; every value is built here, none is a real credential."""

from __future__ import annotations

import base64
import json
import random
import string

_rng = random.Random(20261129)
B62 = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
B64 = string.ascii_letters + string.digits + "+/"


def r(n: int, alphabet: str = B62) -> str:
    return "".join(_rng.choice(alphabet) for _ in range(n))


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def uuid() -> str:
    return f"{r(8, HEX)}-{r(4, HEX)}-{r(4, HEX)}-{r(4, HEX)}-{r(12, HEX)}"


def jwt() -> str:
    head = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(json.dumps({"sub": r(8), "iat": 1764000000}).encode()).rstrip(b"=").decode()
    return f"{head}.{body}.{r(43, B62 + '-_')}"


def pem(kind: str) -> str:
    return f"-----BEGIN {kind}-----\n{r(64, B64)}\n{r(64, B64)}\n-----END {kind}-----"


# (setting name, value): names are neutral unless the case is about the name.
CREDENTIALS: dict[str, tuple[str, str]] = {
    # source-control and package registries
    "github-classic": ("SETTING", "ghp_" + r(36)),
    "github-oauth": ("SETTING", "gho_" + r(36)),
    "github-app-user": ("SETTING", "ghu_" + r(36)),
    "github-app-install": ("SETTING", "ghs_" + r(36)),
    "github-refresh": ("SETTING", "ghr_" + r(36)),
    "github-fine-grained": ("SETTING", "github_pat_" + r(22) + "_" + r(59)),
    "gitlab-pat": ("SETTING", "glpat-" + r(20, B62 + "-_")),
    "gitlab-deploy": ("SETTING", "gldt-" + r(20, B62 + "-_")),
    "gitlab-runner": ("SETTING", "glrt-" + r(20, B62 + "-_")),
    "gitlab-pipeline-trigger": ("SETTING", "glptt-" + r(40, HEX)),
    "npm-token": ("SETTING", "npm_" + r(36)),
    "npm-rc": ("SETTING", "//registry.npmjs.org/:_authToken=npm_" + r(36)),
    "pypi-token": ("SETTING", "pypi-AgEIcHlwaS5vcmc" + r(60, B62 + "-_")),
    "docker-hub-pat": ("SETTING", "dckr_pat_" + r(27, B62 + "-_")),
    "rubygems": ("SETTING", "rubygems_" + r(48, HEX)),
    "nuget": ("SETTING", "oy2" + r(43, "abcdefghijklmnopqrstuvwxyz0123456789")),
    "artifactory": ("SETTING", "AKCp" + r(69)),
    "bitbucket-app-password": ("SETTING", "ATBB" + r(32) + r(8, HEX).upper()),
    # chat and webhooks
    "slack-bot": ("SETTING", f"xoxb-{r(12, string.digits)}-{r(12, string.digits)}-{r(24)}"),
    "slack-user": ("SETTING", f"xoxp-{r(12, string.digits)}-{r(12, string.digits)}-{r(12, string.digits)}-{r(32, HEX)}"),
    "slack-app": ("SETTING", f"xapp-1-A{r(10, string.digits)}-{r(13, string.digits)}-{r(64, HEX)}"),
    "slack-webhook": ("SETTING", f"https://hooks.slack.com/services/T{r(8, string.ascii_uppercase)}/"
                                 f"B{r(8, string.ascii_uppercase)}/{r(24)}"),
    "discord-webhook": ("SETTING", f"https://discord.com/api/webhooks/{r(18, string.digits)}/{r(68, B62 + '-_')}"),
    "teams-webhook": ("SETTING", f"https://ameide.webhook.office.com/webhookb2/{uuid()}@{uuid()}/IncomingWebhook/"
                                 f"{r(32, HEX)}/{uuid()}"),
    "telegram-bot": ("SETTING", f"{r(10, string.digits)}:AA{r(33, B62 + '-_')}"),
    "discord-bot": ("SETTING", f"M{r(23)}.{r(6)}.{r(27, B62 + '-_')}"),
    # payment and SaaS APIs
    "stripe-live": ("SETTING", "sk_live_" + r(24)),
    "stripe-test": ("SETTING", "sk_test_" + r(24)),
    "stripe-restricted": ("SETTING", "rk_live_" + r(24)),
    "stripe-webhook": ("SETTING", "whsec_" + r(32)),
    "sendgrid": ("SETTING", f"SG.{r(22, B62 + '-_')}.{r(43, B62 + '-_')}"),
    "mailgun": ("SETTING", "key-" + r(32, HEX)),
    "mailchimp": ("SETTING", r(32, HEX) + "-us21"),
    "twilio-api-key": ("SETTING", "SK" + r(32, HEX)),
    "twilio-account": ("SETTING", "AC" + r(32, HEX)),
    "shopify": ("SETTING", "shpat_" + r(32, HEX)),
    "openai-project": ("SETTING", "sk-proj-" + r(48, B62 + "-_") + "T3BlbkFJ" + r(48, B62 + "-_")),
    "openai-legacy": ("SETTING", "sk-" + r(20) + "T3BlbkFJ" + r(20)),
    "anthropic": ("SETTING", "sk-ant-api03-" + r(93, B62 + "-_") + "AA"),
    "huggingface": ("SETTING", "hf_" + r(34, string.ascii_letters)),
    "datadog-api-key": ("DD_API_KEY_HEX", r(32, HEX)),
    "newrelic-license": ("SETTING", "NRAK-" + r(27, string.ascii_uppercase + string.digits)),
    "sentry-dsn": ("SETTING", f"https://{r(32, HEX)}@o{r(6, string.digits)}.ingest.sentry.io/{r(7, string.digits)}"),
    "pagerduty": ("SETTING", "u+" + r(18, B62 + "-_")),
    "linear": ("SETTING", "lin_api_" + r(40)),
    "notion": ("SETTING", "secret_" + r(43)),
    "atlassian": ("SETTING", "ATATT3xFfGF0" + r(180, B62 + "-_") + "=" + r(8, HEX).upper()),
    "square": ("SETTING", "sq0atp-" + r(22, B62 + "-_")),
    "square-oauth": ("SETTING", "sq0csp-" + r(43, B62 + "-_")),
    "dropbox": ("SETTING", "sl." + r(135, B62 + "-_")),
    "doppler": ("SETTING", "dp.st." + r(43)),
    "pulumi": ("SETTING", "pul-" + r(40, HEX)),
    "terraform-cloud": ("SETTING", r(14) + ".atlasv1." + r(67)),
    "grafana-cloud": ("SETTING", "glc_" + r(80, B62 + "+/") + "=="),
    "grafana-sa": ("SETTING", "glsa_" + r(32) + "_" + r(8, HEX)),
    "databricks": ("SETTING", "dapi" + r(32, HEX)),
    # cloud
    "aws-access-key-id": ("SETTING", "AKIA" + r(16, string.ascii_uppercase + "234567")),
    "aws-session-key-id": ("SETTING", "ASIA" + r(16, string.ascii_uppercase + "234567")),
    "aws-secret-key-alone": ("AWS_SECRET_KEY_VALUE", r(40, B64)),
    "aws-credentials-line": ("SETTING", "aws_secret_access_key = " + r(40, B64)),
    "google-api-key": ("SETTING", "AIza" + r(35, B62 + "-_")),
    "gcp-service-account": ("SETTING", json.dumps({"type": "service_account", "private_key_id": r(40, HEX),
                                                   "private_key": pem("PRIVATE KEY")})),
    "google-oauth-secret": ("SETTING", "GOCSPX-" + r(28, B62 + "-_")),
    "azure-storage-conn": ("SETTING", f"DefaultEndpointsProtocol=https;AccountName=ameide;AccountKey={r(86, B64)}==;"
                                      "EndpointSuffix=core.windows.net"),
    "azure-service-bus": ("SETTING", "Endpoint=sb://ameide.servicebus.windows.net/;SharedAccessKeyName="
                                     f"RootManageSharedAccessKey;SharedAccessKey={r(43, B64)}="),
    "azure-sas-url": ("SETTING", f"https://ameide.blob.core.windows.net/c/b?sv=2024-01-01&se=2026-12-01&sig={r(43, B64)}%3D"),
    "azure-client-secret": ("SETTING", r(3, B62) + "8Q~" + r(34, B62 + "~._-")),
    "digitalocean": ("SETTING", "dop_v1_" + r(64, HEX)),
    "heroku": ("SETTING", "HRKU-AA" + r(58, B62 + "-_")),
    "alibaba-access-key": ("SETTING", "LTAI" + r(20)),
    "s3-presigned": ("SETTING", "https://b.s3.amazonaws.com/r.zip?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
                                f"AKIA{r(16, string.ascii_uppercase)}%2F20261129&X-Amz-Signature={r(64, HEX)}"),
    "gcs-signed": ("SETTING", "https://storage.googleapis.com/b/o?X-Goog-Algorithm=GOOG4-RSA-SHA256"
                              f"&X-Goog-Signature={r(64, HEX)}"),
    # secrets managers and identity
    "vault-service-token": ("SETTING", "hvs." + r(24)),
    "vault-batch-token": ("SETTING", "hvb." + r(140, B62 + "-_")),
    "vault-legacy-token": ("SETTING", "s." + r(24)),
    "openbao-token": ("SETTING", "s." + r(24)),
    "jwt": ("SETTING", jwt()),
    "okta": ("SETTING", "00" + r(40, B62 + "-_")),
    # keys
    "pem-rsa": ("SETTING", pem("RSA PRIVATE KEY")),
    "pem-ec": ("SETTING", pem("EC PRIVATE KEY")),
    "pem-openssh": ("SETTING", pem("OPENSSH PRIVATE KEY")),
    "pem-pkcs8": ("SETTING", pem("PRIVATE KEY")),
    "pem-pgp": ("SETTING", pem("PGP PRIVATE KEY BLOCK")),
    "age-secret": ("SETTING", "AGE-SECRET-KEY-1" + r(58, "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L")),
    # by where they sit in an ordinary value
    "url-password": ("SETTING", f"postgres://app:{r(16)}@db.ameide.svc:5432/app"),
    "url-empty-user": ("SETTING", f"redis://:{r(16)}@redis.ameide.svc:6379/0"),
    "url-password-with-slash": ("SETTING", f"postgresql://app:{r(6)}/{r(6)}@db.ameide.svc:5432/app"),
    "amqp-url": ("SETTING", f"amqps://svc:{r(20)}@rabbit.ameide.svc:5671/"),
    "mongodb-srv": ("SETTING", f"mongodb+srv://svc:{r(16)}@cluster0.abcde.mongodb.net/app"),
    "query-password": ("SETTING", f"https://api.example.com/v1?user=ci&password={r(12)}"),
    "query-api-key": ("SETTING", f"https://api.example.com/v1/items?api_key={r(32, HEX)}"),
    "libpq-dsn": ("SETTING", f"host=db.ameide.svc user=app password={r(14)} dbname=app"),
    "jdbc-password": ("SETTING", f"jdbc:postgresql://db:5432/app?user=app&password={r(14)}"),
    "odbc-pwd": ("SETTING", f"Server=db;Database=app;User Id=app;Pwd={r(14)};"),
    "cli-password-flag": ("SETTING", f"--user=app --password={r(14)}"),
    "cli-password-short": ("SETTING", f"mysql -u app -p{r(14)} -h db"),
    "basic-header": ("SETTING", "Basic " + b64(f"ci:{r(12)}".encode())),
    "bearer-header": ("SETTING", "Bearer " + r(40, B62 + "-_.")),
    "authorization-line": ("SETTING", "Authorization: Bearer " + r(40)),
    "token-header": ("SETTING", "Token " + r(40, HEX)),
    "docker-auth-json": ("SETTING", json.dumps({"auths": {"ghcr.io": {"auth": b64(f"ci:{r(20)}".encode())}}})),
    "netrc-line": ("SETTING", f"machine api.example.com login ci password {r(16)}"),
    # by name (the value alone says nothing)
    "name-password": ("DB_PASSWORD", "correct-horse"),
    "name-pass": ("DB_PASS", "x" * 10),
    "name-pwd": ("ADMIN_PWD", r(10)),
    "name-secret": ("CLIENT_SECRET", r(20)),
    "name-token": ("REFRESH_TOKEN", r(20)),
    "name-api-key": ("PARTNER_API_KEY", r(20)),
    "name-creds": ("SMTP_CREDS", "user:" + r(10)),
    "name-signing-key": ("SIGNING_KEY", r(32, HEX)),
    "name-encryption-key": ("ENCRYPTION_KEY", r(32, HEX)),
    "name-hmac-key": ("HMAC_KEY", r(32, HEX)),
    "name-session-key": ("SESSION_KEY", r(32, HEX)),
    "name-master-key": ("MASTER_KEY", r(32, HEX)),
    "name-base64-password": ("DB_PASSWORD_B64", b64(b"hunter2-but-longer")),
    "name-passphrase": ("GPG_PASSPHRASE", "four words in a row"),
    "name-auth": ("SMTP_AUTH", "plain:" + r(12)),
    "name-private-key": ("SSH_PRIVATE_KEY", r(40, B64)),
    "name-salt": ("PASSWORD_SALT", r(16, HEX)),
    "name-cookie-secret": ("COOKIE_SECRET", r(32, HEX)),
    "name-access-key": ("MINIO_ACCESS_KEY", r(20, string.ascii_uppercase + string.digits)),
    # The kinds an independent corpus found missed (the third red-team round).
    "aws-secret-short-name": ("AWS_SK", r(18) + "/" + r(10) + "+" + r(10)),
    "aws-secret-other-name": ("S3_CRED_B", r(12) + "/" + r(27)),
    "k8s-bootstrap-token": ("JOIN", r(6, string.ascii_lowercase + string.digits) + "." +
                            r(16, string.ascii_lowercase + string.digits)),
    "datadog-api-key-short-name": ("DD_API", r(32, HEX)),
    "datadog-app-key": ("DD_APP", r(40, HEX)),
    "base64-password-pw-name": ("DB_PW_B64", b64(b"correct-horse-battery")),
}

ORDINARY: dict[str, tuple[str, str]] = {
    "service-url": ("GRAPH_BASE_URL", "http://graph.ameide.svc.cluster.local:8080"),
    "grpc-address": ("AGENTS_GRPC_ADDRESS", "agents.ameide.svc.cluster.local:50051"),
    "temporal": ("TEMPORAL_ADDRESS", "temporal-frontend.ameide.svc.cluster.local:7233"),
    "minio": ("MINIO_ENDPOINT", "minio.ameide.svc.cluster.local:9000"),
    "db-url-no-password": ("DATABASE_HOST_URL", "postgres://db.ameide.svc:5432/app"),
    "db-url-user-only": ("DATABASE_HOST_URL", "postgres://app@db.ameide.svc:5432/app"),
    "https-with-query": ("SEARCH_URL", "https://example.com/search?page=2&sort=asc"),
    "contact-email-query": ("SUPPORT_URL", "https://status.example.io/report?contact=ci@example.io"),
    "email": ("NOTIFY_EMAIL", "ci@example.io"),
    "mailto": ("CONTACT", "mailto:platform@example.io"),
    "namespace": ("NAMESPACE", "ameide"),
    "log-level": ("LOG_LEVEL", "debug"),
    "bool": ("FEATURE_X_ENABLED", "true"),
    "number": ("WORKERS", "4"),
    "port": ("PORT", "8080"),
    "duration": ("TIMEOUT", "30s"),
    "timestamp": ("START_AT", "2026-11-25T00:00:00Z"),
    "semver": ("APP_VERSION", "1.27.3"),
    "image-tag": ("IMAGE", "ghcr.io/ameideio/graph:2026.11.24"),
    "image-digest": ("IMAGE", "ghcr.io/ameideio/graph@sha256:" + "3f" * 32),
    "git-sha": ("GIT_SHA", "9fceb02d0ae598e95dc970b74767f19372d61af8"),
    "uuid": ("TENANT_ID", "0b5c4f3e-6a1d-4e8b-9c2f-7d1a3b5c6e8f"),
    "path": ("DATA_DIR", "/var/lib/app/data"),
    "junit-flag": ("PYTEST_EXTRA", "--junitxml=/results/junit.xml"),
    "cli-flags": ("EXTRA_ARGS", "--verbose --retries=3 --timeout=30"),
    "json-config": ("APP_CONFIG", json.dumps({"retries": 3, "endpoints": ["http://a:80", "http://b:80"]})),
    "word-bearer": ("AUTH_SCHEME", "Bearer"),
    "word-basic": ("AUTH_SCHEME", "Basic"),
    "header-name": ("TOKEN_HEADER_NAME", "X-Request-Id"),
    "contact-email-port": ("SUPPORT_URL", "https://status.example.io:8443/report?contact=ci@example.io"),
    "contact-email-port-no-path": ("SUPPORT_URL", "https://status.example.io:8443?contact=ci@example.io"),
    "contact-email-port-fragment": ("SUPPORT_URL", "https://status.example.io:8443#contact=ci@example.io"),
    "k8s-hostname-like": ("PEER", "node-1.cluster.local"),
    "dd-site": ("DD_SITE", "datadoghq.eu"),
    "dd-service": ("DD_SERVICE", "graph"),
    "dd-trace-id": ("DD_ENV", "staging"),
    "token-url": ("OAUTH_TOKEN_URL", "https://auth.example.io/oauth/token"),
    "password-file": ("DB_PASSWORD_FILE", "/var/run/secrets/db/password"),
    "npm-scope-url": ("REGISTRY", "https://registry.npmjs.org:443/@ameide/sdk"),
    "region": ("AWS_REGION", "eu-central-1"),
    "bucket": ("S3_BUCKET", "ameide-integration-artifacts"),
    "arn": ("ROLE_ARN", "arn:aws:iam::123456789012:role/integration-tests"),
    "kafka-brokers": ("KAFKA_BROKERS", "kafka-0.kafka:9092,kafka-1.kafka:9092"),
    "redis-url": ("REDIS_URL", "redis://redis.ameide.svc:6379/0"),
    "amqp-no-creds": ("AMQP_URL", "amqp://rabbit.ameide.svc:5672/"),
    "cron": ("SCHEDULE", "*/5 * * * *"),
    "locale": ("LANG", "en_US.UTF-8"),
    "tz": ("TZ", "Europe/Berlin"),
    "cidr": ("ALLOWED_CIDR", "10.20.0.0/16"),
    "ip": ("DNS_SERVER", "10.0.0.10"),
    "html-color": ("THEME", "#1a2b3c"),
    "otel": ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel-collector.observability:4317"),
    "otel-headers": ("OTEL_RESOURCE_ATTRIBUTES", "service.name=graph,deployment.environment=staging"),
    "sql-like": ("SEED_QUERY", "SELECT 1"),
    "percent-encoded": ("CALLBACK", "https://app.example.io/cb?next=%2Fhome"),
    "token-word-in-value": ("DOCS_URL", "https://docs.example.io/tokens-and-keys"),
    "key-word-in-value": ("KEYBOARD_LAYOUT", "us"),
    "base64-config": ("FEATURE_FLAGS_B64", base64.b64encode(b'{"beta": false}').decode()),
    "sha256-checksum": ("ARTIFACT_SHA256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    "build-id": ("BUILD_ID", "2026-11-29.3"),
    "k8s-label": ("SELECTOR", "app.kubernetes.io/name=graph"),
    "java-opts": ("JAVA_TOOL_OPTIONS", "-Xmx512m -XX:+UseG1GC"),
    "node-options": ("NODE_OPTIONS", "--max-old-space-size=2048"),
    "user-agent": ("USER_AGENT", "ameide-integration-tests/1.0 (+https://ameide.io)"),
}

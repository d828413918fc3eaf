"""Whether an inline setting looks like a credential -- the one rule, used where config is loaded
(catalog env, serviceOverrides.env) and again by the policy pack on what the program declares.

Standard library and detect-secrets only: the policy pack imports it in its own virtualenv.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any

# Credentials are recognised by their format -- token prefixes, JWTs, PEM keys, webhook URLs,
# cloud keys -- through detect-secrets' deterministic plugins (its entropy and keyword plugins are
# noisy on URLs and addresses), and by where they sit in an otherwise ordinary value: below.
DETECT_SECRETS_PLUGINS = (
    "ArtifactoryDetector", "AWSKeyDetector", "AzureStorageKeyDetector", "BasicAuthDetector", "CloudantDetector",
    "DiscordBotTokenDetector", "GitHubTokenDetector", "GitLabTokenDetector", "IbmCloudIamDetector",
    "IbmCosHmacDetector", "JwtTokenDetector", "MailchimpDetector", "NpmDetector", "OpenAIDetector",
    "PrivateKeyDetector", "PypiTokenDetector", "SendGridDetector", "SlackDetector", "SoftlayerDetector",
    "SquareOAuthDetector", "StripeDetector", "TelegramBotTokenDetector", "TwilioKeyDetector",
)
_SECRETISH_NAME = re.compile(
    r"(PASSWORD|PASSWD|PASSPHRASE|(^|_)PASS(_|$)|(^|_)PWD(_|$)|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY"
    r"|CREDENTIAL|(^|_)CREDS?(_|$)|(^|_)AUTH(_|$)|SIGNATURE|(SIGNING|ENCRYPTION|HMAC|SESSION|MASTER|CLIENT|DEPLOY"
    r"|LICENSE|WEBHOOK)_?KEY|(^|_)SALT(_|$)|(^|_)PW(_|$))", re.I)
# A name that describes where or what a credential is, not the credential: TOKEN_URL, PASSWORD_FILE, ...
_DESCRIPTOR_NAME = re.compile(
    r"_(URL|URI|ENDPOINT|HOST|PATH|FILE|DIR|NAME|HEADER|SCHEME|TYPE|ISSUER|AUDIENCE|TTL|EXPIRY|EXPIRES|LENGTH"
    r"|ALGORITHM|ALG|FORMAT|MOUNT|ROLE|ID|REF|POLICY|ENABLED|REQUIRED)$", re.I)
_CREDENTIAL_PLACES = {
    # user:password@host, the password possibly with an unencoded '/' (not a port before a path)
    "a password in a URL": re.compile(
        r"[a-z][a-z0-9+.-]*://[^/\s:@]*:(?![0-9]+(?:[/?#]|$))[^\s@]+@[A-Za-z0-9.-]+(?::[0-9]+)?(?:[/?#]|$)", re.I),
    "a credential parameter": re.compile(
        r"(?:^|[?&;\s])(?:password|passwd|pwd|pass|secret|client_secret|token|access_token|api_?key|sig|signature"
        r"|x-amz-signature|x-amz-credential|x-goog-signature|x-goog-credential|_authtoken|sharedaccesskey|accountkey"
        r"|aws_secret_access_key)\s*=\s*[^&\s;]+", re.I),
    "a password option": re.compile(r"(?:^|\s)--?(?:password|passwd|pass|pwd|token|secret|api-key)[= ]\S+", re.I),
    "an Authorization header value": re.compile(
        r"^\s*(?:authorization:\s*)?(?:basic|bearer|token|digest)\s+\S{8,}", re.I),
    "registry credentials": re.compile(r'"auths?"\s*:\s*[{"]'),
    "a netrc entry": re.compile(r"\blogin\s+\S+\s+password\s+\S+", re.I),
}
# Token formats their issuers publish (prefixes and lengths), beyond detect-secrets' plugins -- the same
# formats gitleaks and Kingfisher's rule sets match. Each is specific enough to flag on the value alone.
_TOKEN_FORMATS = {
    "GitHub token": r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})\b",
    "GitLab token": r"\bgl(?:pat|dt|rt|ptt|cbt|imt|oas|soat|ft|agent)-[A-Za-z0-9_-]{20,}",
    "npm token": r"\bnpm_[A-Za-z0-9]{36}\b",
    "PyPI token": r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}",
    "Docker Hub token": r"\bdckr_pat_[A-Za-z0-9_-]{27,}",
    "RubyGems key": r"\brubygems_[a-f0-9]{48}\b",
    "NuGet key": r"\boy2[a-z0-9]{43}\b",
    "Bitbucket app password": r"\bATBB[A-Za-z0-9_=.-]{32,}",
    "Artifactory key": r"\bAKCp[A-Za-z0-9]{69}\b",
    "Slack token": r"\b(?:xox[abposr]-[A-Za-z0-9-]{10,}|xapp-\d-[A-Z0-9]+-\d+-[a-f0-9]+)",
    "webhook URL": r"https://(?:hooks\.slack\.com/services|discord(?:app)?\.com/api/webhooks"
                   r"|[a-z0-9-]+\.webhook\.office\.com/webhookb2)/\S+",
    "Telegram bot token": r"\b\d{8,10}:AA[A-Za-z0-9_-]{33}\b",
    "Discord bot token": r"\b[MNO][A-Za-z0-9_-]{23,25}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,}",
    "Stripe key": r"\b(?:(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{20,}|whsec_[A-Za-z0-9]{24,})",
    "SendGrid key": r"\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}\b",
    "Mailgun key": r"\bkey-[a-f0-9]{32}\b",
    "Mailchimp key": r"\b[a-f0-9]{32}-us\d{1,2}\b",
    "Twilio key": r"\b(?:SK|AC)[a-f0-9]{32}\b",
    "Shopify token": r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b",
    "OpenAI key": r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,}",
    "Anthropic key": r"\bsk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_-]{80,}",
    "Hugging Face token": r"\bhf_[A-Za-z]{34}\b",
    "New Relic key": r"\bNR(?:AK|AA|II|JS)-[A-Z0-9]{27}\b",
    "Sentry DSN": r"https://[a-f0-9]{32}@[a-z0-9.-]+/\d+",
    "Linear key": r"\blin_api_[A-Za-z0-9]{40}\b",
    "Notion token": r"\b(?:secret_[A-Za-z0-9]{43}|ntn_[A-Za-z0-9]{40,})\b",
    "Atlassian token": r"\bATATT3[A-Za-z0-9_=+/-]{100,}",
    "Square token": r"\bsq0(?:atp|csp)-[A-Za-z0-9_-]{22,}",
    "Dropbox token": r"\bsl\.[A-Za-z0-9_-]{130,}",
    "Doppler token": r"\bdp\.(?:st|ct|pt|scim|audit|sa)\.[A-Za-z0-9_.-]{40,}",
    "Pulumi token": r"\bpul-[a-f0-9]{40}\b",
    "Terraform Cloud token": r"\b[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{60,}",
    "Grafana token": r"\b(?:glc_[A-Za-z0-9+/]{32,}={0,2}|glsa_[A-Za-z0-9]{32}_[a-fA-F0-9]{8})",
    "Databricks token": r"\bdapi[a-f0-9]{32}(?:-\d)?\b",
    "Google key": r"\b(?:AIza[A-Za-z0-9_-]{35}|GOCSPX-[A-Za-z0-9_-]{28})",
    "Azure client secret": r"\b[A-Za-z0-9_~.-]{3}\dQ~[A-Za-z0-9_~.-]{31,34}",
    "DigitalOcean token": r"\bdo[por]_v1_[a-f0-9]{64}\b",
    "Heroku key": r"\bHRKU-[A-Za-z0-9_-]{58,}",
    "Alibaba key": r"\bLTAI[A-Za-z0-9]{12,20}\b",
    "AWS key": r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}\b",
    "Vault token": r"\b(?:hv[sbr]\.[A-Za-z0-9_-]{20,}|s\.[A-Za-z0-9]{24})\b",
    "age key": r"\bAGE-SECRET-KEY-1[0-9A-Z]{58}\b",
    # `<6>.<16>` of [a-z0-9], the whole value: kubeadm's bootstrap token format (a host name has no such part).
    "Kubernetes bootstrap token": r"^\s*[a-z0-9]{6}\.[a-z0-9]{16}\s*$",
    # 40 characters of base64 with mixed case, a digit and a `/` or `+`: an AWS secret access key on
    # its own (a git SHA or checksum is hex; a base64 config is longer or padded).
    "AWS secret access key": r"^(?=[A-Za-z0-9/+]*[/+])(?=[^a-z]*[a-z])(?=[^A-Z]*[A-Z])(?=[^0-9]*[0-9])[A-Za-z0-9/+]{40}$",
}
# Formats too plain to flag on their own, flagged under their vendor's variable names.
_NAMED_FORMATS = {
    "Datadog key": (re.compile(r"^(?:DD|DATADOG)_", re.I), re.compile(r"^(?:[a-f0-9]{32}|[a-f0-9]{40})$")),
}
_TOKEN_FORMAT = {what: re.compile(pattern) for what, pattern in _TOKEN_FORMATS.items()}
# What the program generates for a `generated` key (pulumi-random: letters and digits, this long).
GENERATED_LENGTH = 32
# Such a value inside any text: a run of at least that many letters and digits with both cases (a
# hex digest or checksum has one case; a 32-character random string lacks one with odds of ~1e-8).
_GENERATED_SHAPE = re.compile(
    rf"(?<![A-Za-z0-9])(?=[A-Za-z0-9]*[a-z])(?=[A-Za-z0-9]*[A-Z])[A-Za-z0-9]{{{GENERATED_LENGTH},}}(?![A-Za-z0-9])")


def generated_shaped(text: str) -> bool:
    """Whether `text` holds, anywhere, a string shaped like a value the program generates."""
    return _GENERATED_SHAPE.search(text) is not None


# Names that say the value itself is the secret (an access key id or a user name is not: its value is
# often a plain word -- a MinIO access key here is the service's own name).
_SECRET_VALUE_NAME = re.compile(r"PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|PRIVATE_?KEY|API_?KEY|SIGNING_?KEY", re.I)


def worth_redacting(name: str, value: str) -> bool:
    """Whether a Secret's value (under its key `name`) is a secret to take out of a log: named as one
    (a password, a token), a credential by its format, a generated value, or an opaque string of 20 or
    more characters. A plain word that is no secret (a database user or an access key id such as
    `agents`) is not: replacing it everywhere would garble the log and the JUnit (suite names included)
    and hide nothing."""
    if len(value) < 6:
        return False
    if _SECRET_VALUE_NAME.search(name):
        return True
    opaque = len(value) >= 20 and not any(c.isspace() for c in value)
    why = credential_in("value", value)
    return opaque or generated_shaped(value) or (why is not None and why != "its name")


def redact(text: str, secrets: Mapping[str, str], *, shown_as: str = "[redacted]") -> str:
    """`text` with every occurrence of each secret value worth redacting (by its key name and value),
    and every string shaped like a generated value, replaced."""
    values = {v for name, v in secrets.items() if worth_redacting(name, v)}
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, shown_as)
    return _GENERATED_SHAPE.sub(shown_as, text)


def credential_in(name: str, value: str) -> str | None:
    """What makes an inline env var look like a credential, or None. Never the value itself."""
    if _SECRETISH_NAME.search(name) and not _DESCRIPTOR_NAME.search(name):
        return "its name"
    for what, pattern in _CREDENTIAL_PLACES.items():
        if pattern.search(value):
            return what
    for what, pattern in _TOKEN_FORMAT.items():
        if pattern.search(value):
            return f"a {what}"
    for what, (named, shaped) in _NAMED_FORMATS.items():
        if named.search(name) and shaped.search(value.strip()):
            return f"a {what}"
    found = _detected(value)
    return f"a {found}" if found else None


def load_detector() -> None:
    """Import and configure detect-secrets now (~0.25 s), e.g. in a thread while the process waits."""
    with _DETECTOR_LOCK:
        _scan_line()


@lru_cache(maxsize=4096)
def _detected(value: str) -> str | None:
    with _DETECTOR_LOCK:
        scan_line = _scan_line()
    for secret in scan_line(value):
        return str(secret.type)
    return None


# detect-secrets' settings are process-global: configured once, never while another thread scans.
_DETECTOR_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _scan_line() -> Callable[[str], Iterable[Any]]:
    """detect-secrets' line scanner with our plugins, configured once per process (its settings are
    process-global; a transient configuration per value cost ~2 ms, most of the policy pack's time)."""
    from detect_secrets.core.scan import scan_line
    from detect_secrets.settings import cache_bust, configure_settings_from_baseline

    cache_bust()
    configure_settings_from_baseline({"plugins_used": [{"name": name} for name in DETECT_SECRETS_PLUGINS]})
    return scan_line

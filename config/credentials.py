"""Whether an inline setting looks like a credential -- the one rule, used where config is loaded
(catalog env, serviceOverrides.env) and again by the policy pack on what the program declares.

Standard library and detect-secrets only: the policy pack imports it in its own virtualenv.
"""

from __future__ import annotations

import re
from functools import lru_cache

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
    r"|CREDENTIAL|(^|_)AUTH(_|$)|SIGNATURE)", re.I)
_CREDENTIAL_PLACES = {
    "a password in a URL": re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@", re.I),
    "a credential parameter": re.compile(
        r"(?:^|[?&;\s])(?:password|passwd|pwd|pass|secret|client_secret|token|access_token|api_?key|sig|signature"
        r"|x-amz-signature|x-amz-credential|x-goog-signature|x-goog-credential)=[^&\s]+", re.I),
    "an Authorization header value": re.compile(r"^\s*(?:basic|bearer|token|digest)\s+\S{8,}", re.I),
}


def credential_in(name: str, value: str) -> str | None:
    """What makes an inline env var look like a credential, or None. Never the value itself."""
    if _SECRETISH_NAME.search(name):
        return "its name"
    for what, pattern in _CREDENTIAL_PLACES.items():
        if pattern.search(value):
            return what
    found = _detected(value)
    return f"a {found}" if found else None


@lru_cache(maxsize=4096)
def _detected(value: str) -> str | None:
    from detect_secrets.core.scan import scan_line
    from detect_secrets.settings import transient_settings

    with transient_settings({"plugins_used": [{"name": name} for name in DETECT_SECRETS_PLUGINS]}):
        for secret in scan_line(value):
            return str(secret.type)
    return None

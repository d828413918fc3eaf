"""A keyless job's OIDC token: where it comes from, when it expires, and the ExecCredential carrying it.

Owns the token's sources -- GitHub's token endpoint (ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN,
`permissions: id-token: write`) or the file OIDC_TOKEN_FILE names (the local issuer). The standard
library alone (an import contract in pyproject.toml): deploy/exec_credential.py, which kubectl starts for
every command it runs, imports it; deploy/oidc_exchange.py turns NoOidcToken into a LoginError.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


class NoOidcToken(Exception):
    """The job has no OIDC token to give: the message says what it needs."""


def oidc_token(audience: str) -> str:
    """The job's GitHub OIDC token for `audience` (or the local issuer's, from a file)."""
    url, bearer = os.environ.get("ACTIONS_ID_TOKEN_REQUEST_URL"), os.environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
    if url and bearer:
        request = urllib.request.Request(f"{url}&audience={urllib.parse.quote(audience)}",
                                         headers={"Authorization": f"bearer {bearer}"})
        try:
            with urllib.request.urlopen(request, timeout=20) as answer:
                return str(json.loads(answer.read())["value"])
        except (OSError, ValueError, KeyError) as exc:
            raise NoOidcToken(f"GitHub gave no OIDC token ({type(exc).__name__}): the job needs "
                              "`permissions: id-token: write`") from None
    file = os.environ.get("OIDC_TOKEN_FILE")
    if file:
        try:
            return Path(file).read_text().strip()
        except OSError as exc:
            raise NoOidcToken(f"OIDC_TOKEN_FILE={file}: {exc.strerror}") from None
    raise NoOidcToken("no OIDC token: run in a GitHub job with `permissions: id-token: write`, or set "
                      "OIDC_TOKEN_FILE (the local issuer: python -m tools.localenv.oidc mint)")


def token_expiry(token: str) -> str | None:
    """The token's `exp` (not verified: the API server and Vault verify it) for the exec credential."""
    try:
        payload = token.split(".")[1]
        exp = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"]
        return datetime.fromtimestamp(int(exp), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (IndexError, ValueError, KeyError, TypeError):
        return None


def exec_credential(audience: str) -> dict[str, Any]:
    token = oidc_token(audience)
    status: dict[str, Any] = {"token": token}
    if expiry := token_expiry(token):
        status["expirationTimestamp"] = expiry
    return {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": status}

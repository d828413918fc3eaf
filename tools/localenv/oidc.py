"""The local environment's OIDC issuer: GitHub Actions' token service, as far as a review job sees it.

Owns: the issuer's signing key (RSA, its own, beside the environment's CA), its discovery document
and JWKS served over TLS on loopback (a certificate of the environment's CA) by a small server the
environment starts and stops by PID, and `mint`: a token with the claims GitHub puts in a
`pull_request` job's ID token (`repository`, `ref` = `refs/pull/<n>/merge`, `event_name`, `sub`,
`aud`, `iat`/`nbf`/`exp`, `jti`). The API server trusts it through its structured authentication
configuration (tools/localenv/environment.py) and OpenBao through its JWT auth method (rehearse.py),
exactly as a cluster and a Vault trust https://token.actions.githubusercontent.com.

Usage: python -m tools.localenv.oidc mint --pr 7 [--audience A] [--repository R] [--ref REF] [--ttl-seconds N]
       python -m tools.localenv.oidc serve <folder> <port>   (started by the local environment)
"""

from __future__ import annotations

import argparse
import http.server
import json
import ssl
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from config import naming
from config.github_oidc import ReviewAccess
from tools.localenv import layout
from tools.localenv.layout import ROOT, STATE

FOLDER = STATE / "oidc"
KEY_ID = "testinfra-local-oidc"


def issuer_url() -> str:
    """Where this environment's issuer serves (its port is the environment's: tools/localenv/layout.py)."""
    return f"https://127.0.0.1:{layout.ports().oidc}"


def review_access() -> ReviewAccess:
    """The repository and audience review tokens carry: the review template's (Pulumi.review.yaml)."""
    from config.loading import stack_settings
    from config.review_access import access_of

    return access_of(stack_settings(naming.REVIEW_TEMPLATE, project_dir=ROOT))


def authentication_config(pki: Path) -> Path:
    """The API server's --authentication-config: the review template's JWT authenticator, for this issuer."""
    from config.github_oidc import authentication_config as config_of

    path = FOLDER / "authentication-config.yaml"
    path.write_text(json.dumps(config_of(review_access(), issuer_url(), (pki / "ca.crt").read_text()), indent=2))
    return path


def prepare(folder: Path = FOLDER, *, issuer: str | None = None) -> Path:
    """The signing key and the two documents the issuer serves; returns the key's path."""
    from config.files import write_private

    issuer = issuer or issuer_url()
    (folder / "www" / ".well-known").mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_path = folder / "signing.key"
    write_private(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    public = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    public.update({"kid": KEY_ID, "use": "sig", "alg": "RS256"})
    (folder / "www" / "jwks").write_text(json.dumps({"keys": [public]}))
    (folder / "www" / ".well-known" / "openid-configuration").write_text(json.dumps({
        "issuer": issuer, "jwks_uri": f"{issuer}/jwks", "response_types_supported": ["id_token"],
        "subject_types_supported": ["public", "pairwise"], "id_token_signing_alg_values_supported": ["RS256"],
        "claims_supported": ["sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref", "repository", "event_name"],
    }))
    return key_path


def claims(pull_request: int | None, *, repository: str, audience: str, ref: str | None = None,
           event_name: str = "pull_request", ttl_seconds: int = 300, environment: str | None = None,
           issuer: str | None = None, now: float | None = None) -> dict[str, Any]:
    """A pull_request job's ID token claims, as GitHub shapes them."""
    issued = int(now if now is not None else time.time())
    ref = ref or f"refs/pull/{pull_request}/merge"
    owner = repository.partition("/")[0]
    return {
        "iss": issuer or issuer_url(), "aud": audience, "sub": f"repo:{repository}:{event_name}",
        "repository": repository, "repository_owner": owner, "ref": ref, "ref_type": "branch",
        "event_name": event_name, "workflow": "review", "run_id": str(issued), "actor": "local-developer",
        "job_workflow_ref": f"{repository}/.github/workflows/review.yml@{ref}",
        "iat": issued, "nbf": issued - 5, "exp": issued + ttl_seconds, "jti": str(uuid.uuid4()),
        **({"environment": environment} if environment else {}),
    }


def mint(token_claims: dict[str, Any], key_path: Path | None = None) -> str:
    """A token signed by the issuer's key (or by another key, to show it is refused)."""
    key = (key_path or FOLDER / "signing.key").read_bytes()
    return jwt.encode(token_claims, key, algorithm="RS256", headers={"kid": KEY_ID})


def serve(folder: Path, port: int, cert: Path, key: Path) -> None:
    """The two documents, read-only, over TLS on loopback; nothing else is served."""
    www = folder / "www"
    documents = {"/.well-known/openid-configuration": www / ".well-known" / "openid-configuration",
                 "/jwks": www / "jwks"}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = documents.get(self.path.split("?")[0])
            body = path.read_bytes() if path else b'{"error":"not found"}'
            self.send_response(200 if path else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            sys.stderr.write(f"oidc: {self.address_string()} {format % args}\n")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    m = sub.add_parser("mint", help="print a pull_request job's ID token signed by the local issuer")
    m.add_argument("--pr", type=int, required=True)
    m.add_argument("--audience", help="default: reviewAccess.audience of Pulumi.review.yaml")
    m.add_argument("--repository", help="default: reviewAccess.repository of Pulumi.review.yaml")
    m.add_argument("--ref", help="default refs/pull/<pr>/merge")
    m.add_argument("--ttl-seconds", type=int, default=300)
    s = sub.add_parser("serve")
    s.add_argument("folder", type=Path)
    s.add_argument("port", type=int)
    args = ap.parse_args(argv)
    if args.command == "mint":
        access = review_access()
        print(mint(claims(args.pr, repository=args.repository or access.repository,
                          audience=args.audience or access.audience, ref=args.ref,
                          ttl_seconds=args.ttl_seconds)))
        return 0
    pki = STATE / "pki"
    serve(args.folder, args.port, pki / "oidc.crt", pki / "oidc.key")
    return 0


if __name__ == "__main__":
    sys.exit(main())

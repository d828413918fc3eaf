"""A real S3 API server on loopback for Pulumi's S3 backend: versitygw (built by `make e2e-tools`)
over a folder of the local environment, started as one of its processes (stopped by PID with it).

Used by the staging/prod rehearsal (tools/localenv/rehearse.py) and by `make bench-real`'s S3 rows.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
from pathlib import Path

from tools.localenv import layout
from tools.localenv.processes import LocalEnvError, Processes

BUCKET = "pulumi-state"
# Review stacks' state: a bucket of its own, reached with a credential that reaches no other bucket.
REVIEW_BUCKET = "pulumi-review-state"
REVIEW_USER = "review-state"


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def endpoint() -> str:
    """The environment's S3 server (its port is the environment's: tools/localenv/layout.py)."""
    return f"http://127.0.0.1:{layout.ports().s3}"


def backend_url(bucket: str) -> str:
    return f"s3://{bucket}?endpoint={endpoint()}&use_path_style=true&region=us-east-1"


def start_s3(processes: Processes, versitygw: Path, root: Path) -> dict[str, str]:
    """Start the server over `root` (its own accounts in `root`/../s3-iam); return the environment a
    Pulumi CLI needs to keep state there. A bucket is a folder under `root` (versitygw's posix backend's rule)."""
    (root / BUCKET).mkdir(parents=True)
    iam = root.parent / "s3-iam"
    iam.mkdir(mode=0o700, exist_ok=True)
    access, secret = "local-s3", secrets.token_urlsafe(24)
    port = layout.ports().s3
    if _port_open(port):  # not ours: its answers would be another server's, with other credentials
        raise LocalEnvError(f"the environment's S3 port {port} is already served (an S3 server still running from "
                            f"an earlier step? `make local-env-down NAME={layout.NAME}` stops the environment's own)")
    processes.start("s3", [str(versitygw), "--port", f"127.0.0.1:{port}", "--iam-dir", str(iam), "posix", str(root)],
                    env={"ROOT_ACCESS_KEY_ID": access, "ROOT_SECRET_ACCESS_KEY": secret})
    processes.wait_until("s3", lambda: _port_open(port))
    return {"AWS_ACCESS_KEY_ID": access, "AWS_SECRET_ACCESS_KEY": secret, "AWS_REGION": "us-east-1",
            "PULUMI_BACKEND_URL": backend_url(BUCKET)}


def review_state(versitygw: Path, root_env: dict[str, str]) -> dict[str, str]:
    """The review stacks' bucket, owned by an account of its own (a `user`: its own buckets only);
    returns the environment review jobs keep their state with."""
    access, secret = REVIEW_USER, secrets.token_urlsafe(24)
    admin = [str(versitygw), "admin", "-a", root_env["AWS_ACCESS_KEY_ID"], "-s", root_env["AWS_SECRET_ACCESS_KEY"],
             "--er", endpoint()]
    for argv in ([*admin, "create-user", "--access", access, "--secret", secret, "--role", "user"],
                 [*admin, "create-bucket", "--bucket", REVIEW_BUCKET, "--owner", access]):
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        if proc.returncode != 0:
            raise LocalEnvError(f"versitygw admin {argv[len(admin)]} failed: {(proc.stdout + proc.stderr)[-400:]}")
    return {"AWS_ACCESS_KEY_ID": access, "AWS_SECRET_ACCESS_KEY": secret, "AWS_REGION": "us-east-1",
            "PULUMI_BACKEND_URL": backend_url(REVIEW_BUCKET)}

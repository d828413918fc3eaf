"""A real S3 API server on loopback for Pulumi's S3 backend: versitygw (built by `make e2e-tools`)
over a folder of the local environment, started as one of its processes (stopped by PID with it).

Used by the staging/prod rehearsal (tools/localenv/rehearse.py) and by `make bench-real`'s S3 rows.
"""

from __future__ import annotations

import secrets
import socket
from pathlib import Path

from tools.localenv.processes import Processes

S3_PORT = 17070
BUCKET = "pulumi-state"


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def start_s3(processes: Processes, versitygw: Path, root: Path) -> dict[str, str]:
    """Start the server over `root`; return the environment a Pulumi CLI needs to keep state there.
    A bucket is a folder under `root` (versitygw's posix backend's rule)."""
    (root / BUCKET).mkdir(parents=True)
    access, secret = "local-s3", secrets.token_urlsafe(24)
    processes.start("s3", [str(versitygw), "--port", f"127.0.0.1:{S3_PORT}", "posix", str(root)],
                    env={"ROOT_ACCESS_KEY_ID": access, "ROOT_SECRET_ACCESS_KEY": secret})
    processes.wait_until("s3", lambda: _port_open(S3_PORT))
    return {"AWS_ACCESS_KEY_ID": access, "AWS_SECRET_ACCESS_KEY": secret, "AWS_REGION": "us-east-1",
            "PULUMI_BACKEND_URL": f"s3://{BUCKET}?endpoint=http://127.0.0.1:{S3_PORT}&use_path_style=true"
                                  "&region=us-east-1"}

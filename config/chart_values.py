"""The values of one `charts/test-job-runner` release, and the run id that names its Job.

Never holds a secret value: only Secret names and keys (the chart's `secretEnv`).
"""

from __future__ import annotations

import fnmatch
import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

from config import naming
from config.files import PROJECT_DIR
from config.model import ServiceSettings, Settings

TTL_SECONDS_AFTER_FINISHED = 86400


@lru_cache(maxsize=1)
def chart_digest(root: Path = PROJECT_DIR / naming.CHART_PATH) -> str:
    """Digest of the chart as Helm packages it (its .helmignore honoured: no README, no ci/ values): a
    chart change is a new run spec too, a documentation edit is not."""
    ignored = [line.strip() for line in (root / ".helmignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]

    def packaged(path: Path) -> bool:
        parts = path.relative_to(root).parts
        return not any(fnmatch.fnmatch(part, pattern.rstrip("/")) for pattern in ignored for part in parts)

    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and packaged(p)):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def release_values(settings: Settings, service: ServiceSettings) -> dict[str, Any]:
    image: dict[str, str] = {"repository": service.image_repository, "pullPolicy": service.image_pull_policy}
    image.update({"digest": service.image_digest} if service.image_digest else {"tag": str(service.image_tag)})
    values: dict[str, Any] = {
        "service": service.name,
        "environment": settings.environment,
        "runner": service.runner,
        "entrypoint": service.entrypoint,
        "image": image,
        "timeoutSeconds": service.timeout_seconds,
        "activeDeadlineSeconds": service.active_deadline_seconds,
        "ttlSecondsAfterFinished": TTL_SECONDS_AFTER_FINISHED,
        "env": [{"name": k, "value": v} for k, v in sorted(service.env.items())],
        "requiredEnv": list(service.required_env),
        "secretEnv": [
            {"name": m.env, "secretName": service.secret_name, "key": m.secret_key}
            for m in service.secrets
        ],
        "junit": {"path": naming.JUNIT_PATH, "printToLog": True},
        # A token only where the suite is granted something to use it for (runnerRbac).
        "serviceAccount": {"name": service.runs_as.service_account, "automountToken": bool(service.runs_as.rules)},
        "onDemand": {"enabled": True},
        "run": {"onInstall": settings.stack.run_on_install},
        "resources": service.resources.model_dump(by_alias=True, exclude_none=True),
        "imagePullSecrets": [{"name": name} for name in service.image_pull_secrets],
        "nodeSelector": dict(service.node_selector),
        "tolerations": [t.model_dump(by_alias=True, exclude_none=True) for t in service.tolerations],
    }
    values["run"]["id"] = naming.run_id({"values": values, "chart": chart_digest()})
    return values


def install_job_name(settings: Settings, service: ServiceSettings, values: dict[str, Any]) -> str | None:
    """The Job the release runs on install, or None when the stack does not run suites on install."""
    if not settings.stack.run_on_install:
        return None
    return naming.job_name(service.release_name, values["run"]["id"])

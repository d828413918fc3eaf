"""`TestJobRunnerRelease`: one Helm release of the in-repo `charts/test-job-runner` per service.

Owns: the release values (non-secret env inline, secrets only as references to the service's
ExternalSecret target, the suite timeout, the run id that names the Job) and the release itself,
ordered after the service's ExternalSecret and the stack's prerequisites.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pulumi
from pulumi_kubernetes.helm.v3 import Release

from components.settings import JUNIT_PATH, ServiceSettings, Settings, run_id

# Relative on purpose: an absolute path would differ per machine and show up as a diff.
CHART_PATH = "./charts/test-job-runner"
MAX_HISTORY = 5
TTL_SECONDS_AFTER_FINISHED = 86400


@lru_cache(maxsize=1)
def chart_digest() -> str:
    """Digest of the chart's templates and defaults: a chart change is a new run spec too."""
    root = Path(__file__).resolve().parent.parent / CHART_PATH
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "ci" not in p.relative_to(root).parts):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def release_values(settings: Settings, service: ServiceSettings) -> dict[str, Any]:
    """The chart values for one service. Never holds a secret value: only Secret names/keys."""
    repository, _, tag = service.image.rpartition(":")
    values: dict[str, Any] = {
        "service": service.name,
        "environment": settings.environment,
        "runner": service.runner,
        "entrypoint": service.entrypoint,
        "image": {"repository": repository, "tag": tag, "pullPolicy": "IfNotPresent"},
        "timeoutSeconds": service.timeout_seconds,
        "activeDeadlineSeconds": service.active_deadline_seconds,
        "ttlSecondsAfterFinished": TTL_SECONDS_AFTER_FINISHED,
        "env": [{"name": k, "value": v} for k, v in sorted(service.env.items())],
        "secretEnv": [
            {"name": m.env, "secretName": service.secret_name, "key": m.secret_key}
            for m in service.secrets
        ],
        "junit": {"path": JUNIT_PATH, "printToLog": True},
        "serviceAccount": {"name": settings.runner_service_account, "automountToken": False},
        "onDemand": {"enabled": True},
        "run": {"onInstall": settings.stack.run_on_install},
    }
    values["run"]["id"] = run_id({"values": values, "chart": chart_digest()})
    return values


def job_name(service: ServiceSettings, values: dict[str, Any]) -> str:
    return f"{service.release_name}-{values['run']['id']}"


@dataclass(frozen=True)
class TestJobRunnerReleaseArgs:
    settings: Settings
    service: ServiceSettings
    # Prerequisite version (e.g. the ameide_core_proto build): recorded in the release description.
    prerequisite: pulumi.Input[str]
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)


class TestJobRunnerRelease(pulumi.ComponentResource):
    __test__ = False  # not a pytest test class, despite the name

    release_name: pulumi.Output[str]
    job_name: str | None
    values: dict[str, Any]

    def __init__(
        self, name: str, args: TestJobRunnerReleaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ameide:testinfra:TestJobRunnerRelease", name, None, opts)
        s, svc = args.settings, args.service
        self.values = release_values(s, svc)
        release = Release(
            name,
            name=svc.release_name,
            chart=CHART_PATH,
            namespace=s.namespace,
            values=self.values,
            description=pulumi.Output.concat(
                "integration tests of ", svc.name, "; prerequisite ", args.prerequisite
            ),
            atomic=False,  # keep a failed run's Job and logs for inspection
            cleanup_on_fail=False,
            max_history=MAX_HISTORY,
            timeout=s.stack.release_timeout_seconds,
            wait_for_jobs=s.stack.wait_for_jobs and s.stack.run_on_install,
            skip_crds=True,
            create_namespace=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.release_name = release.name
        self.job_name = job_name(svc, self.values) if s.stack.run_on_install else None
        self.register_outputs({"releaseName": self.release_name, "jobName": self.job_name})

"""`TestJobRunnerRelease`: one Helm release of the in-repo `charts/test-job-runner` per service.

Owns: the release itself, ordered after the service's ExternalSecret and the stack's
prerequisites. Its values (and so the Job's name) are decided in config/chart_values.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import pulumi
from pulumi_kubernetes.helm.v3 import Release

from config.naming import CHART_PATH, COMPONENT_TYPE_PREFIX

MAX_HISTORY = 5


@dataclass(frozen=True)
class TestJobRunnerReleaseArgs:
    __test__ = False  # not a pytest test class, despite the name

    service: str
    release_name: str
    namespace: str
    values: Mapping[str, Any]
    job_name: str | None
    timeout_seconds: int
    wait_for_jobs: bool
    # Prerequisite version (e.g. the ameide_core_proto build): recorded in the release description.
    prerequisite: pulumi.Input[str]
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)


class TestJobRunnerRelease(pulumi.ComponentResource):
    __test__ = False  # not a pytest test class, despite the name

    release_name: pulumi.Output[str]
    job_name: str | None

    def __init__(
        self, name: str, args: TestJobRunnerReleaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{COMPONENT_TYPE_PREFIX}TestJobRunnerRelease", name, None, opts)
        release = Release(
            name,
            name=args.release_name,
            chart=CHART_PATH,
            namespace=args.namespace,
            values=dict(args.values),
            description=pulumi.Output.concat("integration tests of ", args.service, "; prerequisite ", args.prerequisite),
            atomic=False,  # keep a failed run's Job and logs for inspection
            cleanup_on_fail=False,
            max_history=MAX_HISTORY,
            timeout=args.timeout_seconds,
            wait_for_jobs=args.wait_for_jobs,
            skip_crds=True,
            create_namespace=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        # Optional in the schema; always the name given above once the release exists.
        self.release_name = cast(pulumi.Output[str], release.name)
        self.job_name = args.job_name
        self.register_outputs({"releaseName": self.release_name, "jobName": self.job_name})

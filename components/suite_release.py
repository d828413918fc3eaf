"""A suite's release: one Helm release of the in-repo `charts/test-job-runner` per service.

Owns: the release itself, ordered after the service's ExternalSecret and the stack's
prerequisites. Its values (and so the Job's name) are decided in config/chart_values.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi_kubernetes.helm.v3 import Release

from config.naming import CHART_PATH

MAX_HISTORY = 5


@dataclass(frozen=True)
class SuiteReleaseArgs:

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


def suite_release(name: str, args: SuiteReleaseArgs, opts: pulumi.ResourceOptions) -> Release:
    """The release, registered straight under the environment (no component of its own: see
    service_external_secret)."""
    return Release(
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
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=list(args.depends_on))),
    )

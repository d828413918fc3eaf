"""Whether a stack's namespace quota admits the suites that start on install, all at once."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from config.model import ServiceSettings
from config.naming import config_key
from config.stack import StackConfig
from config.types import quantity_value


def quota_problems(cfg: StackConfig, services: Sequence[ServiceSettings]) -> list[str]:
    """On install every enabled service starts one suite pod at once: the quota must admit them all,
    with the requests and limits each one's pod gets, and requests within limits."""
    q = cfg.resource_quota
    field = config_key("resourceQuota")
    problems = []
    for kind in QUOTA_KINDS:
        requests, limits = getattr(q, f"requests_{kind}"), getattr(q, f"limits_{kind}")
        if quantity_value(requests) == 0 or quantity_value(limits) == 0:
            problems.append(f"{field}: {kind.replace('_', '-')} of 0 admits no suite at all")
        elif quantity_value(requests) > quantity_value(limits):
            problems.append(f"{field}.requests{_camel(kind)} {requests} exceeds limits{_camel(kind)} {limits}")
    if not cfg.run_on_install:
        return problems
    if q.pods < len(services):
        problems.append(f"{field}.pods: {q.pods} cannot hold the {len(services)} suites that start on install "
                        f"(their deadlines tick while they wait): set it to at least {len(services)}")
    for bound in ("requests", "limits"):
        for kind in QUOTA_KINDS:
            need = sum((quantity_value(getattr(getattr(svc.resources, bound), kind) or "0") for svc in services),
                       Decimal(0))
            have = getattr(q, f"{bound}_{kind}")
            if quantity_value(have) < need:
                problems.append(f"{field}.{bound}{_camel(kind)}: {have} cannot hold the {bound} of the "
                                f"{len(services)} suites that start on install: set it to at least "
                                f"{_format_quantity(need, kind)}")
    return problems


QUOTA_KINDS = ("cpu", "memory", "ephemeral_storage")


def _camel(kind: str) -> str:
    return "".join(part.title() for part in kind.split("_"))


def _format_quantity(value: Decimal, kind: str) -> str:
    if kind != "cpu":
        return f"{int(-(-value // 2**30))}Gi"
    return str(int(-(-value // 1)))

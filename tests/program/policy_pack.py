"""The CrossGuard rules (policy/rules.py) called as the engine calls them, without the Pulumi CLI, on
the resources an evaluation recorded: each violation with its policy and enforcement level."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)

from offline.harness import Evaluation, RecordedResource
from policy import rules


def opts(res: RecordedResource) -> PolicyResourceOptions:
    return PolicyResourceOptions(res.protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), list(res.secret_outputs))


def resource_args(res: RecordedResource) -> ResourceValidationArgs:
    return ResourceValidationArgs(res.type, res.inputs, res.urn, res.name, opts(res), None)


def stack_args(ev: Evaluation) -> StackValidationArgs:
    # As the engine does: a resource the program only reads (`.get`) is never shown to a policy pack.
    return StackValidationArgs([
        PolicyResource(r.type, r.inputs, r.urn, r.name, opts(r), None, None, [], {})
        for r in ev.resources if r.read_id is None
    ])


def findings(ev: Evaluation) -> list[tuple[str, EnforcementLevel, str]]:
    """(policy, its enforcement level, message) of every violation, each policy as the pack builds it."""
    found: list[tuple[str, EnforcementLevel, str]] = []
    for policy in rules.policies():
        def report(message: str, urn: str | None = None, policy=policy) -> None:
            found.append((policy.name, policy.enforcement_level, message))
        if isinstance(policy, ResourceValidationPolicy):
            for res in ev.resources:
                policy.validate(resource_args(res), report)
        else:
            policy.validate(stack_args(ev), report)
    return found


def violations(ev: Evaluation, level: EnforcementLevel | None = None) -> list[str]:
    """The messages of every violation, or only of those at `level` (a mandatory one stops `up`)."""
    return [message for _, found_level, message in findings(ev) if level in (None, found_level)]

"""`IntegrationNamespace`: the namespace the suites run in, locked down to what they need.

Owns: the Namespace (Pod Security Admission `restricted`) -- or, where the platform team owns it
(`manageNamespace: false`), a read of it --, its ResourceQuota and LimitRange,
a default-deny NetworkPolicy with DNS and the stack's declared egress, and the runner
ServiceAccount (no token automount; a Role only when the stack configures rules).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_kubernetes.core.v1 import (
    LimitRange,
    LimitRangeItemArgs,
    LimitRangeSpecArgs,
    Namespace,
    ResourceQuota,
    ResourceQuotaSpecArgs,
    ServiceAccount,
)
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs, ObjectMetaArgs
from pulumi_kubernetes.networking.v1 import (
    IPBlockArgs,
    NetworkPolicy,
    NetworkPolicyEgressRuleArgs,
    NetworkPolicyPeerArgs,
    NetworkPolicyPortArgs,
    NetworkPolicySpecArgs,
)
from pulumi_kubernetes.rbac.v1 import PolicyRuleArgs, Role, RoleBinding, RoleRefArgs, SubjectArgs

from config.naming import COMPONENT_TYPE_PREFIX, NAMESPACE_LIMITS_NAME
from config.runners import RunnerIdentity
from config.stack import EgressRule
from config.stack import ResourceQuota as QuotaSettings


@dataclass(frozen=True)
class IntegrationNamespaceArgs:
    name: str
    labels: dict[str, str]
    namespace_labels: dict[str, str]  # the stack's and Pod Security Admission's
    # False: the platform team created the namespace (with the labels below) and owns its lifecycle.
    create: bool
    protect: bool
    quota: QuotaSettings
    egress: tuple[EgressRule, ...]
    # The shared runner account first, then one per service with RBAC of its own.
    runners: tuple[RunnerIdentity, ...]


def _namespace_named(name: str) -> LabelSelectorArgs:
    return LabelSelectorArgs(match_labels={"kubernetes.io/metadata.name": name})


def _egress_peer(rule: EgressRule) -> NetworkPolicyPeerArgs:
    if rule.cidr:
        return NetworkPolicyPeerArgs(ip_block=IPBlockArgs(cidr=rule.cidr))
    return NetworkPolicyPeerArgs(namespace_selector=_namespace_named(rule.namespace or ""))


class IntegrationNamespace(pulumi.ComponentResource):
    name: pulumi.Output[str]
    runner_service_account: pulumi.Output[str]

    def __init__(
        self, name: str, args: IntegrationNamespaceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{COMPONENT_TYPE_PREFIX}IntegrationNamespace", name, None, opts)
        self._args = args
        if args.create:
            namespace = Namespace(
                "namespace",
                metadata=ObjectMetaArgs(name=args.name, labels=args.namespace_labels),
                opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
            )
        else:
            namespace = Namespace.get("namespace", args.name, opts=pulumi.ResourceOptions(parent=self))
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        self._quota_and_limits(in_ns)
        self._network_policies(in_ns)
        shared, *own = args.runners
        account = self._runner_identity(shared, "runner", in_ns)
        for runner in own:
            self._runner_identity(runner, f"runner-{runner.service}", in_ns)

        self.name = namespace.metadata.name
        self.runner_service_account = account.metadata.name
        self.register_outputs({"name": self.name, "runnerServiceAccount": self.runner_service_account})

    def _meta(self, object_name: str) -> ObjectMetaArgs:
        return ObjectMetaArgs(name=object_name, namespace=self._args.name, labels=self._args.labels)

    def _quota_and_limits(self, in_ns: pulumi.ResourceOptions) -> None:
        q = self._args.quota
        ResourceQuota(
            "quota",
            metadata=self._meta(NAMESPACE_LIMITS_NAME),
            spec=ResourceQuotaSpecArgs(hard={
                "pods": str(q.pods),
                "requests.cpu": q.requests_cpu,
                "requests.memory": q.requests_memory,
                "limits.cpu": q.limits_cpu,
                "limits.memory": q.limits_memory,
                "requests.ephemeral-storage": q.requests_ephemeral_storage,
                "limits.ephemeral-storage": q.limits_ephemeral_storage,
            }),
            opts=in_ns,
        )
        # Every container must state resources under the quota; these fill in what a Job omits.
        LimitRange(
            "limits",
            metadata=self._meta(NAMESPACE_LIMITS_NAME),
            spec=LimitRangeSpecArgs(limits=[LimitRangeItemArgs(
                type="Container",
                default={"cpu": "1", "memory": "1Gi"},
                default_request={"cpu": "250m", "memory": "256Mi"},
                max={"cpu": "4", "memory": "8Gi"},
            )]),
            opts=in_ns,
        )

    def _network_policies(self, in_ns: pulumi.ResourceOptions) -> None:
        """Default deny both ways; DNS to kube-dns; the stack's declared egress, TCP only."""
        everything = LabelSelectorArgs()
        NetworkPolicy(
            "default-deny",
            metadata=self._meta("default-deny-all"),
            spec=NetworkPolicySpecArgs(pod_selector=everything, policy_types=["Ingress", "Egress"]),
            opts=in_ns,
        )
        dns = NetworkPolicyEgressRuleArgs(
            to=[NetworkPolicyPeerArgs(
                namespace_selector=_namespace_named("kube-system"),
                pod_selector=LabelSelectorArgs(match_labels={"k8s-app": "kube-dns"}),
            )],
            ports=[NetworkPolicyPortArgs(protocol="UDP", port=53), NetworkPolicyPortArgs(protocol="TCP", port=53)],
        )
        NetworkPolicy(
            "allow-dns",
            metadata=self._meta("allow-dns-egress"),
            spec=NetworkPolicySpecArgs(pod_selector=everything, policy_types=["Egress"], egress=[dns]),
            opts=in_ns,
        )
        if self._args.egress:
            NetworkPolicy(
                "allow-suite-egress",
                metadata=self._meta("allow-suite-egress"),
                spec=NetworkPolicySpecArgs(
                    pod_selector=everything,
                    policy_types=["Egress"],
                    egress=[
                        NetworkPolicyEgressRuleArgs(
                            to=[_egress_peer(rule)],
                            ports=[NetworkPolicyPortArgs(protocol="TCP", port=p) for p in rule.ports],
                        )
                        for rule in self._args.egress
                    ],
                ),
                opts=in_ns,
            )

    def _runner_identity(self, runner: RunnerIdentity, name: str, in_ns: pulumi.ResourceOptions) -> ServiceAccount:
        """A suites' service account (no token mounted by default); a Role only when it has rules."""
        account = ServiceAccount(
            name,
            metadata=self._meta(runner.service_account),
            automount_service_account_token=False,
            opts=in_ns,
        )
        if runner.rules:
            role = Role(
                name,
                metadata=self._meta(runner.service_account),
                rules=[
                    PolicyRuleArgs(api_groups=list(r.api_groups), resources=list(r.resources), verbs=list(r.verbs))
                    for r in runner.rules
                ],
                opts=in_ns,
            )
            RoleBinding(
                name,
                metadata=self._meta(runner.service_account),
                role_ref=RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role", name=runner.service_account),
                subjects=[SubjectArgs(kind="ServiceAccount", name=runner.service_account, namespace=self._args.name)],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[role, account]),
            )
        return account

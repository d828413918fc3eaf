"""`IntegrationNamespace`: the namespace the suites run in, locked down to what they need.

Owns: the Namespace (Pod Security Admission `restricted`), its ResourceQuota and LimitRange,
a default-deny NetworkPolicy with DNS and the stack's declared egress, and the runner
ServiceAccount (no token automount; a Role only when the stack configures rules).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.kube_objects import (
    LIMIT_RANGE,
    NAMESPACE,
    NETWORK_POLICY,
    RESOURCE_QUOTA,
    ROLE,
    ROLE_BINDING,
    SERVICE_ACCOUNT,
    KubeObject,
)
from config.naming import COMPONENT_TYPE_PREFIX, PSA_LABEL_PREFIX, PSA_LEVEL
from config.stack import EgressRule, RbacRule
from config.stack import ResourceQuota as QuotaSettings


@dataclass(frozen=True)
class IntegrationNamespaceArgs:
    name: str
    labels: dict[str, str]
    kubernetes_version: str
    protect: bool
    quota: QuotaSettings
    egress: tuple[EgressRule, ...]
    runner_service_account: str
    runner_rbac: tuple[RbacRule, ...]


class IntegrationNamespace(pulumi.ComponentResource):
    name: pulumi.Output[str]
    runner_service_account: pulumi.Output[str]

    def __init__(
        self, name: str, args: IntegrationNamespaceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{COMPONENT_TYPE_PREFIX}IntegrationNamespace", name, None, opts)
        ns_name = args.name
        labels = args.labels

        psa = {
            f"{PSA_LABEL_PREFIX}{mode}{suffix}": value
            for mode in ("enforce", "warn", "audit")
            for suffix, value in (("", PSA_LEVEL), ("-version", f"v{args.kubernetes_version}"))
        }
        namespace = KubeObject(
            NAMESPACE,
            "namespace",
            {"metadata": {"name": ns_name, "labels": {**labels, **psa}}},
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[namespace])

        def meta(object_name: str) -> dict[str, object]:
            return {"name": object_name, "namespace": ns_name, "labels": labels}

        q = args.quota
        hard = {
            "pods": str(q.pods),
            "requests.cpu": q.requests_cpu,
            "requests.memory": q.requests_memory,
            "limits.cpu": q.limits_cpu,
            "limits.memory": q.limits_memory,
        }
        KubeObject(RESOURCE_QUOTA, "quota", {"metadata": meta("integration-tests"), "spec": {"hard": hard}}, in_ns)
        # Every container must state resources under the quota; these fill in what a Job omits.
        container_limits = {
            "type": "Container",
            "default": {"cpu": "1", "memory": "1Gi"},
            "defaultRequest": {"cpu": "250m", "memory": "256Mi"},
            "max": {"cpu": "4", "memory": "8Gi"},
        }
        KubeObject(
            LIMIT_RANGE, "limits", {"metadata": meta("integration-tests"), "spec": {"limits": [container_limits]}}, in_ns
        )
        KubeObject(
            NETWORK_POLICY,
            "default-deny",
            {"metadata": meta("default-deny-all"), "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}},
            in_ns,
        )
        dns = {
            "to": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                }
            ],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        }
        KubeObject(
            NETWORK_POLICY,
            "allow-dns",
            {"metadata": meta("allow-dns-egress"), "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [dns]}},
            in_ns,
        )
        if args.egress:
            egress = [
                {
                    "to": [
                        {"ipBlock": {"cidr": rule.cidr}}
                        if rule.cidr
                        else {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": rule.namespace}}}
                    ],
                    "ports": [{"protocol": "TCP", "port": p} for p in rule.ports],
                }
                for rule in args.egress
            ]
            KubeObject(
                NETWORK_POLICY,
                "allow-suite-egress",
                {
                    "metadata": meta("allow-suite-egress"),
                    "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": egress},
                },
                in_ns,
            )
        account = KubeObject(
            SERVICE_ACCOUNT,
            "runner",
            {"metadata": meta(args.runner_service_account), "automountServiceAccountToken": False},
            in_ns,
        )
        if args.runner_rbac:
            rules = [
                {"apiGroups": r.api_groups, "resources": r.resources, "verbs": list(r.verbs)} for r in args.runner_rbac
            ]
            role = KubeObject(ROLE, "runner", {"metadata": meta(args.runner_service_account), "rules": rules}, in_ns)
            KubeObject(
                ROLE_BINDING,
                "runner",
                {
                    "metadata": meta(args.runner_service_account),
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                "name": args.runner_service_account},
                    "subjects": [{"kind": "ServiceAccount", "name": args.runner_service_account, "namespace": ns_name}],
                },
                pulumi.ResourceOptions(parent=self, depends_on=[role, account]),
            )

        self.name = namespace.metadata.apply(lambda m: str(m["name"]))
        self.runner_service_account = account.metadata.apply(lambda m: str(m["name"]))
        self.register_outputs({"name": self.name, "runnerServiceAccount": self.runner_service_account})

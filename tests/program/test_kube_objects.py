"""components/kube_objects.py registers exactly what pulumi_kubernetes' generated classes register:
each kind the program uses is declared both ways under the SDK's mocks and the two RegisterResource
(or ReadResource) requests are compared whole -- type, name, properties, version, aliases, options."""

from __future__ import annotations

from collections.abc import Callable

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components import kube_objects as ko
from tests.program.conftest import registered

META = {"name": "x", "namespace": "ns", "labels": {"a": "b"}}


OPTS = pulumi.ResourceOptions(protect=True)
CASES: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
    "Namespace": (
        lambda: k8s.core.v1.Namespace("n", metadata={"name": "ns"}, opts=OPTS),
        lambda: ko.KubeObject(ko.NAMESPACE, "n", {"metadata": {"name": "ns"}}, OPTS),
    ),
    "ResourceQuota": (
        lambda: k8s.core.v1.ResourceQuota("q", metadata=META, spec={"hard": {"pods": "3"}}),
        lambda: ko.KubeObject(ko.RESOURCE_QUOTA, "q", {"metadata": META, "spec": {"hard": {"pods": "3"}}}),
    ),
    "LimitRange": (
        lambda: k8s.core.v1.LimitRange("l", metadata=META, spec={"limits": [{"type": "Container"}]}),
        lambda: ko.KubeObject(ko.LIMIT_RANGE, "l", {"metadata": META, "spec": {"limits": [{"type": "Container"}]}}),
    ),
    "ServiceAccount": (
        lambda: k8s.core.v1.ServiceAccount("s", metadata=META, automount_service_account_token=False),
        lambda: ko.KubeObject(ko.SERVICE_ACCOUNT, "s", {"metadata": META, "automountServiceAccountToken": False}),
    ),
    "NetworkPolicy": (
        lambda: k8s.networking.v1.NetworkPolicy("p", metadata=META, spec={"podSelector": {}}),
        lambda: ko.KubeObject(ko.NETWORK_POLICY, "p", {"metadata": META, "spec": {"podSelector": {}}}),
    ),
    "Role": (
        lambda: k8s.rbac.v1.Role("r", metadata=META, rules=[{"apiGroups": [""], "verbs": ["get"]}]),
        lambda: ko.KubeObject(ko.ROLE, "r", {"metadata": META, "rules": [{"apiGroups": [""], "verbs": ["get"]}]}),
    ),
    "RoleBinding": (
        lambda: k8s.rbac.v1.RoleBinding("b", metadata=META, role_ref={"kind": "Role", "name": "r"},
                                        subjects=[{"kind": "ServiceAccount", "name": "s"}]),
        lambda: ko.KubeObject(ko.ROLE_BINDING, "b", {"metadata": META, "roleRef": {"kind": "Role", "name": "r"},
                                                     "subjects": [{"kind": "ServiceAccount", "name": "s"}]}),
    ),
    "ClusterRoleBinding": (
        lambda: k8s.rbac.v1.ClusterRoleBinding("c", metadata={"name": "c"}, role_ref={"kind": "ClusterRole"}),
        lambda: ko.KubeObject(ko.CLUSTER_ROLE_BINDING, "c", {"metadata": {"name": "c"},
                                                             "roleRef": {"kind": "ClusterRole"}}),
    ),
    "ConfigMap.get": (
        lambda: k8s.core.v1.ConfigMap.get("ca", "default/kube-root-ca.crt"),
        lambda: ko.ExistingObject(ko.CONFIG_MAP, "ca", "default/kube-root-ca.crt",
                                  ("binaryData", "data", "immutable", "metadata")),
    ),
    "helm Release": (
        lambda: k8s.helm.v3.Release("h", name="h", chart="./c", namespace="ns", values={"a": {"b": [1]}},
                                    description="d", atomic=False, cleanup_on_fail=False, max_history=5, timeout=60,
                                    wait_for_jobs=True, skip_crds=True, create_namespace=False),
        lambda: ko.HelmRelease("h", {"name": "h", "chart": "./c", "namespace": "ns", "values": {"a": {"b": [1]}},
                                     "description": "d", "atomic": False, "cleanupOnFail": False, "maxHistory": 5,
                                     "timeout": 60, "waitForJobs": True, "skipCrds": True,
                                     "createNamespace": False}),
    ),
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_the_untyped_registration_is_the_generated_classes(kind: str) -> None:
    generated, untyped = CASES[kind]
    assert registered(untyped) == registered(generated)


def test_the_comparison_sees_a_difference() -> None:
    """The check above could fail: a different field, alias or option is a different request."""
    typed = registered(lambda: k8s.rbac.v1.Role("r", metadata=META))
    assert registered(lambda: ko.KubeObject(ko.ROLE, "r", {"metadata": {**META, "name": "y"}})) != typed
    assert registered(lambda: ko.KubeObject(ko.LIMIT_RANGE, "r", {"metadata": META})) != typed
    aliasless = ko.KubeKind(ko.ROLE.api_version, ko.ROLE.kind)
    assert registered(lambda: ko.KubeObject(aliasless, "r", {"metadata": META})) != typed


def test_the_program_imports_no_generated_kubernetes_class() -> None:
    """The point of the module: the program's components load without pulumi_kubernetes' typed API groups."""
    import subprocess
    import sys

    from tests.conftest import PROJECT_DIR

    # pulumi_kubernetes.core etc. are lazy placeholders; an API version module (core.v1) is the cost.
    probe = ("import sys, components.integration_environment; "
             "print(sorted(m for m in sys.modules if m.startswith('pulumi_kubernetes.') "
             "and m.split('.')[1] in ('core', 'helm', 'rbac', 'networking') and m.count('.') >= 2))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT_DIR, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

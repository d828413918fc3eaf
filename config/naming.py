"""Every name, prefix, label, path and type token the project uses, decided once.

Standard library only: the policy pack imports this module in its own virtualenv.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Mapping
from typing import Any

PROJECT = "testinfra"
# Config namespaces of the providers the program uses: theirs to validate, not ours.
PROVIDER_NAMESPACES = ("kubernetes", "vault", "random", "pulumi")
# Env vars the chart sets itself (templates/_helpers.tpl, job.yaml): never overridden per service.
CHART_ENV = frozenset({
    "INTEGRATION_TEST_TIMEOUT", "INTEGRATION_TEST_JUNIT_PATH", "GOTESTSUM_JUNITFILE",
    "JEST_JUNIT_OUTPUT_DIR", "JEST_JUNIT_OUTPUT_NAME", "PYTEST_ADDOPTS", "HOME", "INTEGRATION_TEST_REQUIRED_ENV",
})
# Why such a variable is refused, wherever it is set (catalog env/secrets, serviceOverrides.env).
CHART_ENV_REFUSED = ("set by the chart (timeout, JUnit, HOME): a second definition would override it; "
                     "change timeoutSeconds instead, or drop it")
# Variables that change how the wrapper's shell and the runners' interpreters start (where programs are
# found, what is preloaded, what runs first): a service's env may not set them.
PROCESS_ENV = frozenset({
    "PATH", "IFS", "BASH_ENV", "ENV", "SHELLOPTS", "BASHOPTS", "PS4", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP",
    "NODE_OPTIONS", "GOFLAGS",
})
PROCESS_ENV_PREFIX = "LD_"  # the dynamic loader's: LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT, ...
PROCESS_ENV_REFUSED = ("changes how the suite's wrapper and interpreter start (PATH, the loader's LD_* variables, "
                       "shell and interpreter start-up files): the suite cannot rely on its runner then; drop it")


def env_name_problem(name: str) -> str | None:
    """Why a service may not set `name` in its env or as a secret's variable; None when it may."""
    if name in CHART_ENV:
        return CHART_ENV_REFUSED
    if name in PROCESS_ENV or name.startswith(PROCESS_ENV_PREFIX):
        return PROCESS_ENV_REFUSED
    return None


CATALOG_FILE = "catalog.yaml"
ENVIRONMENTS = ("local", "staging", "prod")
MAX_STACK_NAME = 20  # it names the Vault prefix, policy and role: short, a DNS label
# A DNS label (RFC 1123): what a stack and a service name are, as every Kubernetes name derived from them.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


def is_stack_name(stack: str) -> bool:
    return bool(re.fullmatch(DNS_LABEL, stack)) and len(stack) <= MAX_STACK_NAME

# A review stack per pull request: pr-<n>, from the committed template Pulumi.review.yaml.
REVIEW_TEMPLATE = "review"
REVIEW_STACK_PREFIX = "pr-"
MAX_PULL_REQUEST = 999_999  # pr-999999: the stack name stays short in every name derived from it


def review_stack(pull_request: str) -> str:
    """`pr-<n>` for a pull request number; ValueError (one message) for anything else."""
    shown = repr(pull_request[:20] + ("..." if len(pull_request) > 20 else ""))
    if not re.fullmatch(r"[1-9][0-9]{0,5}", pull_request):
        raise ValueError(f"PR={shown}: not a pull request number: give a positive integer up to {MAX_PULL_REQUEST} "
                         "(review stacks are pr-<n>; staging and prod are never touched by a review command)")
    return f"{REVIEW_STACK_PREFIX}{pull_request}"


# A local environment's stack: `local` (the default environment) or `local-<name>` (a named one, its
# Pulumi.local-<name>.yaml written by `make local-env NAME=<name>`): its own disposable platform.
LOCAL_STACK = "local"


def is_local_stack(stack: str) -> bool:
    return stack == LOCAL_STACK or (stack.startswith(f"{LOCAL_STACK}-") and is_stack_name(stack))


def is_review_stack(stack: str) -> bool:
    return bool(re.fullmatch(rf"{REVIEW_STACK_PREFIX}[1-9][0-9]{{0,5}}", stack))


# Job name = "test-" + service + "-" + 10-char run id must stay a 63-char DNS label.
MAX_SERVICE_NAME = 47


def is_service_name(service: str) -> bool:
    return bool(re.fullmatch(DNS_LABEL, service)) and len(service) <= MAX_SERVICE_NAME
RUN_ID_LENGTH = 10
RELEASE_PREFIX = "test-"
SECRET_NAME_SUFFIX = "-int-tests-secrets"
JUNIT_DIR = "/results"
JUNIT_PATH = f"{JUNIT_DIR}/junit.xml"
# Room for image pull and JUnit export after the suite's own timeout fires.
DEADLINE_MARGIN_SECONDS = 120
# Helm's timeout per release when a stack names none: this, or the longest Job deadline plus the margin.
DEFAULT_RELEASE_TIMEOUT_SECONDS = 900
RELEASE_TIMEOUT_MARGIN_SECONDS = 60

RUNNER_SERVICE_ACCOUNT = "integration-test-runner"


def runner_service_account(service: str) -> str:
    """The own service account of a service whose suite is granted RBAC (serviceOverrides.<svc>.runnerRbac)."""
    return f"{RUNNER_SERVICE_ACCOUNT}-{service}"
# A namespaced SecretStore may only reference service accounts in its own namespace.
# The program's ResourceQuota and LimitRange in the integration namespace.
NAMESPACE_LIMITS_NAME = "integration-tests"
NAMESPACED_VAULT_AUTH_SERVICE_ACCOUNT = "external-secrets-vault"
# Every namespace gets this ConfigMap from the controller manager; `default` exists from the start.
CLUSTER_CA_CONFIGMAP = "default/kube-root-ca.crt"

PSA_LABEL_PREFIX = "pod-security.kubernetes.io/"
PSA_LEVEL = "restricted"
ESO_API_VERSION = "external-secrets.io/v1"
# Relative on purpose: an absolute path would differ per machine and show up as a diff.
CHART_PATH = "./charts/test-job-runner"

LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_ENVIRONMENT = "ameide.io/environment"
LABEL_SERVICE = "ameide.io/service"

# Type tokens, as the engine and the policy pack see them.
RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
EXTERNAL_SECRET_TYPE = "kubernetes:external-secrets.io/v1:ExternalSecret"
NAMESPACE_TYPE = "kubernetes:core/v1:Namespace"
CLUSTER_SECRET_STORE_TYPE = "kubernetes:external-secrets.io/v1:ClusterSecretStore"
SECRET_STORE_TYPE = "kubernetes:external-secrets.io/v1:SecretStore"
VAULT_SECRET_TYPE = "vault:kv/secretV2:SecretV2"
VAULT_MOUNT_TYPE = "vault:index/mount:Mount"
VAULT_POLICY_TYPE = "vault:index/policy:Policy"
VAULT_ROLE_TYPE = "vault:kubernetes/authBackendRole:AuthBackendRole"
COMPONENT_TYPE_PREFIX = "ameide:testinfra:"

# What the suites may reach and be granted: decided here (standard library only) for the config's
# validation and the policy pack alike.
# Cloud metadata and host-agent addresses: link-local (AWS, GCP, Azure IMDS), Alibaba, Oracle, and
# Azure's WireServer (168.63.129.16), which hands out VM extension settings. Credentials live there.
METADATA_NETWORKS = tuple(ipaddress.IPv4Network(n) for n in (
    "169.254.0.0/16", "100.100.100.200/32", "192.0.0.192/32", "168.63.129.16/32"))
# The cluster's own namespaces (the API server's Service lives in `default`): never a suite's egress
# (DNS has its own rule), never the integration namespace.
SYSTEM_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})
# Control-plane ports a suite never needs, on any address.
CONTROL_PLANE_PORTS = {10250: "the kubelet", 10255: "the kubelet's read-only port", 2379: "etcd", 2380: "etcd's peers",
                       10257: "the controller manager", 10259: "the scheduler"}
# What a suite's runner may be granted in its own namespace: reading the workloads it tests, and
# writing only objects that cannot run code, reveal a secret or take traffic. Never `secrets`,
# `serviceaccounts` (a token for ESO's Vault account would read every key), `pods/exec`, RBAC objects,
# or creating a workload (its pod could mount any account of the namespace or any Secret). Not
# `services` (externalIPs or a LoadBalancer take other workloads' traffic: the CVE-2020-8554 class)
# and not `persistentvolumeclaims` as writable.
RUNNER_READABLE = {
    # Not `pods/log`: a Role cannot narrow it to the suite's own pods, and other suites' logs are theirs.
    "": frozenset({"pods", "services", "endpoints", "configmaps", "events", "persistentvolumeclaims"}),
    "apps": frozenset({"deployments", "statefulsets", "replicasets", "daemonsets"}),
    "batch": frozenset({"jobs", "cronjobs"}),
    "discovery.k8s.io": frozenset({"endpointslices"}),
    "events.k8s.io": frozenset({"events"}),
}
RUNNER_WRITABLE = frozenset({"configmaps", "events"})
READ_VERBS = frozenset({"get", "list", "watch"})


def stack_file(environment: str) -> str:
    return f"Pulumi.{environment}.yaml"


def config_key(key: str) -> str:
    """How a stack setting is spelt in Pulumi.<stack>.yaml and in messages."""
    return f"config.{PROJECT}:{key}"


def release_name(service: str) -> str:
    return f"{RELEASE_PREFIX}{service}"


def service_of_release(release: str) -> str | None:
    return release[len(RELEASE_PREFIX):] if release.startswith(RELEASE_PREFIX) else None


def secret_name(service: str) -> str:
    return f"{service}{SECRET_NAME_SUFFIX}"


def job_name(release: str, run: str) -> str:
    return f"{release}-{run}"


def run_id(spec: Mapping[str, Any]) -> str:
    """A short, stable id of a Job's run spec: equal specs share a Job, changed specs get a new one
    (a Job's pod template is immutable, so an in-place update would fail)."""
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:RUN_ID_LENGTH]


def vault_prefix(path_prefix: str, environment: str) -> str:
    return f"{path_prefix}/{environment}"


def vault_key_path(prefix: str, key: str) -> str:
    """Mount-relative path of a KV v2 key, e.g. integration/staging/graph."""
    return f"{prefix}/{key}"


def vault_full_path(mount: str, path: str) -> str:
    """`<mount>/<path>`, as outputs and messages name a key."""
    return f"{mount}/{path}"


def stack_reference(name: str, organization: str) -> str:
    """A stack reference as the backend resolves it: `<project>/<stack>` is in this stack's own
    organisation (`organization` on a DIY backend, the team's on Pulumi Cloud); `<org>/<project>/<stack>`
    is taken as written. One committed stack file then works on either backend."""
    return name if name.count("/") == 2 else f"{organization}/{name}"


def vault_read_path(mount: str, path: str) -> str:
    """KV v2 serves reads under <mount>/data/<path>: the path a policy must grant."""
    return f"{mount}/data/{path}"


def vault_policy_name(environment: str) -> str:
    return f"integration-tests-{environment}-read"


def vault_role_name(environment: str) -> str:
    return f"integration-tests-{environment}-eso"


def secret_store_name(environment: str) -> str:
    return f"vault-integration-tests-{environment}"


# Where the platform team keeps the deploy and preview identities' ServiceAccounts (config/identities.py).
IDENTITY_NAMESPACE = f"{PROJECT}-identities"


def identity_name(role: str, environment: str) -> str:
    """The deploy/preview identity of a stack: its Vault policy, ServiceAccount and (Cluster)Role."""
    return f"{PROJECT}-{role}-{environment}"


def review_transit_key(environment: str) -> str:
    """A review stack's state-encryption key in Vault's transit engine: named like its identity."""
    return identity_name("deploy", environment)


# The transit key of the stacks review stacks reference (the proto stack), published by the platform in
# the review backend: a review job may decrypt with it (to read their outputs), never encrypt.
REVIEW_REFERENCES_KEY = f"{PROJECT}-review-references"


def token_review_binding_name(environment: str) -> str:
    """ClusterRoleBinding letting the service account ESO presents call TokenReview."""
    return f"{PROJECT}-{environment}-vault-token-review"


def labels(environment: str, component: str) -> dict[str, str]:
    return {
        LABEL_PART_OF: "integration-tests",
        LABEL_MANAGED_BY: "pulumi",
        LABEL_COMPONENT: component,
        LABEL_ENVIRONMENT: environment,
    }

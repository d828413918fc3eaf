"""Constrained string and number types of the catalog and stack schemas (pydantic annotations)."""

from __future__ import annotations

import string
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StringConstraints, model_validator
from pydantic.alias_generators import to_camel

from config.naming import DNS_LABEL, MAX_SERVICE_NAME

Runner = Literal["gotestsum", "jest", "pytest"]
SecretSource = Literal["config", "generated", "external"]
StoreKind = Literal["ClusterSecretStore", "SecretStore"]

# Each pattern once, with the words an error message uses for it (never the regex itself).
ENV_VAR_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
SECRET_KEY = r"^[-._a-zA-Z0-9]+$"
VAULT_SEGMENT = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
VAULT_PATH = r"^[A-Za-z0-9][A-Za-z0-9_-]*(/[A-Za-z0-9][A-Za-z0-9_-]*)*$"
IMAGE_REPOSITORY = r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+$"
IMAGE_TAG = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
IMAGE_DIGEST = r"^sha256:[a-f0-9]{64}$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
LABEL_KEY = (r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
             r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
LABEL_VALUE = r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$"
DURATION = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
# The minors whose API schemas the manifests are validated against (kubernetes-validate ships them).
SUPPORTED_KUBE_MINORS = range(29, 38)
KUBE_VERSION = rf"^1\.({'|'.join(str(m) for m in SUPPORTED_KUBE_MINORS)})$"
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$"
CPU_QUANTITY = r"^([0-9]+(\.[0-9]+)?|[0-9]+m)$"
MEMORY_QUANTITY = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)$"
# <project>/<stack> (in this stack's own organisation: `organization` on a DIY backend) or <org>/<project>/<stack>
STACK_NAME = r"^([A-Za-z0-9_.-]+/)?[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"
OUTPUT_NAME = r"^[A-Za-z][A-Za-z0-9_]*$"
# No NUL or other control characters (a tab or newline is fine): they break env files and logs.
ENV_VALUE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"

PATTERN_MEANINGS = {
    DNS_LABEL: "a DNS label: lower-case letters, digits and '-', starting and ending with a letter or digit",
    ENV_VAR_NAME: "an environment variable name: letters, digits and '_', not starting with a digit",
    SECRET_KEY: "a Secret key: letters, digits, '-', '_' and '.', not '.' or '..'",
    VAULT_SEGMENT: "a Vault path segment: letters, digits, '-' and '_', starting with a letter or digit",
    VAULT_PATH: "a Vault path: segments of letters, digits, '-' and '_' separated by '/', no leading or trailing '/'",
    IMAGE_REPOSITORY: "an image repository without tag or digest, e.g. ghcr.io/org/name (lower case)",
    IMAGE_TAG: "an image tag: letters, digits, '_', '.' and '-', at most 128, not starting with '.' or '-'",
    IMAGE_DIGEST: "a digest: sha256: followed by 64 lower-case hex digits",
    DNS_SUBDOMAIN: "a DNS name: DNS labels separated by '.'",
    LABEL_KEY: "a label key: an optional DNS-name prefix and '/', then at most 63 letters, digits, '-', '_', '.'",
    LABEL_VALUE: "a label value: at most 63 letters, digits, '-', '_', '.', starting and ending alphanumeric",
    DURATION: "a duration such as 30s, 10m or 1h",
    KUBE_VERSION: f"a supported Kubernetes minor, 1.{SUPPORTED_KUBE_MINORS[0]} to 1.{SUPPORTED_KUBE_MINORS[-1]}",
    QUANTITY: "a Kubernetes quantity such as 500m, 2, 512Mi or 4Gi",
    CPU_QUANTITY: "a cpu amount: cores (2, 0.5) or millicores (500m)",
    MEMORY_QUANTITY: "a memory amount with a unit: 512Mi, 1Gi, 1G (a bare number or m would be bytes or milli-bytes)",
    STACK_NAME: "a fully qualified stack name: organization/project/stack",
    OUTPUT_NAME: "a stack output name: letters, digits and '_', starting with a letter",
    ENV_VALUE: "text without NUL or other control characters",
}

DnsLabel = Annotated[str, StringConstraints(pattern=DNS_LABEL, max_length=63)]
ServiceName = Annotated[str, StringConstraints(pattern=DNS_LABEL, max_length=MAX_SERVICE_NAME)]
EnvVarName = Annotated[str, StringConstraints(pattern=ENV_VAR_NAME, max_length=128)]
EnvValue = Annotated[str, StringConstraints(pattern=ENV_VALUE, max_length=32768)]
def _not_dots(key: str) -> str:
    if key in (".", ".."):
        raise ValueError("'.' and '..' are not valid Secret keys: name the key (e.g. DATABASE_URL)")
    return key


SecretKeyName = Annotated[str, StringConstraints(pattern=SECRET_KEY, max_length=253), AfterValidator(_not_dots)]
# Vault path segments: no slashes, no "data"/"metadata" tricks, no dot-only segments.
VaultSegment = Annotated[str, StringConstraints(pattern=VAULT_SEGMENT, max_length=128)]
VaultPath = Annotated[str, StringConstraints(pattern=VAULT_PATH, max_length=200)]
ImageRepository = Annotated[str, StringConstraints(pattern=IMAGE_REPOSITORY, max_length=255)]
ImageTag = Annotated[str, StringConstraints(pattern=IMAGE_TAG)]
ImageDigest = Annotated[str, StringConstraints(pattern=IMAGE_DIGEST)]
DnsSubdomain = Annotated[str, StringConstraints(pattern=DNS_SUBDOMAIN, max_length=253)]
LabelKey = Annotated[str, StringConstraints(pattern=LABEL_KEY, max_length=317)]
LabelValue = Annotated[str, StringConstraints(pattern=LABEL_VALUE)]
Duration = Annotated[str, StringConstraints(pattern=DURATION, max_length=32)]
KubeVersion = Annotated[str, StringConstraints(pattern=KUBE_VERSION)]
Quantity = Annotated[str, StringConstraints(pattern=QUANTITY, max_length=16)]
CpuQuantity = Annotated[str, StringConstraints(pattern=CPU_QUANTITY, max_length=16)]
MemoryQuantity = Annotated[str, StringConstraints(pattern=MEMORY_QUANTITY, max_length=16)]
MIN_MEMORY_BYTES = 16 * 2**20
StackName = Annotated[str, StringConstraints(pattern=STACK_NAME, max_length=300)]
# A stack of this project by name (its Vault prefix), or empty for none.
ExternalKeysFrom = Annotated[str, StringConstraints(pattern=r"^([a-z0-9]([-a-z0-9]{0,18}[a-z0-9])?)?$")]
OutputName = Annotated[str, StringConstraints(pattern=OUTPUT_NAME, max_length=128)]


GENERATED_FORMAT_FIELDS = ("password", "key", "user")


def _generated_format(template: str) -> str:
    try:
        parts = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(template) if f is not None]
    except ValueError as e:
        raise ValueError(f"not a format template ({e})") from None
    if any(spec or conv for _, spec, conv in parts):
        raise ValueError("a template takes plain fields only ({password}, not {password:>20} or {password!r})")
    fields = {f for f, _, _ in parts}
    unknown = sorted(fields - set(GENERATED_FORMAT_FIELDS))
    if unknown or not fields:
        raise ValueError(
            f"a template must contain at least one field and may use only "
            f"{', '.join('{' + f + '}' for f in GENERATED_FORMAT_FIELDS)}"
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
        )
    return template


GeneratedFormat = Annotated[str, AfterValidator(_generated_format)]


_QUANTITY_SUFFIX: dict[str, Decimal | int] = {"": 1, "m": Decimal("0.001"), "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
                    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity_value(text: str) -> Decimal:
    """A Kubernetes quantity (the subset `Quantity` admits) as an exact number: "500m" -> 0.5."""
    number = text.rstrip("mkKMGTi")
    return Decimal(number) * _QUANTITY_SUFFIX[text[len(number):]]


class StrictModel(BaseModel):
    """Unknown keys are errors; YAML keys are camelCase, fields snake_case."""

    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)


class CpuMemory(StrictModel):
    cpu: CpuQuantity
    memory: MemoryQuantity
    # The node's disk a suite may use (logs, its emptyDirs): a suite without a bound could fill it.
    ephemeral_storage: MemoryQuantity | None = Field(default=None, alias="ephemeral-storage")

    @model_validator(mode="after")
    def _enough_memory(self) -> CpuMemory:
        if quantity_value(self.memory) < MIN_MEMORY_BYTES:
            raise ValueError(f"memory {self.memory} is below 16Mi: no suite starts in that (write e.g. 512Mi)")
        return self


class PodResources(StrictModel):
    """A suite pod's requests and limits (the chart's `resources`); the quota must hold them."""

    requests: CpuMemory
    limits: CpuMemory

    @model_validator(mode="after")
    def _requests_within_limits(self) -> PodResources:
        for kind in ("cpu", "memory", "ephemeral_storage"):
            request, limit = getattr(self.requests, kind), getattr(self.limits, kind)
            if request is None or limit is None:
                continue
            name = kind.replace("_", "-")
            if quantity_value(request) == 0:
                raise ValueError(f"requests.{name} of 0: the scheduler would pack suites without bound")
            if quantity_value(request) > quantity_value(limit):
                raise ValueError(f"requests.{name} {request} exceeds limits.{name} {limit}")
        return self


# Labels and taint keys of control-plane nodes: no suite is scheduled there.
CONTROL_PLANE_NODE_LABELS = frozenset({"node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"})


class Toleration(StrictModel):
    """A Kubernetes toleration for the suites' pods (dedicated test nodes)."""

    key: LabelKey | None = None
    operator: Literal["Equal", "Exists"] = "Equal"
    value: LabelValue | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: StrictInt | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> Toleration:
        if self.operator == "Exists" and self.value is not None:
            raise ValueError("operator Exists takes no value")
        if self.operator == "Equal" and self.key is None:
            raise ValueError("operator Equal needs a key (or use operator: Exists to tolerate every taint)")
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise ValueError("tolerationSeconds applies only to effect NoExecute")
        if self.operator == "Exists" and self.key is None:
            raise ValueError("operator Exists without a key tolerates every taint, the control plane's included: name "
                             "the taint's key (e.g. key: dedicated, operator: Exists)")
        if self.key in CONTROL_PLANE_NODE_LABELS:
            raise ValueError(f"key {self.key} tolerates the control plane's taint: suites run on worker nodes")
        return self

"""Constrained string and number types of the catalog and stack schemas (pydantic annotations)."""

from __future__ import annotations

import string
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StringConstraints, model_validator
from pydantic.alias_generators import to_camel

from config.naming import MAX_SERVICE_NAME

Runner = Literal["gotestsum", "jest", "pytest"]
SecretSource = Literal["config", "generated", "external"]
StoreKind = Literal["ClusterSecretStore", "SecretStore"]

DnsLabel = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
]
ServiceName = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=MAX_SERVICE_NAME),
]
EnvVarName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128)]
SecretKeyName = Annotated[str, StringConstraints(pattern=r"^[-._a-zA-Z0-9]+$", max_length=253)]
# Vault path segments: no slashes, no "data"/"metadata" tricks, no dot-only segments.
VaultSegment = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$", max_length=128)
]
VaultPath = Annotated[
    str,
    StringConstraints(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*(/[A-Za-z0-9][A-Za-z0-9_-]*)*$", max_length=200
    ),
]
ImageRepository = Annotated[
    str,
    StringConstraints(
        pattern=r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+$",
        max_length=255,
    ),
]
ImageTag = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
ImageDigest = Annotated[str, StringConstraints(pattern=r"^sha256:[a-f0-9]{64}$")]
# A Secret name (DNS subdomain) and a label key (optional DNS-subdomain prefix, then a name).
DnsSubdomain = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", max_length=253)
]
LabelKey = Annotated[
    str,
    StringConstraints(
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$",
        max_length=317,
    ),
]
LabelValue = Annotated[str, StringConstraints(pattern=r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")]
Duration = Annotated[str, StringConstraints(pattern=r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$")]
KubeVersion = Annotated[str, StringConstraints(pattern=r"^1\.[0-9]{2}$")]
Quantity = Annotated[
    str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")
]
StackName = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"),
]


GENERATED_FORMAT_FIELDS = ("password", "key", "user")


def _generated_format(template: str) -> str:
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as e:
        raise ValueError(f"not a format template ({e})") from None
    unknown = sorted(fields - set(GENERATED_FORMAT_FIELDS))
    if unknown or "password" not in fields:
        raise ValueError(
            f"a template must contain {{password}} and may use only "
            f"{', '.join('{' + f + '}' for f in GENERATED_FORMAT_FIELDS)}"
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
        )
    return template


GeneratedFormat = Annotated[str, AfterValidator(_generated_format)]


_QUANTITY_SUFFIX: dict[str, Decimal | int] = {"": 1, "m": Decimal("0.001"), "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
                    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity_value(text: str) -> Decimal:
    """A Kubernetes quantity (the subset `Quantity` admits) as an exact number: "500m" -> 0.5."""
    number = text.rstrip("mkMGTi")
    return Decimal(number) * _QUANTITY_SUFFIX[text[len(number):]]


class StrictModel(BaseModel):
    """Unknown keys are errors; YAML keys are camelCase, fields snake_case."""

    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)


class CpuMemory(StrictModel):
    cpu: Quantity
    memory: Quantity


class PodResources(StrictModel):
    """A suite pod's requests and limits (the chart's `resources`); the quota must hold them."""

    requests: CpuMemory
    limits: CpuMemory

    @model_validator(mode="after")
    def _requests_within_limits(self) -> PodResources:
        for kind in ("cpu", "memory"):
            request, limit = getattr(self.requests, kind), getattr(self.limits, kind)
            if quantity_value(request) == 0:
                raise ValueError(f"requests.{kind} of 0: the scheduler would pack suites without bound")
            if quantity_value(request) > quantity_value(limit):
                raise ValueError(f"requests.{kind} {request} exceeds limits.{kind} {limit}")
        return self


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
        return self

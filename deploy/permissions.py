"""Does the caller hold what its identity needs? Asked of Vault and the API server with the caller's
own credentials before `make up|destroy|preview` changes anything.

Owns: turning config/identities.py's grants into questions -- Vault's `sys/capabilities-self` (one
request for every path) and Kubernetes' SelfSubjectAccessReview (one per verb, resource and name) --
and the one message that names the identity and the first missing permissions with why each is
needed. Both servers answer for the credential as it is (a root token or cluster-admin passes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from config.identities import Identity

SHOWN = 3  # missing permissions named in the message; the count says how many more


@dataclass(frozen=True)
class Missing:
    system: str  # Vault | Kubernetes
    permission: str
    why: str


def missing_in_vault(ident: Identity, capabilities: Callable[[list[str]], dict[str, set[str]]]) -> list[Missing]:
    held = capabilities([g.path for g in ident.vault])
    missing = []
    for grant in ident.vault:
        have = held.get(grant.path, set())
        if "root" in have:
            continue
        for cap in grant.capabilities:
            if cap not in have or "deny" in have:
                missing.append(Missing("Vault", f"`{cap}` on {grant.path}", grant.why))
    return missing


@dataclass(frozen=True)
class AccessQuestion:
    group: str
    resource: str  # may be `pods/log`
    verb: str
    namespace: str | None
    name: str | None

    def __str__(self) -> str:
        where = f" in namespace {self.namespace}" if self.namespace else ""
        named = f" {self.name}" if self.name else ""
        return f"`{self.verb}` {self.group or 'core'}/{self.resource}{named}{where}"


def kube_questions(ident: Identity) -> list[tuple[AccessQuestion, str]]:
    questions = []
    for grant in ident.kube:
        namespace = None if grant.cluster else ident.namespace
        for resource in grant.resources:
            for verb in grant.verbs:
                for name in grant.names or (None,):
                    # A request for a namespace object carries that namespace as its own (the API
                    # server's RequestInfo): a Role in it may grant `get` on itself.
                    where = name if grant.group == "" and resource == "namespaces" and name else namespace
                    questions.append((AccessQuestion(grant.group, resource, verb, where, name), grant.why))
    return questions


def missing_in_kubernetes(ident: Identity, allowed: Callable[[AccessQuestion], bool]) -> list[Missing]:
    asked = kube_questions(ident)
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda qa: allowed(qa[0]), asked))
    return [Missing("Kubernetes", str(q), why) for (q, why), ok in zip(asked, answers, strict=True) if not ok]


def ssar_allowed(api: Any) -> Callable[[AccessQuestion], bool]:
    """A SelfSubjectAccessReview per question, through the official client (every user may ask)."""
    from kubernetes import client

    authz = client.AuthorizationV1Api(api)

    def allowed(q: AccessQuestion) -> bool:
        resource, _, sub = q.resource.partition("/")
        attrs = client.V1ResourceAttributes(group=q.group, resource=resource, subresource=sub or None, verb=q.verb,
                                            namespace=q.namespace, name=q.name)
        review = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=attrs))
        status = authz.create_self_subject_access_review(review).status
        return bool(status and status.allowed)

    return allowed


def message(ident: Identity, missing: Iterable[Missing], stack_file: str) -> str | None:
    found = list(missing)
    if not found:
        return None
    systems = sorted({m.system for m in found})
    shown = "; ".join(f"{m.system} {m.permission} ({m.why})" for m in found[:SHOWN])
    more = f"; and {len(found) - SHOWN} more" if len(found) > SHOWN else ""
    return (f"the credentials in use ({' and '.join(systems)}) lack {len(found)} permission(s) of the {ident.role} "
            f"identity {ident.name}: {shown}{more}. Nothing was changed. Run with {ident.name}'s credentials, or "
            f"have the platform team apply `make identities STACK={ident.environment}` (docs/identities.md) "
            f"after a change to catalog.yaml or {stack_file}")

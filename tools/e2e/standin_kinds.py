"""The resources the stand-in Vault provider implements (tools/e2e/standin_providers.py serves them), each
following the real provider's function in terraform-provider-vault v5.11.0 (file and function named
beside it): replacements create before they delete, Check validates,
Read reports drift and drops what Vault no longer has.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

# How the engine sends a value not known yet (a preview of something computed).
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


class VaultAPIError(Exception):
    """OpenBao answered a request with an error status; the message names the request."""


class Vault(Protocol):
    def vault(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]: ...


class Kind:
    """One resource type: which inputs force a replacement, and its check/create/read/update/delete."""

    replace_on: tuple[str, ...] = ()

    def check(self, ins: dict[str, Any]) -> list[str]:
        """Why these inputs fail the provider's own validation at preview (none by default)."""
        return []

    def create(self, p: Vault, ins: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    def read(self, p: Vault, id_: str, props: dict[str, Any]) -> dict[str, Any] | None:
        """The resource as Vault has it now (refresh), or None when it is gone (dropped from state)."""
        return props

    def update(self, p: Vault, id_: str, ins: dict[str, Any]) -> dict[str, Any]:
        return self.create(p, ins)[1]

    def delete(self, p: Vault, id_: str, props: dict[str, Any]) -> None:
        return None


def absent(p: Vault, method: str, path: str) -> dict[str, Any] | None:
    """Vault's answer, or None for a 404 (how the real provider's Read sees a resource gone)."""
    try:
        return p.vault(method, path)
    except VaultAPIError as exc:
        if "HTTP 404" in str(exc):
            return None
        raise


class Mount(Kind):
    replace_on = ("path", "type")

    def create(self, p, ins):
        p.vault("POST", f"sys/mounts/{ins['path']}", {
            "type": ins["type"], "description": ins.get("description", ""), "options": ins.get("options", {})})
        return ins["path"], dict(ins)

    def update(self, p, id_, ins):
        p.vault("POST", f"sys/mounts/{ins['path']}/tune", {"description": ins.get("description", "")})
        return dict(ins)

    def read(self, p, id_, props):  # resource_mount.go mountRead: a missing mount leaves the state
        return props if absent(p, "GET", f"sys/mounts/{id_}") is not None else None

    def delete(self, p, id_, props):
        p.vault("DELETE", f"sys/mounts/{id_}")


class SecretV2(Kind):
    """vault/resource_kv_secret_v2.go (terraform-provider-vault v5.11.0)."""

    replace_on = ("mount", "name")

    def check(self, ins):  # data_json is validated as JSON when the plan is made, once it is known
        value = ins.get("dataJson")
        if not isinstance(value, str) or value == UNKNOWN:
            return []
        try:
            json.loads(value or "{}")
        except ValueError:
            return ["dataJson: not valid JSON"]
        return []

    def create(self, p, ins):
        path = f"{ins['mount']}/data/{ins['name']}"
        written = p.vault("POST", path, {"data": json.loads(ins["dataJson"])})
        # kvSecretV2Read: `data` is always the empty map (values live in data_json only), plus metadata.
        return path, {**ins, "path": path, "data": {}, "metadata": metadata(written.get("data") or {})}

    def read(self, p, id_, props):  # kvSecretV2Read: a secret missing in Vault is removed from state
        found = absent(p, "GET", id_)
        if found is None:
            return None
        return {**props, "data": {}, "metadata": metadata(found.get("data", {}).get("metadata") or {})}

    def delete(self, p, id_, props):  # kvSecretV2Delete: soft-deletes the latest version, keeps metadata
        p.vault("DELETE", f"{props['mount']}/data/{props['name']}")


def metadata(fields: dict[str, Any]) -> dict[str, str]:
    """serializeDataMapToString: each metadata value as a string."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()}


class Policy(Kind):
    replace_on = ("name",)

    def create(self, p, ins):
        p.vault("PUT", f"sys/policies/acl/{ins['name']}", {"policy": ins["policy"]})
        return ins["name"], dict(ins)

    def read(self, p, id_, props):
        # resource_policy.go policyRead reads the text back, so drift shows; a policy deleted in Vault
        # stays in state (empty text) and the next `up` writes it again.
        found = absent(p, "GET", f"sys/policies/acl/{id_}")
        return {**props, "policy": (found or {}).get("data", {}).get("policy", "")}

    def delete(self, p, id_, props):
        p.vault("DELETE", f"sys/policies/acl/{id_}")


class AuthBackend(Kind):
    replace_on = ("path", "type")

    def create(self, p, ins):
        path = ins.get("path") or ins["type"]
        p.vault("POST", f"sys/auth/{path}", {"type": ins["type"], "description": ins.get("description", "")})
        return path, {**ins, "path": path}

    def update(self, p, id_, ins):
        p.vault("POST", f"sys/auth/{id_}/tune", {"description": ins.get("description", "")})
        return {**ins, "path": id_}

    def delete(self, p, id_, props):
        p.vault("DELETE", f"sys/auth/{id_}")


class AuthBackendConfig(Kind):
    replace_on = ("backend",)

    def create(self, p, ins):
        backend = ins.get("backend", "kubernetes")
        body = {"kubernetes_host": ins["kubernetesHost"]}
        for field, api in (("kubernetesCaCert", "kubernetes_ca_cert"), ("tokenReviewerJwt", "token_reviewer_jwt"),
                           ("disableIssValidation", "disable_iss_validation"), ("issuer", "issuer"),
                           ("disableLocalCaJwt", "disable_local_ca_jwt")):
            if field in ins:
                body[api] = ins[field]
        p.vault("POST", f"auth/{backend}/config", body)
        return f"auth/{backend}/config", {**ins, "backend": backend}


class AuthBackendRole(Kind):
    replace_on = ("backend", "roleName")
    FIELDS = {"boundServiceAccountNames": "bound_service_account_names",
              "boundServiceAccountNamespaces": "bound_service_account_namespaces",
              "audience": "audience", "tokenPolicies": "token_policies", "tokenTtl": "token_ttl",
              "tokenMaxTtl": "token_max_ttl", "tokenNoDefaultPolicy": "token_no_default_policy"}

    def create(self, p, ins):
        backend = ins.get("backend", "kubernetes")
        body = {api: ins[field] for field, api in self.FIELDS.items() if field in ins}
        path = f"auth/{backend}/role/{ins['roleName']}"
        p.vault("POST", path, body)
        return path, {**ins, "backend": backend}

    def update(self, p, id_, ins):
        # kubernetesAuthBackendRoleUpdate sends every field, cleared ones too (as their empty value).
        cleared = {api: [] if api.startswith(("bound_", "token_policies")) else None
                   for field, api in self.FIELDS.items() if field not in ins}
        p.vault("POST", id_, {**cleared, **{api: ins[field] for field, api in self.FIELDS.items() if field in ins}})
        return {**ins, "backend": ins.get("backend", "kubernetes")}

    def read(self, p, id_, props):  # kubernetesAuthBackendRoleRead: drift shows, a missing role is dropped
        found = absent(p, "GET", id_)
        if found is None:
            return None
        data = found.get("data", {})
        return {**props, **{field: data[api] for field, api in self.FIELDS.items() if api in data}}

    def delete(self, p, id_, props):
        p.vault("DELETE", id_)


KINDS: dict[str, dict[str, Kind]] = {
    "vault": {
        "vault:index/mount:Mount": Mount(),
        "vault:kv/secretV2:SecretV2": SecretV2(),
        "vault:index/policy:Policy": Policy(),
        "vault:index/authBackend:AuthBackend": AuthBackend(),
        "vault:kubernetes/authBackendConfig:AuthBackendConfig": AuthBackendConfig(),
        "vault:kubernetes/authBackendRole:AuthBackendRole": AuthBackendRole(),
    },
}



"""The resources the stand-in Vault provider implements (tools/toolchain/standin_providers.py serves them), each
following the real provider's function in terraform-provider-vault v5.11.0 (file and function named
beside it): replacements create before they delete, Check validates,
Read reports drift and drops what Vault no longer has, Read from an ID alone imports, and computed
outputs are unknown in a preview.
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
    """One resource type: which inputs force a replacement, which outputs only Vault decides (unknown in
    a preview), and its check/create/read/update/delete. `read` also imports: given an ID and no
    properties it returns the whole state from Vault (every resource's Importer is ImportStatePassthrough)."""

    replace_on: tuple[str, ...] = ()
    computed: tuple[str, ...] = ()

    def check(self, ins: dict[str, Any]) -> list[str]:
        """Why these inputs fail the provider's own validation at preview (none by default)."""
        return []

    def create(self, p: Vault, ins: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    def read(self, p: Vault, id_: str, props: dict[str, Any]) -> dict[str, Any] | None:
        """The resource as Vault has it now (refresh), or None when it is gone (dropped from state)."""
        return props

    def update(self, p: Vault, id_: str, olds: dict[str, Any], ins: dict[str, Any]) -> dict[str, Any]:
        return self.create(p, ins)[1]

    def delete(self, p: Vault, id_: str, props: dict[str, Any]) -> None:
        return None


def absent(p: Vault, method: str, path: str) -> dict[str, Any] | None:
    """Vault's answer, or None for a 404 (how the real provider's Read sees a resource gone). A mount
    Vault does not have is a 400 naming it (util/mountutil/mountutil.go IsMountNotFoundError)."""
    try:
        return p.vault(method, path)
    except VaultAPIError as exc:
        text = str(exc)
        if "HTTP 404" in text or ("HTTP 400" in text and ("No secret engine mount at" in text
                                                          or "No auth engine at" in text)):
            return None
        raise


def mount_state(found: dict[str, Any]) -> dict[str, Any]:
    """What readMount / authBackendRead set from GET sys/mounts/<path> or sys/auth/<path>."""
    data = found.get("data", found)
    config = data.get("config") or {}
    return {"type": data.get("type", ""), "description": data.get("description", ""),
            "options": data.get("options") or {}, "accessor": data.get("accessor", ""),
            "local": bool(data.get("local", False)),
            "defaultLeaseTtlSeconds": config.get("default_lease_ttl", 0),
            "maxLeaseTtlSeconds": config.get("max_lease_ttl", 0)}


def lease_ttls(ins: dict[str, Any]) -> dict[str, str]:
    """The TTLs createMount and updateMount send (`"%ds"` of the two fields, 0 when unset)."""
    return {"default_lease_ttl": f"{ins.get('defaultLeaseTtlSeconds', 0)}s",
            "max_lease_ttl": f"{ins.get('maxLeaseTtlSeconds', 0)}s"}


class Mount(Kind):
    """vault/resource_mount.go (v5.11.0): `path` is not ForceNew -- a path change remounts in place."""

    replace_on = ("type", "local", "sealWrap", "externalEntropyAccess")
    computed = ("accessor", "defaultLeaseTtlSeconds", "maxLeaseTtlSeconds")

    def create(self, p, ins):  # mountWrite -> createMount, then the state as Vault has it
        path = ins["path"]
        p.vault("POST", f"sys/mounts/{path}", {
            "type": ins["type"], "description": ins.get("description", ""), "options": ins.get("options", {}),
            "config": lease_ttls(ins)})
        return path, self.read(p, path, ins) or dict(ins)

    def update(self, p, id_, olds, ins):
        # updateMount: a changed path is `sys/remount` from the old path to the new one, then a tune that
        # re-sends the TTLs and the options (and the description when it changed). The real provider then
        # calls d.SetId(newPath), but the Pulumi engine keeps a resource's ID through an update
        # (pulumi/pulumi#3729): the state keeps the old ID, as it does here.
        path = id_
        if olds.get("path", id_) != ins["path"]:
            p.vault("POST", "sys/remount", {"from": olds.get("path", id_), "to": ins["path"]})
            path = ins["path"]
        tune: dict[str, Any] = {**lease_ttls(ins), "options": ins.get("options", {})}
        if olds.get("description") != ins.get("description"):
            tune["description"] = ins.get("description", "")
        p.vault("POST", f"sys/mounts/{path}/tune", tune)
        return self.read(p, path, ins) or dict(ins)

    def read(self, p, id_, props):  # readMount: type, options, TTLs, accessor from Vault; missing -> dropped
        found = absent(p, "GET", f"sys/mounts/{id_}")
        return None if found is None else {**props, "path": id_, **mount_state(found)}

    def delete(self, p, id_, props):  # mountDelete: unmount the ID's path
        p.vault("DELETE", f"sys/mounts/{id_}")


class SecretV2(Kind):
    """vault/resource_kv_secret_v2.go (terraform-provider-vault v5.11.0)."""

    replace_on = ("mount", "name")
    computed = ("path", "data", "metadata")

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
        # The mount and name come from the ID (getKVV2SecretMountFromPath / ...NameFromPath), so an
        # import by ID alone is whole; data_json is never read back.
        mount, _, name = id_.partition("/data/")
        return {**props, "mount": mount, "name": name, "path": id_, "data": {},
                "metadata": metadata(found.get("data", {}).get("metadata") or {})}

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
        # stays in state (empty text) and the next `up` writes it again. The name is the ID.
        found = absent(p, "GET", f"sys/policies/acl/{id_}")
        return {**props, "name": id_, "policy": (found or {}).get("data", {}).get("policy", "")}

    def delete(self, p, id_, props):
        p.vault("DELETE", f"sys/policies/acl/{id_}")


class AuthBackend(Kind):
    """vault/resource_auth_backend.go (v5.11.0): a path change is a remount (util.Remount), not a replacement."""

    replace_on = ("type", "local")
    computed = ("accessor",)

    def check(self, ins):  # provider.ValidateNoLeadingTrailingSlashes on `path`
        path = ins.get("path")
        if isinstance(path, str) and path != UNKNOWN and (path.startswith("/") or path.endswith("/")):
            return [f"path: cannot write to a path ending in '/' or starting with '/': {path!r}"]
        return []

    def create(self, p, ins):  # authBackendWrite: path defaults to the type
        ins = {**ins, "path": ins.get("path") or ins["type"]}
        p.vault("POST", f"sys/auth/{ins['path']}", {"type": ins["type"], "description": ins.get("description", ""),
                                                    "local": ins.get("local", False)})
        return ins["path"], self.read(p, ins["path"], ins) or ins

    def update(self, p, id_, olds, ins):
        # authBackendUpdate -> util.Remount: `sys/remount` of auth/<old> to auth/<new>; the engine keeps the
        # old ID (pulumi/pulumi#3729). A changed description is tuned.
        ins = {**ins, "path": ins.get("path") or ins["type"]}
        old = olds.get("path") or id_
        if old != ins["path"]:
            p.vault("POST", "sys/remount", {"from": f"auth/{old}", "to": f"auth/{ins['path']}"})
        if olds.get("description") != ins.get("description"):
            p.vault("POST", f"sys/auth/{ins['path']}/tune", {"description": ins.get("description", "")})
        return self.read(p, ins["path"], ins) or ins

    def read(self, p, id_, props):  # authBackendRead: type, description, local, accessor; missing -> dropped
        found = absent(p, "GET", f"sys/auth/{id_}")
        if found is None:
            return None
        state = mount_state(found)
        return {**props, "path": id_, **{k: state[k] for k in ("type", "description", "local", "accessor")}}

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

    def update(self, p, id_, olds, ins):
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
        # The backend and role name come from the ID, auth/<backend>/role/<name> (an import is whole).
        backend, _, role = id_.removeprefix("auth/").rpartition("/role/")
        return {**props, "backend": backend, "roleName": role,
                **{field: data[api] for field, api in self.FIELDS.items() if api in data}}

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



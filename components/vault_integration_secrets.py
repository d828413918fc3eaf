"""`VaultIntegrationSecrets`: the Vault half of an environment.

Owns: the KV v2 mount (when the stack creates it), one KV v2 secret per key whose source is
`config` or `generated`, an existence check for each `external` key (never written, never
deleted), the read-only policy over exactly the declared keys, the Kubernetes-auth role that binds
it to the External Secrets Operator's service account, and -- where the stack manages it -- the
Kubernetes auth method itself.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pulumi

from components.kube_objects import CLUSTER_ROLE_BINDING, CONFIG_MAP, ExistingObject, KubeObject
from components.vault_objects import (
    AUTH_BACKEND,
    AUTH_BACKEND_CONFIG,
    AUTH_BACKEND_ROLE,
    KV_LIST_V2,
    KV_SUBKEYS_V2,
    MOUNT,
    POLICY,
    RANDOM_PASSWORD,
    SECRET_V2,
    BridgedResource,
    invoke,
)
from config.errors import ConfigError
from config.model import VaultKey
from config.naming import CLUSTER_CA_CONFIGMAP, COMPONENT_TYPE_PREFIX

GENERATED_LENGTH = 32


@dataclass(frozen=True)
class KubernetesAuthArgs:
    """The auth method the program enables and configures (local), and who may review tokens."""

    kubernetes_host: str
    token_review_binding: str
    labels: dict[str, str]


@dataclass(frozen=True)
class VaultIntegrationSecretsArgs:
    keys: tuple[VaultKey, ...]
    policy_name: str
    policy: str  # HCL
    role_name: str
    auth_mount: str
    service_account: str
    service_account_namespace: str
    audience: str
    token_ttl_seconds: int
    protect: bool
    create_mount: str | None  # the KV v2 mount to create, or None when it exists
    manage_auth: KubernetesAuthArgs | None
    secret_value: Callable[[str, str], str]  # (key, property) -> value of a `config` key
    generated_value: Callable[[VaultKey, str, str], str]  # (key, property, random) -> value
    external_key_problem: Callable[[VaultKey, Iterable[str] | None], str | None]


class VaultIntegrationSecrets(pulumi.ComponentResource):
    policy_name: pulumi.Output[str]
    role_name: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: VaultIntegrationSecretsArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(f"{COMPONENT_TYPE_PREFIX}VaultIntegrationSecrets", name, None, opts)
        mount_deps: list[pulumi.Resource] = []
        if args.create_mount:
            mount_deps.append(
                BridgedResource(
                    MOUNT,
                    "kv",
                    {
                        "path": args.create_mount,
                        "type": "kv",
                        "options": {"version": "2"},
                        "description": "KV v2 mount of the integration-test secrets",
                    },
                    opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
                )
            )
        self._listings: dict[tuple[str, str], pulumi.Output[list[str]]] = {}
        checks = [self._check_external(key, args, mount_deps) for key in args.keys if key.source == "external"]
        for key in args.keys:
            if key.source != "external":
                self._write(key, args, mount_deps)

        policy = BridgedResource(
            POLICY, "eso-read", {"name": args.policy_name, "policy": args.policy}, pulumi.ResourceOptions(parent=self)
        )
        role_deps = [self._auth_method(args.manage_auth, args)] if args.manage_auth else []
        role = BridgedResource(
            AUTH_BACKEND_ROLE,
            "eso",
            {
                "backend": args.auth_mount,
                "roleName": args.role_name,
                "boundServiceAccountNames": [args.service_account],
                "boundServiceAccountNamespaces": [args.service_account_namespace],
                "audience": args.audience,
                "tokenPolicies": [policy.output("name")],
                "tokenTtl": args.token_ttl_seconds,
                "tokenMaxTtl": args.token_ttl_seconds * 2,
                # ESO's tokens get the read policy alone, not Vault's `default` one as well.
                "tokenNoDefaultPolicy": True,
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=role_deps),
        )
        self.policy_name = policy.output("name")
        self.role_name = role.output("roleName")
        self.register_outputs(
            {
                "policyName": self.policy_name,
                "roleName": self.role_name,
                "keyPaths": {k.name: k.full_path for k in args.keys},
                # The existence checks of external keys: a failed one fails the preview.
                "externalKeysChecked": pulumi.Output.all(*checks).apply(lambda r: len(r)),
            }
        )

    def _check_external(
        self, key: VaultKey, args: VaultIntegrationSecretsArgs, deps: list[pulumi.Resource]
    ) -> pulumi.Output[bool]:
        # The real Vault provider crashes (a nil dereference in kvSecretSubkeysDataSourceRead,
        # vault/data_source_kv_subkeys_v2.go) when asked for the subkeys of an absent key, while its
        # list data source fails cleanly ("no secrets found at ...": kvListRequest, vault/kv_helpers.go).
        # So the key's folder is listed first, and only a listed key's property names are read.
        folder, _, leaf = key.path.rpartition("/")
        listing = self._folder_listing(key.mount, folder, deps)

        def properties(names: list[str] | None) -> pulumi.Output[bool]:
            if leaf not in (names or []):
                raise ConfigError(args.external_key_problem(key, None) or key.full_path)
            found = invoke(KV_SUBKEYS_V2, {"mount": key.mount, "name": key.path},
                           pulumi.InvokeOutputOptions(parent=self, depends_on=deps))
            # dataJson keeps the subkeys whose values are null; the `data` map may drop them.
            return found.apply(lambda result: self._usable(key, args, result.get("dataJson")))

        return listing.apply(properties)

    def _folder_listing(self, mount: str, folder: str, deps: list[pulumi.Resource]) -> pulumi.Output[list[str]]:
        """The key names in one folder of the mount, listed once for all the keys that live there."""
        if (mount, folder) not in self._listings:
            listed = invoke(KV_LIST_V2, {"mount": mount, "name": folder},
                            pulumi.InvokeOutputOptions(parent=self, depends_on=deps))
            self._listings[(mount, folder)] = listed.apply(lambda result: list(result.get("names") or []))
        return self._listings[(mount, folder)]

    @staticmethod
    def _usable(key: VaultKey, args: VaultIntegrationSecretsArgs, data_json: str | None) -> bool:
        problem = args.external_key_problem(key, json.loads(data_json or "{}"))
        if problem:
            raise ConfigError(problem)
        return True

    def _write(self, key: VaultKey, args: VaultIntegrationSecretsArgs, deps: list[pulumi.Resource]) -> None:
        values: dict[str, pulumi.Input[str]] = {}
        # One random value per key: every property is made from it (catalog generatedFormats), so a
        # key's URL, username and password agree with each other.
        password = BridgedResource(
            RANDOM_PASSWORD, f"{key.name}-generated", {"length": GENERATED_LENGTH, "special": False},
            pulumi.ResourceOptions(parent=self),
        ).output("result") if key.source == "generated" else None
        for prop in key.properties:
            if password is not None:
                values[prop] = password.apply(functools.partial(args.generated_value, key, prop))
            else:
                values[prop] = pulumi.Output.secret(args.secret_value(key.name, prop))
        BridgedResource(
            SECRET_V2,
            key.name,
            {"mount": key.mount, "name": key.path, "dataJson": pulumi.Output.json_dumps(values)},
            # Retained when it leaves the program: a key switched to `external` keeps the value its
            # owner now writes, and `destroy` never takes a credential another team may rely on.
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.protect, depends_on=deps, additional_secret_outputs=["dataJson", "data"],
                retain_on_delete=True,
            ),
        )

    def _auth_method(self, auth: KubernetesAuthArgs, args: VaultIntegrationSecretsArgs) -> pulumi.Resource:
        backend = BridgedResource(
            AUTH_BACKEND,
            "kubernetes",
            {"type": "kubernetes", "path": args.auth_mount,
             "description": "Kubernetes auth for the External Secrets Operator"},
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        # Vault checks each login with the TokenReview API. No long-lived reviewer token is kept:
        # Vault reviews the login JWT with itself, so the service account ESO presents may call
        # TokenReview (system:auth-delegator) and nothing else.
        reviewer = KubeObject(
            CLUSTER_ROLE_BINDING,
            "vault-token-review",
            {
                "metadata": {"name": auth.token_review_binding, "labels": auth.labels},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": "system:auth-delegator"},
                "subjects": [{"kind": "ServiceAccount", "name": args.service_account,
                              "namespace": args.service_account_namespace}],
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        # The API server's CA as every namespace sees it (published by the controller manager).
        cluster_ca = ExistingObject(
            CONFIG_MAP, "cluster-ca", CLUSTER_CA_CONFIGMAP, ("binaryData", "data", "immutable", "metadata"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return BridgedResource(
            AUTH_BACKEND_CONFIG,
            "kubernetes",
            {
                "backend": backend.output("path"),
                "kubernetesHost": auth.kubernetes_host,
                "kubernetesCaCert": cluster_ca.data.apply(lambda d: (d or {}).get("ca.crt", "")),
                "disableLocalCaJwt": True,
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[reviewer]),
        )

"""`VaultIntegrationSecrets`: the Vault half of an environment.

Owns: the KV v2 mount (when the stack creates it), one KV v2 secret per key whose source is
`config` or `generated`, an existence check for each `external` key (never written, never
deleted), the read-only policy over exactly the declared keys, the Kubernetes-auth role that binds
it to the External Secrets Operator's service account, and -- where the stack manages it -- the
Kubernetes auth method itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_random as random
import pulumi_vault as vault
from pulumi_kubernetes.core.v1 import ConfigMap
from pulumi_kubernetes.meta.v1 import ObjectMetaArgs
from pulumi_kubernetes.rbac.v1 import ClusterRoleBinding, RoleRefArgs, SubjectArgs

from config.credentials import GENERATED_LENGTH
from config.errors import ConfigError
from config.naming import CLUSTER_CA_CONFIGMAP, COMPONENT_TYPE_PREFIX
from config.vault_keys import ExternalKeyCheck, VaultKey, VaultKeyWrite


@dataclass(frozen=True)
class KubernetesAuthArgs:
    """The auth method the program enables and configures (local), and who may review tokens."""

    kubernetes_host: str
    token_review_binding: str
    labels: dict[str, str]


@dataclass(frozen=True)
class VaultIntegrationSecretsArgs:
    keys: tuple[VaultKey, ...]  # every key the policy covers, in the order of the outputs
    writes: tuple[VaultKeyWrite, ...]  # the keys this program writes, with their values decided
    external_checks: tuple[ExternalKeyCheck, ...]  # the keys it only checks
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
    # False for a review stack: ESO's policy and role are the trusted provisioner's, never the pull
    # request's code (config/review_access.py); the program only names them.
    manage_eso_access: bool = True


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
                vault.Mount(
                    "kv",
                    path=args.create_mount,
                    type="kv",
                    options={"version": "2"},
                    description="KV v2 mount of the integration-test secrets",
                    opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
                )
            )
        self._listings: dict[tuple[str, str], pulumi.Output[list[str]]] = {}
        checks = [self._check_external(check, mount_deps) for check in args.external_checks]
        for write in args.writes:
            self._write(write, args.protect, mount_deps)

        self.policy_name, self.role_name = pulumi.Output.from_input(args.policy_name), pulumi.Output.from_input(
            args.role_name)
        if args.manage_eso_access:
            policy = vault.Policy(
                "eso-read", name=args.policy_name, policy=args.policy, opts=pulumi.ResourceOptions(parent=self)
            )
            role_deps = [self._auth_method(args.manage_auth, args)] if args.manage_auth else []
            role = vault.kubernetes.AuthBackendRole(
                "eso",
                backend=args.auth_mount,
                role_name=args.role_name,
                bound_service_account_names=[args.service_account],
                bound_service_account_namespaces=[args.service_account_namespace],
                audience=args.audience,
                token_policies=[policy.name],
                token_ttl=args.token_ttl_seconds,
                token_max_ttl=args.token_ttl_seconds * 2,
                # ESO's tokens get the read policy alone, not Vault's `default` one as well.
                token_no_default_policy=True,
                opts=pulumi.ResourceOptions(parent=self, depends_on=role_deps),
            )
            self.policy_name = policy.name
            self.role_name = role.role_name
        self.register_outputs(
            {
                "policyName": self.policy_name,
                "roleName": self.role_name,
                "keyPaths": {k.name: k.full_path for k in args.keys},
                # The existence checks of external keys: a failed one fails the preview.
                "externalKeysChecked": pulumi.Output.all(*checks).apply(lambda r: len(r)),
            }
        )

    def _check_external(self, check: ExternalKeyCheck, deps: list[pulumi.Resource]) -> pulumi.Output[bool]:
        # The real Vault provider crashes (a nil dereference in kvSecretSubkeysDataSourceRead,
        # vault/data_source_kv_subkeys_v2.go) when asked for the subkeys of an absent key, while its
        # list data source fails cleanly ("no secrets found at ...": kvListRequest, vault/kv_helpers.go).
        # So the key's folder is listed first, and only a listed key's property names are read.
        key = check.key
        folder, _, leaf = key.path.rpartition("/")
        listing = self._folder_listing(key.mount, folder, deps)

        def properties(names: list[str]) -> pulumi.Output[bool]:
            if leaf not in names:
                raise ConfigError(check.problem(None) or key.full_path)
            found = vault.kv.get_secret_subkeys_v2_output(
                mount=key.mount, name=key.path, opts=pulumi.InvokeOutputOptions(parent=self, depends_on=deps)
            )
            # data_json keeps the subkeys whose values are null; the `data` map may drop them.
            return found.data_json.apply(lambda data_json: self._usable(check, data_json))

        return listing.apply(properties)

    def _folder_listing(self, mount: str, folder: str, deps: list[pulumi.Resource]) -> pulumi.Output[list[str]]:
        """The key names in one folder of the mount, listed once for all the keys that live there."""
        if (mount, folder) not in self._listings:
            listed = vault.kv.get_secrets_list_v2_output(
                mount=mount, name=folder, opts=pulumi.InvokeOutputOptions(parent=self, depends_on=deps)
            )
            self._listings[(mount, folder)] = listed.names.apply(lambda names: list(names or []))
        return self._listings[(mount, folder)]

    @staticmethod
    def _usable(check: ExternalKeyCheck, data_json: str | None) -> bool:
        problem = check.problem(json.loads(data_json or "{}"))
        if problem:
            raise ConfigError(problem)
        return True

    def _write(self, write: VaultKeyWrite, protect: bool, deps: list[pulumi.Resource]) -> None:
        key = write.key
        values: dict[str, pulumi.Input[str]] = {
            prop: pulumi.Output.secret(value.get_secret_value()) for prop, value in write.config_values.items()
        }
        if write.generated:
            # One random value per key: every property is made from it, so a key's URL, username and
            # password agree with each other.
            password = random.RandomPassword(
                f"{key.name}-generated", length=GENERATED_LENGTH, special=False,
                opts=pulumi.ResourceOptions(parent=self),
            ).result
            for prop, made in write.generated.items():
                values[prop] = password.apply(made.value)
        vault.kv.SecretV2(
            key.name,
            mount=key.mount,
            name=key.path,
            data_json=pulumi.Output.json_dumps(values),  # the generated class makes it a secret input
            # Retained when it leaves the program: a key switched to `external` keeps the value its
            # owner now writes, and `destroy` never takes a credential another team may rely on.
            opts=pulumi.ResourceOptions(
                parent=self, protect=protect, depends_on=deps, retain_on_delete=True,
            ),
        )

    def _auth_method(self, auth: KubernetesAuthArgs, args: VaultIntegrationSecretsArgs) -> pulumi.Resource:
        backend = vault.AuthBackend(
            "kubernetes",
            type="kubernetes",
            path=args.auth_mount,
            description="Kubernetes auth for the External Secrets Operator",
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        # Vault checks each login with the TokenReview API. No long-lived reviewer token is kept:
        # Vault reviews the login JWT with itself, so the service account ESO presents may call
        # TokenReview (system:auth-delegator) and nothing else.
        reviewer = ClusterRoleBinding(
            "vault-token-review",
            metadata=ObjectMetaArgs(name=auth.token_review_binding, labels=auth.labels),
            role_ref=RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="ClusterRole",
                                 name="system:auth-delegator"),
            subjects=[SubjectArgs(kind="ServiceAccount", name=args.service_account,
                                  namespace=args.service_account_namespace)],
            opts=pulumi.ResourceOptions(parent=self),
        )
        # The API server's CA as every namespace sees it (published by the controller manager).
        cluster_ca = ConfigMap.get("cluster-ca", CLUSTER_CA_CONFIGMAP, opts=pulumi.ResourceOptions(parent=self))
        return vault.kubernetes.AuthBackendConfig(
            "kubernetes",
            backend=backend.path,
            kubernetes_host=auth.kubernetes_host,
            kubernetes_ca_cert=cluster_ca.data.apply(lambda d: (d or {}).get("ca.crt", "")),
            disable_local_ca_jwt=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[reviewer]),
        )

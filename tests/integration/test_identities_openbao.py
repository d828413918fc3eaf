"""The identities' Vault policies on a real OpenBao: they parse, a token of each holds exactly its
grants (as the preflight asks: sys/capabilities-self), and the deploy token can write ESO's policy
and role only as the program declares them -- checked by trying, with the identities' own tokens."""

from __future__ import annotations

import hvac
import hvac.exceptions
import pytest

from clients.vault import HvacVaultReader
from config.identities import DEPLOY, PREVIEW, identity
from config.loading import load_settings
from config.model import Settings
from deploy import permissions
from offline.harness import Evaluation
from tests.conftest import canary_config, ensure_kubernetes_auth, evaluate_fixture, fixture_project

pytestmark = pytest.mark.vault


@pytest.fixture(scope="module")
def canary() -> tuple[Settings, Evaluation]:
    """Staging with every key written by the program: the widest deploy policy there is."""
    config, secret_keys = canary_config("staging")
    settings = load_settings(project_dir=fixture_project(), environment="staging", config=config,
                             secret_keys=secret_keys)
    return settings, evaluate_fixture("staging", config=config, secret_keys=secret_keys)


@pytest.fixture(scope="module")
def tokens(openbao: dict[str, str], canary: tuple[Settings, Evaluation]) -> dict[str, hvac.Client]:
    root = hvac.Client(url=openbao["addr"], token=openbao["token"])
    ensure_kubernetes_auth(root)
    clients = {}
    for role in (DEPLOY, PREVIEW):
        ident = identity(canary[0], role)
        root.sys.create_or_update_acl_policy(name=ident.name, policy=ident.vault_policy())
        token = root.auth.token.create_orphan(policies=[ident.name], no_default_policy=True, ttl="10m")
        clients[role] = hvac.Client(url=openbao["addr"], token=token["auth"]["client_token"])
    return clients


def refused(attempt) -> bool:
    try:
        attempt()
    except hvac.exceptions.Forbidden:
        return True
    return False


@pytest.mark.parametrize("role", [DEPLOY, PREVIEW])
def test_each_identitys_token_holds_exactly_what_the_preflight_asks_of_it(openbao, canary, tokens, role) -> None:
    reader = HvacVaultReader(openbao["addr"], tokens[role].token)
    assert permissions.missing_in_vault(identity(canary[0], role), reader.capabilities) == []


def test_the_preview_token_lacks_every_write_of_the_deploy_identity(openbao, canary, tokens) -> None:
    reader = HvacVaultReader(openbao["addr"], tokens[PREVIEW].token)
    missing = permissions.missing_in_vault(identity(canary[0], DEPLOY), reader.capabilities)
    said = {m.permission for m in missing}
    assert f"`update` on sys/policies/acl/{canary[0].vault_policy_name}" in said
    # OpenBao agrees with the model: what it refuses the preview token is exactly what only deploy holds.
    def held(role: str) -> set[str]:
        return {f"`{c}` on {g.path}" for g in identity(canary[0], role).vault for c in g.capabilities}

    assert said == held(DEPLOY) - held(PREVIEW)


def test_the_deploy_token_writes_esos_policy_and_role_only_as_the_program_declares(canary, tokens) -> None:
    settings, ev = canary
    deploy = tokens[DEPLOY]
    policy = ev.of_type("vault:index/policy:Policy")[0].inputs
    deploy.sys.create_or_update_acl_policy(name=policy["name"], policy=policy["policy"])
    assert refused(lambda: deploy.sys.create_or_update_acl_policy(name=policy["name"], policy='path "*" {}'))
    assert refused(lambda: deploy.sys.create_or_update_acl_policy(name="integration-tests-prod-read", policy=policy["policy"]))
    role = ev.of_type("vault:kubernetes/authBackendRole:AuthBackendRole")[0].inputs
    path = f"auth/{role['backend']}/role/{role['roleName']}"
    body = {"bound_service_account_names": role["boundServiceAccountNames"],
            "bound_service_account_namespaces": role["boundServiceAccountNamespaces"],
            "token_policies": role["tokenPolicies"], "audience": role["audience"]}
    deploy.write(path, **body)
    assert refused(lambda: deploy.write(path, **{**body, "token_policies": [*role["tokenPolicies"], "root"]}))
    assert refused(lambda: deploy.write(path, **{**body, "bound_service_account_names": ["default"]}))
    assert refused(lambda: deploy.write(f"auth/{role['backend']}/role/another", **body))
    key = settings.vault_key_writes[0].key
    deploy.secrets.kv.v2.create_or_update_secret(path=key.path, mount_point=key.mount, secret={"x": "canary"})
    assert refused(lambda: deploy.secrets.kv.v2.create_or_update_secret(
        path="integration/prod/graph", mount_point=key.mount, secret={"x": "y"}))


def test_the_deploy_token_cannot_widen_esos_role_through_any_other_parameter(canary, tokens) -> None:
    """The deprecated `policies`, a namespace selector, a CIDR binding or any parameter the program
    does not send: each refused, alone, beside the declared ones (`"*" = []` no longer admits them)."""
    deploy = tokens[DEPLOY]
    role = canary[1].of_type("vault:kubernetes/authBackendRole:AuthBackendRole")[0].inputs
    path = f"auth/{role['backend']}/role/{role['roleName']}"
    body = {"bound_service_account_names": role["boundServiceAccountNames"],
            "bound_service_account_namespaces": role["boundServiceAccountNamespaces"],
            "token_policies": role["tokenPolicies"], "audience": role["audience"], "token_ttl": int(role["tokenTtl"]),
            "token_max_ttl": int(role["tokenMaxTtl"]), "token_no_default_policy": True}
    deploy.write(path, **body)
    for widening in ({"policies": ["another-teams-read"]}, {"bound_service_account_namespace_selector": "{}"},
                     {"token_bound_cidrs": ["0.0.0.0/0"]}, {"token_no_default_policy": False},
                     {"audience": "another"}, {"alias_name_source": "serviceaccount_name"},
                     {"bound_service_account_names": ["*"]}):
        assert refused(lambda widening=widening: deploy.write(path, **{**body, **widening})), widening


def test_a_review_stacks_token_holds_its_deploy_grants_and_writes_no_policy_role_or_other_stacks_path(
        openbao, review_project) -> None:
    """The policy review-grant gives a pull request's JWT role (config/review_access.py) on a real
    OpenBao: everything its deploy needs, and no policy, no auth role, no path of staging or another
    pull request, no other transit key."""
    from config.loading import stack_settings
    from config.review_access import grant
    from deploy.review_stack_file import write_stack_file

    root = hvac.Client(url=openbao["addr"], token=openbao["token"])
    write_stack_file("pr-7", project=review_project)
    settings = stack_settings("pr-7", project_dir=review_project)
    plan = grant(settings)
    root.sys.create_or_update_acl_policy(name=plan.deploy_policy_name, policy=plan.deploy_policy)
    token = root.auth.token.create_orphan(policies=[plan.deploy_policy_name], no_default_policy=True, ttl="10m")
    pr7 = hvac.Client(url=openbao["addr"], token=token["auth"]["client_token"])
    reader = HvacVaultReader(openbao["addr"], pr7.token)
    assert permissions.missing_in_vault(identity(settings, DEPLOY), reader.capabilities) == []
    own = settings.vault_key_writes[0].key
    pr7.secrets.kv.v2.create_or_update_secret(path=own.path, mount_point=own.mount, secret={"x": "canary"})
    # On the keys themselves, not only the grants' own paths: a more specific path shadows a folder's glob.
    for key in settings.vault_keys:
        held = set(pr7.sys.get_capabilities(paths=[f"{key.mount}/metadata/{key.path}"])["capabilities"])
        assert "read" in held, key.path  # `make run`'s readiness gate reads every key's versions
    for attempt in (
        lambda: pr7.sys.create_or_update_acl_policy(name=plan.deploy_policy_name, policy='path "*" {}'),
        lambda: pr7.sys.create_or_update_acl_policy(name=plan.read_policy_name, policy=plan.read_policy),
        lambda: pr7.write(f"auth/kubernetes/role/{plan.eso_role_name}", bound_service_account_names=["x"],
                          bound_service_account_namespaces=["x"]),
        lambda: pr7.write(f"auth/jwt/role/{plan.jwt_role_name}", role_type="jwt", user_claim="sub"),
        lambda: pr7.read(f"auth/jwt/role/{plan.jwt_role_name}"),
        lambda: pr7.secrets.kv.v2.create_or_update_secret(path=own.path.replace("pr-7", "pr-8"),
                                                          mount_point=own.mount, secret={"x": "y"}),
        lambda: pr7.secrets.kv.v2.read_secret_version(path=own.path.replace("pr-7", "staging"),
                                                      mount_point=own.mount, raise_on_deleted_version=True),
        lambda: pr7.write("transit/encrypt/testinfra-deploy-pr-8", plaintext="eA=="),
        lambda: pr7.write("transit/decrypt/testinfra-deploy-staging", ciphertext="vault:v1:x"),
    ):
        assert refused(attempt)

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

pytestmark = [pytest.mark.vault, pytest.mark.xdist_group("openbao")]


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


def test_the_review_identity_holds_every_review_stacks_grants_and_no_write_of_staging(openbao, tmp_path) -> None:
    """CI's one review credential, on a real OpenBao's globs: pr-7's and pr-123456's deploy grants are
    all held, staging's writes none."""
    import shutil

    from config.identities import review_identity
    from config.loading import stack_settings
    from deploy.review import write_stack_file
    from tests.conftest import PROJECT_DIR

    for name in ("Pulumi.yaml", "Pulumi.review.yaml", "Pulumi.staging.yaml", "catalog.yaml"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    shutil.copytree(PROJECT_DIR / "charts", tmp_path / "charts")
    root = hvac.Client(url=openbao["addr"], token=openbao["token"])
    review = review_identity(stack_settings("review", project_dir=tmp_path))
    root.sys.create_or_update_acl_policy(name=review.name, policy=review.vault_policy())
    token = root.auth.token.create_orphan(policies=[review.name], no_default_policy=True, ttl="10m")
    reader = HvacVaultReader(openbao["addr"], token["auth"]["client_token"])
    for stack in ("pr-7", "pr-123456"):
        write_stack_file(stack, project=tmp_path)
        assert permissions.missing_in_vault(identity(stack_settings(stack, project_dir=tmp_path), DEPLOY),
                                            reader.capabilities) == []
    staging = identity(stack_settings("staging", project_dir=tmp_path), DEPLOY)
    missing = {m.permission for m in permissions.missing_in_vault(staging, reader.capabilities)}
    writes = {f"`{c}` on {g.path}" for g in staging.vault for c in g.capabilities if c in ("create", "update", "delete")
              and g.path != "sys/capabilities-self"}
    assert writes and writes <= missing

"""Reading Vault for `make verify` and the preflight: which properties a KV v2 key has.

Owns: the hvac client per worker thread (token, or a Kubernetes-auth login as the ESO role), the
subkeys endpoint (property names, no values) and a data read, and turning every failure -- refused
token, unreachable or misbehaving server -- into one EndpointError naming what to check.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from config.errors import EnvironmentProblem


class EndpointError(EnvironmentProblem):
    """An endpoint cannot be used at all (unreachable, bad credentials, misbehaving)."""


class VaultReader(Protocol):
    def properties(self, mount: str, path: str) -> set[str] | None:
        """Property names of a KV v2 key (never values), or None when the key does not exist."""

    def subkeys(self, mount: str, path: str) -> set[str] | None:
        """The same, from the subkeys endpoint: needs no right to read the values."""


class HvacVaultReader:
    """Vault through hvac; every way a server can misbehave becomes one EndpointError (exit 2)."""

    def __init__(self, address: str, token: str | None, *, role: str | None = None,
                 auth_mount: str = "kubernetes", jwt: str | None = None,
                 address_from: str = "vaultAddress", timeout: float = 10, ca: str | None = None,
                 login_method: str = "kubernetes") -> None:
        import hvac

        self._hvac = hvac
        self.address = address
        self.address_from = address_from
        self.timeout = timeout
        # A CA bundle given (the review cleanup's VAULT_CACERT); else hvac's own default, which reads
        # VAULT_CACERT / VAULT_CAPATH from the environment as the Vault CLI does.
        self.verify: str | None = ca or None
        self.client = self._new_client()
        self._local = threading.local()
        self.logged_in_as_role = False
        self.token_info: dict[str, Any] = {}  # the token's own lookup: its TTL, where it was made
        if token:
            self.client.token = token
            found = self._call(self.client.auth.token.lookup_self, "the token lookup", login=True)
            self.token_info = dict(found.get("data") or {})
        elif jwt and role and login_method == "jwt":
            self._call(lambda: self.client.auth.jwt.jwt_login(role=role, jwt=jwt, path=auth_mount),
                       f"the JWT login to role {role}", login=True)
            self.logged_in_as_role = True
        elif jwt and role:
            self._call(lambda: self.client.auth.kubernetes.login(role=role, jwt=jwt, mount_point=auth_mount),
                       "the Kubernetes-auth login", login=True)
            self.logged_in_as_role = True
        else:
            raise EndpointError("Vault: no credentials: set VAULT_TOKEN, or pass --vault-jwt-file for the ESO role")

    def _new_client(self) -> Any:
        # No redirects: a redirect to another host would carry the token there.
        return self._hvac.Client(url=self.address, timeout=self.timeout, allow_redirects=False, verify=self.verify)

    def _thread_client(self) -> Any:
        """One client per worker thread (a requests session is not shared across threads)."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._new_client()
            client.token = self.client.token
        return client

    def _call(self, fn: Callable[[], Any], what: str, *, login: bool = False) -> Any:
        import requests

        errors = self._hvac.exceptions
        try:
            result = fn()
        except errors.InvalidPath:
            if login:
                raise EndpointError(f"Vault at {self.address} has no such auth path for {what}") from None
            return None
        except (errors.Forbidden, errors.Unauthorized, errors.InvalidRequest) as exc:
            if login:
                # Vault's own reason (a claim that does not match, a role that is not there): no secret in it.
                reason = str(exc).split(", on ")[0].strip()[:200]
                raise EndpointError(f"Vault at {self.address} rejected the credentials ({type(exc).__name__}"
                                    + (f": {reason}" if reason else "") + "): get a fresh token (VAULT_TOKEN) with "
                                    "read access to the stack's keys") from None
            raise self._forbidden(what) from None
        except errors.VaultDown:
            raise EndpointError(f"Vault at {self.address} is sealed or not ready (503) during {what}: unseal it, "
                                "or wait for it, and run again") from None
        except errors.RateLimitExceeded:
            raise EndpointError(f"Vault at {self.address} is rate limiting us (429) during {what}: "
                                "run again later") from None
        except errors.VaultError as exc:
            raise EndpointError(f"Vault at {self.address} failed {what} ({type(exc).__name__}): the server is "
                                "misbehaving; check it and run again") from None
        except requests.exceptions.Timeout:
            raise EndpointError(f"Vault at {self.address} did not answer {what} within {self.timeout:g} s: check the server "
                                "or your network") from None
        except requests.exceptions.RequestException as exc:
            raise EndpointError(f"Vault at {self.address} (from {self.address_from}) is unreachable: "
                                f"{type(exc).__name__}; fix {self.address_from}, or your network "
                                "(port-forward for local)") from None
        except ValueError:
            raise EndpointError(f"Vault at {self.address} answered {what} with something that is not Vault's "
                                "JSON: is this address a Vault server?") from None
        if not isinstance(result, dict):
            status = getattr(result, "status_code", "?")
            raise EndpointError(f"Vault at {self.address} answered {what} with HTTP {status} and no JSON body: "
                                "is this address a Vault server (a redirect is not followed)?")
        return result

    def _forbidden(self, what: str) -> EndpointError:
        """403: a missing grant, or a token that expired or was revoked meanwhile -- say which."""
        try:
            self._thread_client().auth.token.lookup_self()
        except Exception:
            return EndpointError(f"Vault token expired or was revoked during {what}: get a fresh VAULT_TOKEN")
        return EndpointError(f"Vault token may not read {what}: give it read on the stack's keys' "
                             "<mount>/subkeys/<path> (ESO's role reads <mount>/data/<path>)")

    def capabilities(self, paths: list[str]) -> dict[str, set[str]]:
        """What this token may do on each path (sys/capabilities-self: one request for all)."""
        client = self._thread_client()
        resp = self._call(lambda: client.adapter.post("/v1/sys/capabilities-self", json={"paths": paths}),
                          "sys/capabilities-self", login=True)
        data = (resp or {}).get("data") or resp or {}
        return {path: set(data.get(path) or ()) for path in paths}

    def properties(self, mount: str, path: str) -> set[str] | None:
        client = self._thread_client()
        resp = self._call(lambda: client.secrets.kv.v2.read_secret_version(
            path=path, mount_point=mount, raise_on_deleted_version=True), f"{mount}/{path}")
        return None if resp is None else set((resp.get("data") or {}).get("data") or {})

    def metadata(self, mount: str, path: str) -> dict[str, Any] | None:
        """A KV v2 key's metadata (versions, when each was written; never a value), or None if absent."""
        client = self._thread_client()
        resp = self._call(lambda: client.secrets.kv.v2.read_secret_metadata(path=path, mount_point=mount),
                          f"{mount}/metadata/{path}")
        return None if resp is None else dict(resp.get("data") or {})

    def role_exists(self, auth_mount: str, role: str) -> bool | None:
        """Whether a Kubernetes-auth role exists; None when this token may not tell."""
        client = self._thread_client()
        try:
            resp = self._call(lambda: client.auth.kubernetes.read_role(name=role, mount_point=auth_mount),
                              f"auth/{auth_mount}/role/{role}")
        except EndpointError:
            return None
        return resp is not None

    def _no_content(self, fn: Callable[[], Any]) -> Callable[[], dict[str, Any]]:
        """A write Vault answers with 204 (or 200): anything else, a redirect included, is an error --
        hvac hands a 3xx back as a response, which would otherwise pass for done."""
        def call() -> dict[str, Any]:
            response = fn()
            status = getattr(response, "status_code", 204)
            if status not in (200, 204):
                raise EndpointError(f"Vault at {self.address} answered with HTTP {status} (a redirect is not "
                                    f"followed: the token goes only to {self.address_from})")
            return {}
        return call

    def destroy_versions(self, mount: str, path: str, versions: list[int]) -> None:
        """Destroys these versions' values for good (the metadata keeps that they existed)."""
        client = self._thread_client()
        self._call(self._no_content(lambda: client.secrets.kv.v2.destroy_secret_versions(
            path=path, versions=versions, mount_point=mount)), f"{mount}/destroy/{path}")

    def delete_key(self, mount: str, path: str) -> None:
        """A KV v2 key with every version and its metadata."""
        client = self._thread_client()
        self._call(self._no_content(lambda: client.secrets.kv.v2.delete_metadata_and_all_versions(
            path=path, mount_point=mount)), f"{mount}/metadata/{path}")

    def delete_policy(self, name: str) -> None:
        client = self._thread_client()
        self._call(self._no_content(lambda: client.sys.delete_acl_policy(name)), f"sys/policies/acl/{name}")

    def delete_role(self, auth_mount: str, role: str) -> None:
        client = self._thread_client()
        self._call(self._no_content(lambda: client.delete(f"auth/{auth_mount}/role/{role}")),
                   f"auth/{auth_mount}/role/{role}")

    def subkeys(self, mount: str, path: str) -> set[str] | None:
        client = self._thread_client()
        resp = self._call(lambda: client.adapter.get(f"/v1/{mount}/subkeys/{path}"), f"{mount}/subkeys/{path}")
        return None if resp is None else set((resp.get("data") or {}).get("subkeys") or {})

    # The provisioner's calls (deploy/review_access.py): any path, with the same error handling.
    def write(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        client = self._thread_client()

        def written() -> dict[str, Any]:
            answer = client.write_data(path, data=body)
            return answer if isinstance(answer, dict) else self._no_content(lambda: answer)()

        return dict(self._call(written, path))

    def read(self, path: str) -> dict[str, Any] | None:
        client = self._thread_client()
        found = self._call(lambda: client.read(path) or {}, path)  # hvac: None for a 404
        return dict(found) if found else None

    def list(self, path: str) -> list[str]:
        client = self._thread_client()
        found = self._call(lambda: client.list(path) or {}, path)
        return list(((found or {}).get("data") or {}).get("keys") or [])

    def delete(self, path: str) -> None:
        client = self._thread_client()
        self._call(self._no_content(lambda: client.delete(path)), path)

    @property
    def token(self) -> str:
        return str(self.client.token)

"""The stand-in for the `vault` Pulumi provider, on the local environment only.

Why: the module proxy this project reaches refuses every release of
`github.com/pulumi/pulumi-vault/provider/v7` and every commit of terraform-provider-vault tried
(tools/toolchain/toolchain.toml, [unavailable]), so the real plugin cannot be built here. Without it the
real engine cannot run the program at all. The stand-in is a real Pulumi resource-provider plugin
(the engine's gRPC protocol, installed with `pulumi plugin install`) that implements exactly the
resources and functions the program uses, against the real OpenBao HTTP API, following the real
provider's behaviour where the program can notice it (tools/toolchain/standin_kinds.py):

    index/mount:Mount, kv/secretV2:SecretV2, index/policy:Policy, index/authBackend:AuthBackend,
    kubernetes/authBackendConfig, kubernetes/authBackendRole, kv/getSecretSubkeysV2, kv/getSecretsListV2

It stands in for the plugin only; the program's Vault registrations (pulumi_vault's requests), the engine, the kubernetes
and random providers (both real, built by `make e2e-tools`), the API server, OpenBao and ESO are all
real. It is never used outside the local environment (staging/prod run the real provider). Usage (by the engine):
`pulumi-resource-vault <engine address>` prints its port and serves until killed.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import signal
import ssl
import sys
import urllib.error
import urllib.request
from concurrent import futures
from typing import Any

import grpc
from google.protobuf import empty_pb2, struct_pb2
from google.protobuf.json_format import MessageToDict

from tools.toolchain.standin_kinds import KINDS, UNKNOWN, Kind, VaultAPIError


def _engine_protocol() -> tuple[Any, Any, Any]:
    """The engine's gRPC stubs (plugin, provider) as the Pulumi SDK ships them, loaded without the SDK
    itself: importing `pulumi` is ~0.3 s of this plugin's start, which the engine waits for before it
    starts the next provider -- a real (Go) provider starts in a fraction of that."""
    if "pulumi.runtime.proto" in sys.modules:  # already loaded in this process (the tests): use it
        from pulumi.runtime.proto import plugin_pb2, provider_pb2, provider_pb2_grpc

        return plugin_pb2, provider_pb2, provider_pb2_grpc
    sdk = importlib.util.find_spec("pulumi")
    assert sdk is not None and sdk.submodule_search_locations
    package = importlib.util.module_from_spec(importlib.util.spec_from_loader("pulumi_engine_protocol", None,
                                                                              is_package=True))
    package.__path__ = [os.path.join(sdk.submodule_search_locations[0], "runtime", "proto")]
    sys.modules["pulumi_engine_protocol"] = package
    return tuple(importlib.import_module(f"pulumi_engine_protocol.{name}")  # type: ignore[return-value]
                 for name in ("plugin_pb2", "provider_pb2", "provider_pb2_grpc"))


plugin_pb2, provider_pb2, provider_pb2_grpc = _engine_protocol()


def _ints(value: Any) -> Any:
    """Struct numbers arrive as floats; Vault wants 900, not 900.0."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


def to_dict(s: struct_pb2.Struct | None) -> dict[str, Any]:
    return _ints(MessageToDict(s)) if s is not None else {}


def to_struct(d: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(d)
    return out


# As the real provider's Vault client: github.com/hashicorp/vault/api DefaultConfig's Timeout (60 s, the
# bound of a request and its retries). Disabling an auth mount revokes every token it issued, in the
# request: at 1,000 services ESO's logins make that take longer than the 30 s this once was.
CLIENT_TIMEOUT_SECONDS = 60


class StandinProvider(provider_pb2_grpc.ResourceProviderServicer):
    def __init__(self, package: str, version: str) -> None:
        self.package, self.version = package, version
        self.kinds = KINDS[package]
        self.address = os.environ.get("VAULT_ADDR", "")
        self.token = os.environ.get("VAULT_TOKEN", "")
        # As the real provider's `ca_cert_file` (terraform-provider-vault, internal/provider/meta.go: the
        # field, else env VAULT_CACERT):
        # the CA an https Vault's certificate is checked against; the system's CAs otherwise.
        self.ca_cert_file = os.environ.get("VAULT_CACERT", "")

    # -- the HTTP API ---------------------------------------------------------------------------
    def vault(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        req = urllib.request.Request(
            f"{self.address.rstrip('/')}/v1/{path}", method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"X-Vault-Token": self.token, "Content-Type": "application/json"})
        try:
            context = ssl.create_default_context(cafile=self.ca_cert_file or None)
            with urllib.request.urlopen(req, timeout=CLIENT_TIMEOUT_SECONDS, context=context) as r:
                raw = r.read()
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")[:300]
            raise VaultAPIError(f"{method} {path}: HTTP {e.code} {detail}") from None
        except (urllib.error.URLError, OSError) as e:
            raise VaultAPIError(f"{method} {path}: {self.address} unreachable ({e})") from None
        return json.loads(raw) if raw else {}

    # -- configuration --------------------------------------------------------------------------
    def GetPluginInfo(self, request, context):
        return plugin_pb2.PluginInfo(version=self.version)

    def CheckConfig(self, request, context):
        return provider_pb2.CheckResponse(inputs=request.news)

    def DiffConfig(self, request, context):
        return provider_pb2.DiffResponse(changes=provider_pb2.DiffResponse.DIFF_NONE)

    def Configure(self, request, context):
        args = to_dict(request.args)
        for key, value in request.variables.items():
            args.setdefault(key.rsplit(":", 1)[-1], value)
        if args.get("address"):
            self.address = args["address"]
        if args.get("token"):
            self.token = args["token"]
        if args.get("caCertFile"):
            self.ca_cert_file = args["caCertFile"]
        return provider_pb2.ConfigureResponse(acceptSecrets=False, supportsPreview=True, acceptResources=True)

    # -- resources ------------------------------------------------------------------------------
    def _kind(self, urn: str, context) -> Kind:
        type_ = urn.split("::")[-2].split("$")[-1]
        kind = self.kinds.get(type_)
        if kind is None:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, f"the stand-in {self.package} provider has no {type_}")
        return kind

    def Check(self, request, context):
        problems = self._kind(request.urn, context).check(to_dict(request.news))
        failures = [provider_pb2.CheckFailure(property=p.split(":")[0], reason=p) for p in problems]
        return provider_pb2.CheckResponse(inputs=request.news, failures=failures)

    def Diff(self, request, context):
        kind = self._kind(request.urn, context)
        olds = to_dict(request.old_inputs) or to_dict(request.olds)
        news = to_dict(request.news)
        changed = sorted(k for k in set(olds) | set(news) if olds.get(k) != news.get(k))
        if not changed:
            return provider_pb2.DiffResponse(changes=provider_pb2.DiffResponse.DIFF_NONE)
        replaces = [k for k in changed if "*" in kind.replace_on or k in kind.replace_on]
        # As the real (bridged) providers: a replacement creates the new resource before deleting the old.
        return provider_pb2.DiffResponse(changes=provider_pb2.DiffResponse.DIFF_SOME, diffs=changed,
                                         replaces=replaces, deleteBeforeReplace=False)

    def _call(self, context, fn, *args):
        try:
            return fn(*args)
        except VaultAPIError as e:
            context.abort(grpc.StatusCode.UNKNOWN, str(e))
        except KeyError as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"missing required input {e}")

    def Create(self, request, context):
        kind = self._kind(request.urn, context)
        ins = to_dict(request.properties)
        if request.preview:  # what only Vault decides is unknown until the resource exists
            unknown = {name: UNKNOWN for name in kind.computed if name not in ins}
            return provider_pb2.CreateResponse(id="", properties=to_struct({**ins, **unknown}))
        id_, outs = self._call(context, kind.create, self, ins)
        return provider_pb2.CreateResponse(id=id_, properties=to_struct(outs))

    def Update(self, request, context):
        kind = self._kind(request.urn, context)
        olds, news = to_dict(request.olds), to_dict(request.news)
        if request.preview:  # outputs Vault decided stay as they are; inputs take their new values
            return provider_pb2.UpdateResponse(properties=to_struct({**olds, **news}))
        outs = self._call(context, kind.update, self, request.id, olds, news)
        return provider_pb2.UpdateResponse(properties=to_struct(outs))

    def Delete(self, request, context):
        kind = self._kind(request.urn, context)
        self._call(context, kind.delete, self, request.id, to_dict(request.properties))
        return empty_pb2.Empty()

    def Read(self, request, context):
        kind = self._kind(request.urn, context)
        found = self._call(context, kind.read, self, request.id, to_dict(request.properties))
        if found is None:  # gone from Vault: the engine drops it from the state
            return provider_pb2.ReadResponse(id="")
        # An import reads from the ID alone: its inputs are the state less what only Vault decides, as
        # the bridge's ExtractInputsFromOutputs gives them.
        inputs = request.inputs if request.inputs.fields else to_struct(
            {k: v for k, v in found.items() if k not in kind.computed})
        return provider_pb2.ReadResponse(id=request.id, properties=to_struct(found), inputs=inputs)

    def Invoke(self, request, context):
        args = to_dict(request.args)
        if request.tok == "vault:kv/getSecretsListV2:getSecretsListV2":
            return self._list_v2(context, args)
        if request.tok != "vault:kv/getSecretSubkeysV2:getSecretSubkeysV2":
            context.abort(grpc.StatusCode.UNIMPLEMENTED, f"the stand-in has no function {request.tok}")
        path = f"{args['mount']}/subkeys/{args['name']}"
        try:
            body = self.vault("GET", path)
        except VaultAPIError as exc:
            if "HTTP 404" in str(exc):  # the real kvSecretSubkeysDataSourceRead (vault/data_source_kv_subkeys_v2.go)
                # reads `secret.Data` of the nil secret of a 404: a Go panic, the plugin process dies.
                print(f"panic: runtime error: invalid memory address or nil pointer dereference [{path}]",
                      file=sys.stderr, flush=True)
                os._exit(2)
            context.abort(grpc.StatusCode.UNKNOWN, f"error reading subkeys from Vault, err={exc}")
        subkeys = body.get("data", {}).get("subkeys", {})
        return provider_pb2.InvokeResponse(**{"return": to_struct({
            **args, "data": {k: "" if v is None else json.dumps(v) for k, v in subkeys.items()},
            "dataJson": json.dumps(subkeys), "id": path, "path": path})})

    def _list_v2(self, context, args: dict[str, Any]):
        """kvSecretV2ListDataSourceRead (vault/data_source_kv_secrets_list_v2.go): LIST the metadata path;
        a 404 is the clean error of kvListRequest (vault/kv_helpers.go)."""
        path = f"{args['mount']}/metadata/{args.get('name') or ''}".rstrip("/")
        try:
            body = self.vault("LIST", path)
        except VaultAPIError as exc:
            if "HTTP 404" in str(exc):
                context.abort(grpc.StatusCode.UNKNOWN, f'no secrets found at "{path}"')
            context.abort(grpc.StatusCode.UNKNOWN, f'error listing from Vault at path "{path}", err={exc}')
        names = body.get("data", {}).get("keys") or []
        return provider_pb2.InvokeResponse(**{"return": to_struct({**args, "names": names, "path": path,
                                                                   "id": path})})

    def GetSchema(self, request, context):
        return provider_pb2.GetSchemaResponse(schema="{}")

    def Cancel(self, request, context):
        return empty_pb2.Empty()


def serve(package: str, version: str) -> None:
    # The engine stops plugins with SIGINT, which a background shell may have left ignored here.
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, lambda signum, frame: os._exit(0))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    provider_pb2_grpc.add_ResourceProviderServicer_to_server(StandinProvider(package, version), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    server.wait_for_termination()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])

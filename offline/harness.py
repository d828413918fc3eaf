"""The one harness that evaluates the real program in-process under Pulumi's mocks.

It reads `Pulumi.yaml` defaults and `Pulumi.<stack>.yaml` as the CLI would (secure values are
replaced by offline placeholders), runs `__main__.py`, and records every registered resource
(type, name, parent, dependencies, protect, provider, inputs) and the stack outputs.
`make render`, the benchmark and the tests all use it.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import hashlib
import json
import runpy
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import struct_pb2
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.proto import resource_pb2

from config.files import stack_config
from config.loading import load_settings
from config.model import Settings
from config.naming import CLUSTER_CA_CONFIGMAP, NAMESPACE_TYPE, PROJECT, RELEASE_TYPE
from offline import PROJECT_DIR

PROTO_VERSION_OFFLINE = "offline-render"
# What the render assumes for the cluster CA that a deploy reads from the cluster.
OFFLINE_CLUSTER_CA = "offline-render: the cluster's kube-root-ca.crt"

# Given a Vault key (mount, path), the property names an `external` key holds (None: absent).
ExternalVault = Callable[[str, str], "list[str] | None"]


def declared_vault(settings: Settings) -> ExternalVault:
    """The offline stand-in for Vault: every key holds exactly the properties `settings` declare."""
    props = {(k.mount, k.path): list(k.properties) for k in settings.vault_keys}
    return lambda mount, path: props.get((mount, path))


@dataclass(frozen=True, eq=False)
class RecordedResource:
    type: str
    name: str
    urn: str
    parent: str
    dependencies: tuple[str, ...]
    protect: bool
    provider: str
    custom: bool
    # The inputs as the SDK serialized them; decoded on first use of `inputs` (most evaluations,
    # e.g. the benchmark, never read most of them).
    serialized_inputs: struct_pb2.Struct
    secret_outputs: tuple[str, ...]
    # The id of an existing resource the program reads (`Resource.get`, StackReference); None
    # for what it declares.
    read_id: str | None = None
    # Left in place when it leaves the program or the stack is destroyed.
    retain_on_delete: bool = False

    @cached_property
    def inputs(self) -> dict[str, Any]:
        decoded: dict[str, Any] = rpc.deserialize_properties(self.serialized_inputs, keep_unknowns=True)
        return decoded


@dataclass
class Evaluation:
    stack: str
    resources: list[RecordedResource]
    outputs: dict[str, Any]
    secret_output_names: list[str]
    logs: list[str] = field(default_factory=list)

    def of_type(self, type_: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_]

    def by_urn(self) -> dict[str, RecordedResource]:
        return {r.urn: r for r in self.resources}


class _Mocks(pulumi.runtime.Mocks):
    """What the "providers" answer: outputs are the inputs, plus what a few types compute."""

    # Types whose outputs are computed from decoded inputs; every other type echoes its inputs.
    COMPUTED = frozenset({
        "pulumi:pulumi:StackReference",
        "random:index/randomPassword:RandomPassword",
        "vault:kv/secretV2:SecretV2",
    })

    def __init__(self, external_vault: ExternalVault, proto_outputs: Mapping[str, Any],
                 declared_paths: Iterable[tuple[str, str]] = ()) -> None:
        self.external_vault = external_vault
        self.proto_outputs = dict(proto_outputs)
        # A folder listing is answered for the keys the stack declares there, by asking external_vault.
        self.declared_paths = list(declared_paths)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        outputs = dict(args.inputs)
        if args.typ == "pulumi:pulumi:StackReference":
            return args.name, {"outputs": self.proto_outputs, "secretOutputNames": []}
        if args.typ == "random:index/randomPassword:RandomPassword":
            # Deterministic, so two evaluations declare identical resources.
            digest = hashlib.sha256(f"generated:{args.name}".encode()).hexdigest()
            outputs["result"] = digest[: int(args.inputs.get("length", 32))]
        if args.typ == "kubernetes:core/v1:ConfigMap" and args.resource_id == CLUSTER_CA_CONFIGMAP:
            # Read from the cluster at deploy time; the offline render cannot see it.
            outputs["data"] = {"ca.crt": OFFLINE_CLUSTER_CA}
        if args.typ == NAMESPACE_TYPE and args.resource_id:
            # The platform team's namespace (manageNamespace: false), read at deploy time.
            outputs["metadata"] = {"name": args.resource_id}
        if args.typ == "vault:kv/secretV2:SecretV2":
            outputs["path"] = f"{args.inputs['mount']}/data/{args.inputs['name']}"
        return f"{args.name}-id", outputs

    def echoed_outputs(self, type_: str, inputs: struct_pb2.Struct) -> struct_pb2.Struct:
        """The outputs of a type that echoes its inputs, built on the serialized form directly."""
        outputs = struct_pb2.Struct()
        outputs.CopyFrom(inputs)
        if type_ == RELEASE_TYPE:
            outputs["status"] = {"name": inputs["name"], "status": "deployed"}
        return outputs

    # The SDK accepts a plain dict here as well as (outputs, failures).
    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        if args.token == "vault:kv/getSecretsListV2:getSecretsListV2":
            mount, folder = args.args["mount"], args.args.get("name") or ""
            names = sorted(path.rpartition("/")[2] for m, path in self.declared_paths
                           if m == mount and path.rpartition("/")[0] == folder
                           and self.external_vault(m, path) is not None)
            listed = f"{mount}/metadata/{folder}".rstrip("/")
            if not names:  # what the provider reports when Vault answers 404 (kvListRequest)
                raise RuntimeError(f'no secrets found at "{listed}"')
            return {"mount": mount, "name": folder, "names": names, "path": listed, "id": listed}
        if args.token == "vault:kv/getSecretSubkeysV2:getSecretSubkeysV2":
            mount, name = args.args["mount"], args.args["name"]
            props = self.external_vault(mount, name)
            if props is None:
                # What the provider reports for a key that is not there (Vault answers 404).
                raise RuntimeError(
                    f"error reading subkeys from Vault, err=Error making API request.\n\n"
                    f"URL: GET {{vault}}/v1/{mount}/subkeys/{name}\nCode: 404. Errors:\n"
                )
            return {
                "data": {p: "" for p in props},
                "dataJson": json.dumps({p: None for p in props}),
                "mount": mount,
                "name": name,
                "path": f"{mount}/data/{name}",
                "id": f"{mount}/data/{name}",
            }
        return {}


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    mocks: _Mocks

    def __init__(self, mocks: _Mocks) -> None:
        super().__init__(mocks)
        self.recorded: list[RecordedResource] = []

    def RegisterResource(self, request: Any) -> Any:
        if request.type == "pulumi:pulumi:Stack" or request.type in _Mocks.COMPUTED:
            response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        else:
            # The base monitor decodes the inputs, asks the mocks, and encodes the answer again;
            # for an echo that round trip is most of an evaluation's cost, so skip it.
            response = resource_pb2.RegisterResourceResponse(
                urn=self.make_urn(request.parent, request.type, request.name),
                id=f"{request.name}-id",
                object=self.mocks.echoed_outputs(request.type, request.object),
            )
        if request.type != "pulumi:pulumi:Stack":
            self._record(request, response.urn, request.object, bool(request.protect), bool(request.custom))
        return response

    def ReadResource(self, request: Any) -> Any:
        # StackReference and other read-only resources arrive here, not in RegisterResource.
        response = super().ReadResource(request)  # type: ignore[no-untyped-call]
        self._record(request, response.urn, request.properties, False, True, read_id=request.id)
        return response

    def _record(
        self, request: Any, urn: str, properties: struct_pb2.Struct, protect: bool, custom: bool,
        read_id: str | None = None,
    ) -> None:
        self.recorded.append(
            RecordedResource(
                type=request.type,
                name=request.name,
                urn=urn,
                parent=request.parent,
                dependencies=tuple(request.dependencies),
                protect=protect,
                provider=request.provider,
                custom=custom,
                serialized_inputs=properties,
                secret_outputs=tuple(getattr(request, "additionalSecretOutputs", ())),
                read_id=read_id,
                retain_on_delete=bool(getattr(request, "retainOnDelete", False)),
            )
        )


class _EngineLog:
    """Stands in for the logger the mock engine writes to: keeps every message, at every level.

    A plain list instead of a `logging.Logger`, because the SDK sends several debug messages per
    resource and building a LogRecord for each was a visible share of an evaluation.
    """

    def __init__(self) -> None:
        self.lines: list[str] = []

    def _keep(self, msg: object, *args: object, **kwargs: object) -> None:
        self.lines.append(str(msg) % args if args else str(msg))

    debug = info = warning = error = _keep


def _run_program(program: str) -> None:
    runpy.run_path(program, run_name="__main__")


def evaluate(
    stack: str,
    *,
    project_dir: Path = PROJECT_DIR,
    config: Mapping[str, str] | None = None,
    secret_keys: list[str] | None = None,
    external_vault: ExternalVault | None = None,
    proto_outputs: Mapping[str, Any] | None = None,
    preview: bool = False,
) -> Evaluation:
    """Run this project's `__main__.py` for `stack` under mocks and return what it declared.

    `config`/`secret_keys` replace the stack files entirely (for tests of synthetic configs);
    by default the checked-in `Pulumi.yaml` + `Pulumi.<stack>.yaml` are read.
    `external_vault` answers the existence check of `external` keys; by default every key
    holds exactly the properties the catalog declares (the offline render cannot see Vault).
    """
    if config is None:
        config, secret_keys = stack_config(stack, project_dir=project_dir)
    # The program loads the same settings from the same config: load_settings remembers them, so
    # they are validated once per evaluation.
    settings = load_settings(project_dir=project_dir, environment=stack, config=config, secret_keys=secret_keys or [])
    mocks = _Mocks(
        external_vault or declared_vault(settings),
        {"version": PROTO_VERSION_OFFLINE} if proto_outputs is None else proto_outputs,
        [(k.mount, k.path) for k in settings.vault_keys],
    )
    return run_program(stack, project_dir=project_dir, config=config, secret_keys=secret_keys or [], mocks=mocks,
                       preview=preview)


def run_program(
    stack: str,
    *,
    project_dir: Path,
    config: Mapping[str, str],
    secret_keys: list[str] | None = None,
    mocks: _Mocks | None = None,
    preview: bool = False,
) -> Evaluation:
    """Any Pulumi program folder (`__main__.py`) under the recording mocks: this project's, or the
    benchmark's reference programs, which read none of this project's settings."""
    return contextvars.copy_context().run(
        _evaluate, stack, project_dir, dict(config), list(secret_keys or []),
        mocks or _Mocks(lambda mount, path: None, {}), preview,
    )


def _evaluate(
    stack: str,
    project_dir: Path,
    config: dict[str, str],
    secret_keys: list[str],
    mocks: _Mocks,
    preview: bool,
) -> Evaluation:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    # One evaluation allocates many short-lived Outputs and tasks that live until the end; the
    # cyclic collector rescanning them made evaluation superlinear in the number of resources.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    engine_log = _EngineLog()
    try:
        runtime_settings.ROOT.set(None)
        runtime_settings.SETTINGS.outputs = set()
        pulumi.runtime.set_all_config(config, secret_keys)
        monitor = _RecordingMonitor(mocks)
        pulumi.runtime.set_mocks(
            monitor.mocks,
            project=PROJECT,
            stack=stack,
            preview=preview,
            monitor=monitor,
            organization="organization",  # a DIY backend's one: `<project>/<stack>` references resolve in it
            # Duck-typed: the SDK only calls the level methods.
            logger=engine_log,  # type: ignore[arg-type]
        )
        program = str(project_dir)
        added = program not in sys.path
        if added:
            sys.path.insert(0, program)
        try:
            loop.run_until_complete(
                pulumi.runtime.stack.run_pulumi_func(lambda: _run_program(program))
            )
        finally:
            if added:
                sys.path.remove(program)
        outputs, secret_names = loop.run_until_complete(_resolve_outputs())
        return Evaluation(
            stack=stack,
            resources=monitor.recorded,
            outputs=outputs,
            secret_output_names=secret_names,
            logs=engine_log.lines,
        )
    finally:
        loop.close()
        asyncio.set_event_loop(None)
        if gc_was_enabled:
            gc.enable()


async def _resolve_outputs() -> tuple[dict[str, Any], list[str]]:
    root = pulumi.runtime.get_root_resource()
    assert root is not None
    outputs: dict[str, Any] = {}
    secret: list[str] = []
    for key, value in root.outputs.items():  # type: ignore[attr-defined]
        out = pulumi.Output.from_input(value)
        outputs[key] = await out.future()
        if await out.is_secret():
            secret.append(key)
    return outputs, secret

"""Shared fixtures of the program tier: what the program asks the engine for, captured under the SDK's
mocks (components/kube_objects.py and vault_objects.py are compared against the generated classes so)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pulumi
from google.protobuf.json_format import MessageToDict
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as runtime_settings


class _Echo(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}


class _Capture(pulumi_mocks.MockMonitor):
    def __init__(self) -> None:
        super().__init__(_Echo())
        self.requests: list[dict[str, Any]] = []

    def _keep(self, request: Any) -> None:
        seen = MessageToDict(request)
        for noise in ("sourcePosition", "stackTrace"):
            seen.pop(noise, None)
        self.requests.append(seen)

    def RegisterResource(self, request: Any) -> Any:
        if request.type != "pulumi:pulumi:Stack":
            self._keep(request)
        return super().RegisterResource(request)  # type: ignore[no-untyped-call]

    def ReadResource(self, request: Any) -> Any:
        self._keep(request)
        return super().ReadResource(request)  # type: ignore[no-untyped-call]

    def Invoke(self, request: Any) -> Any:
        self._keep(request)
        return super().Invoke(request)  # type: ignore[no-untyped-call]


def registered(declare: Callable[[], object]) -> list[dict[str, Any]]:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        runtime_settings.ROOT.set(None)
        runtime_settings.SETTINGS.outputs = set()
        monitor = _Capture()
        pulumi.runtime.set_mocks(monitor.mocks, project="p", stack="s", preview=False, monitor=monitor)
        loop.run_until_complete(pulumi.runtime.stack.run_pulumi_func(declare))
        return monitor.requests
    finally:
        loop.close()
        asyncio.set_event_loop(None)

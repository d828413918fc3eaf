"""The plugin version each provider's Python SDK asks the engine for, without importing the SDK.

components/kube_objects.py and vault_objects.py register by type token instead of through the
generated classes; like those classes, every registration names the version of the provider plugin
the pinned SDK was built for, here read from the SDK's `pulumi-plugin.json`.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.util import find_spec
from pathlib import Path

import pulumi


@cache
def plugin_version(package: str) -> str:
    """`pulumi_<package>`'s plugin version, read without importing the package (which can cost more
    than the registrations themselves)."""
    spec = find_spec(f"pulumi_{package}")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"pulumi_{package} is not installed: pip install -r requirements.txt")
    plugin = Path(next(iter(spec.submodule_search_locations))) / "pulumi-plugin.json"
    return str(json.loads(plugin.read_text())["version"])


def with_plugin_version(package: str, opts: pulumi.ResourceOptions | None) -> pulumi.ResourceOptions:
    """As every generated class: the package's version first, then the caller's options."""
    return pulumi.ResourceOptions.merge(pulumi.ResourceOptions(version=plugin_version(package)), opts)

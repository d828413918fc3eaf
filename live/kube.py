"""The official kubernetes client on a named kube context, its failures turned into one message.

Used by `make verify` (live/verify.py) and `make run` (live/run.py): a missing context, refused
credentials, an API error or an unreachable server is an EnvironmentProblem naming what to check;
a 404 is "not there" (None) where the caller allows it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from config.errors import EnvironmentProblem


def api_client(context: str, kubeconfig: str | None = None) -> Any:
    from kubernetes import config
    from kubernetes.config.config_exception import ConfigException

    try:
        return config.new_client_from_config(config_file=kubeconfig or None, context=context)
    except (ConfigException, FileNotFoundError) as exc:
        raise EnvironmentProblem(f"kubeconfig has no usable context {context!r}: {exc}; pass --context") from None


def call(fn: Callable[[], Any], *, missing_ok: bool = True) -> Any:
    """`fn()`, with None for a 404 when `missing_ok`, and every other failure as one EnvironmentProblem."""
    import urllib3
    from kubernetes.client.exceptions import ApiException

    try:
        return fn()
    except ApiException as exc:
        if exc.status == 404 and missing_ok:
            return None
        if exc.status in (401, 403):
            raise EnvironmentProblem(f"Kubernetes API refused the request ({exc.status} {exc.reason}): check "
                                     "your credentials for the context") from None
        raise EnvironmentProblem(f"Kubernetes API error {exc.status} {exc.reason}") from None
    except urllib3.exceptions.HTTPError as exc:
        raise EnvironmentProblem(f"Kubernetes API unreachable: {type(exc).__name__}; check the context's server") from None

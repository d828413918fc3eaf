"""Kubernetes, through the official client on a named kube context: the one adapter.

`ClientCluster` is the one adapter: the cluster `make run` and `make rotate` drive (Jobs from
CronJobs, pods and their logs, ExternalSecrets, events, the synced Secrets' values to redact) and what
`make verify` and `make recover` read (objects by kind, Helm's release records) -- each command sees
it through its own narrow Protocol (runs.runner.Cluster, deploy.verify.KubeReader). A missing context, refused
credentials, an API error or an unreachable server is an EnvironmentProblem naming what to check; a
404 is "not there" (None) where the caller allows it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, cast

from clients import helm_records
from config.errors import EnvironmentProblem
from config.naming import ESO_API_VERSION


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


MAX_LOG_BYTES = 32 * 1024 * 1024


def log_tail(chunks: Iterable[bytes], limit: int) -> bytes:
    """The last `limit` bytes of a stream, holding at most twice that at any time."""
    kept = bytearray()
    for chunk in chunks:
        kept += chunk
        if len(kept) > 2 * limit:
            del kept[:-limit]
    return bytes(kept[-limit:])


ESO_GROUP, ESO_VERSION = ESO_API_VERSION.split("/")


class ClientCluster:
    """The official kubernetes client, on the context the stack outputs name (or --context)."""

    def __init__(self, context: str, kubeconfig: str | None = None) -> None:
        from kubernetes import client

        api = api_client(context, kubeconfig)
        self.batch = client.BatchV1Api(api)
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self._sanitize = api.sanitize_for_serialization
        self._dynamic: Any = None

    def _call(self, fn: Callable[[], Any], *, missing_ok: bool = True) -> Any:
        return call(fn, missing_ok=missing_ok)

    def get_cron_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        obj = self._call(lambda: self.batch.read_namespaced_cron_job(name, namespace))
        return None if obj is None else self._sanitize(obj)

    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        obj = self._call(lambda: self.batch.read_namespaced_job(name, namespace))
        return None if obj is None else self._sanitize(obj)

    def create_job(self, namespace: str, body: dict[str, Any]) -> None:
        # The client takes plain dicts as bodies; its annotations say V1Job.
        self._call(lambda: self.batch.create_namespaced_job(namespace, cast(Any, body)), missing_ok=False)

    def delete_job(self, namespace: str, name: str) -> None:
        self._call(lambda: self.batch.delete_namespaced_job(name, namespace, propagation_policy="Background"))

    def list_jobs(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        jobs = self._call(lambda: self.batch.list_namespaced_job(namespace, label_selector=selector))
        return [self._sanitize(j) for j in (jobs.items if jobs else [])]

    def secret_values(self, namespace: str, name: str) -> dict[str, str] | None:
        """The Secret's values (to redact them; never written), [] when it is not there, None when
        the credentials may not read it."""
        import base64

        try:
            secret = self._call(lambda: self.core.read_namespaced_secret(name, namespace))
        except EnvironmentProblem:
            return None
        data = (secret.data or {}) if secret is not None else {}
        return {key: base64.b64decode(v).decode("utf-8", "replace") for key, v in data.items() if v}

    def pod_log(self, namespace: str, job: str) -> str | None:
        pods = self._call(lambda: self.core.list_namespaced_pod(namespace, label_selector=f"job-name={job}"))
        items = sorted(pods.items if pods else [], key=lambda p: p.metadata.creation_timestamp)
        if not items:
            return None
        # Raw bytes, streamed, and only the last MAX_LOG_BYTES kept: the report is at the log's end, so a
        # suite that logs more keeps its report, and one cannot push the real report past a head limit.
        raw = self._call(lambda: self.core.read_namespaced_pod_log(
            items[-1].metadata.name, namespace, _preload_content=False))
        if raw is None:
            return ""
        return log_tail(raw.stream(1 << 16), MAX_LOG_BYTES).decode("utf-8", "replace")

    def pods(self, namespace: str, job: str) -> list[dict[str, Any]]:
        pods = self._call(lambda: self.core.list_namespaced_pod(namespace, label_selector=f"job-name={job}"))
        items = sorted(pods.items if pods else [], key=lambda p: p.metadata.creation_timestamp)
        return [self._sanitize(p) for p in items]

    def watch_pods(self, namespace: str, job: str, seconds: float) -> None:
        """Returns at the first change to one of the Job's pods after now, or after about `seconds`. Where
        the watch cannot run (credentials that may list pods but not watch them, a broken stream) it
        waits out the `seconds` instead: the caller reads the pods again either way."""
        import urllib3
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        began = time.monotonic()
        selector = f"job-name={job}"
        stream = watch.Watch()
        try:
            # From the list's version: a watch without one first replays every existing pod as ADDED.
            listed = self.core.list_namespaced_pod(namespace, label_selector=selector, limit=1)
            version = listed.metadata.resource_version if listed.metadata else None
            if version:
                for _ in stream.stream(self.core.list_namespaced_pod, namespace, label_selector=selector,
                                       resource_version=version, timeout_seconds=max(1, round(seconds)),
                                       _request_timeout=(5, seconds + 5)):
                    break
                return  # a change, or the watch's own timeout: the wait is over either way
        except (ApiException, urllib3.exceptions.HTTPError, OSError, ValueError):
            pass
        finally:
            stream.stop()
        time.sleep(max(0.0, seconds - (time.monotonic() - began)))

    def get_external_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return cast(dict[str, Any] | None, self._call(lambda: self.custom.get_namespaced_custom_object(
            ESO_GROUP, ESO_VERSION, namespace, "externalsecrets", name)))

    def annotate_external_secret(self, namespace: str, name: str, annotations: dict[str, str]) -> None:
        self._call(lambda: self.custom.patch_namespaced_custom_object(
            ESO_GROUP, ESO_VERSION, namespace, "externalsecrets", name, {"metadata": {"annotations": annotations}}),
            missing_ok=False)

    def warning_events(self, namespace: str, kind: str, name: str) -> dict[str, tuple[int, str]]:
        """Warning events about one object: event name -> (count, message)."""
        selector = f"involvedObject.kind={kind},involvedObject.name={name},type=Warning"
        events = self._call(lambda: self.core.list_namespaced_event(namespace, field_selector=selector))
        return {e.metadata.name: (int(e.count or 1), str(e.message or ""))
                for e in (events.items if events else [])}

    def pod_events(self, namespace: str, pod: str) -> list[dict[str, Any]]:
        """The events about one pod (the kubelet's Scheduled, Pulling, Pulled, Started ...)."""
        selector = f"involvedObject.kind=Pod,involvedObject.name={pod}"
        events = self._call(lambda: self.core.list_namespaced_event(namespace, field_selector=selector))
        return [self._sanitize(e) for e in (events.items if events else [])]

    def free_pods(self, namespace: str) -> int | None:
        quotas = self._call(lambda: self.core.list_namespaced_resource_quota(namespace))
        free = None
        for q in quotas.items if quotas else []:
            hard = (q.status.hard or {}).get("pods") if q.status else None
            if hard is not None:
                left = int(hard) - int((q.status.used or {}).get("pods", 0))
                free = left if free is None else min(free, left)
        return free

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        if kind == "Namespace":
            obj = self._call(lambda: self.core.read_namespace(name))
        elif kind == "Secret":
            obj = self._call(lambda: self.core.read_namespaced_secret(name, str(namespace)))
        elif kind == "ExternalSecret":
            group, version = ESO_API_VERSION.split("/")
            found: dict[str, Any] | None = self._call(lambda: self.custom.get_namespaced_custom_object(
                group, version, str(namespace), "externalsecrets", name))
            return found
        else:
            raise ValueError(kind)
        return None if obj is None else self._sanitize(obj)

    def live_object(self, api_version: str, kind: str, name: str, namespace: str | None) -> dict[str, Any] | None:
        """Any object by apiVersion and kind, as the API server holds it (None: not there)."""
        from kubernetes.dynamic import DynamicClient
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        if self._dynamic is None:  # discovery: once per command
            self._dynamic = self._call(lambda: DynamicClient(self.core.api_client), missing_ok=False)
        try:
            resource = self._dynamic.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            return None  # the kind itself is gone (its CRD removed): so is the object
        # The dynamic client's errors are the API client's (404: None; 401/403: one EnvironmentProblem).
        found = self._call(lambda: resource.get(name=name, namespace=namespace) if resource.namespaced
                           else resource.get(name=name))
        return None if found is None else dict(found.to_dict())

    def _helm_storage(self, namespace: str) -> list[dict[str, Any]]:
        secrets = self._call(lambda: self.core.list_namespaced_secret(
            namespace, field_selector=f"type={helm_records.SECRET_TYPE}"))
        return [self._sanitize(s) for s in (secrets.items if secrets else [])]

    def helm_records(self, namespace: str) -> dict[str, helm_records.ReleaseRecord]:
        """Helm's record of each release's newest revision (its values included)."""
        return helm_records.newest_records(self._helm_storage(namespace))

    def helm_releases(self, namespace: str) -> dict[str, str]:
        """From Helm's own records (clients/helm_records.py), never from the Secrets' labels."""
        return helm_records.latest(self._helm_storage(namespace))


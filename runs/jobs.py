"""The Jobs `make run` starts: a fresh Job from a service's suspended CronJob (a unique DNS-label name,
labelled with the run id and caller), a failed install-time Job again under its own name, which
install Job is the newest, and when a Job has ended. Plain manifests; nothing here calls the cluster."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

DNS_LABEL_MAX = 63
SUFFIX_LEN = 10
DEADLINE_MARGIN_SECONDS = 60
RUN_ID_LABEL = "ameide.io/run-id"
CALLER_LABEL = "ameide.io/caller"
SERVICE_LABEL = "ameide.io/service"

def label_value(text: str) -> str:
    """`text` as a valid label value (<= 63 of [A-Za-z0-9._-], alphanumeric at both ends)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text)[:DNS_LABEL_MAX].strip("-._")
    return cleaned or "none"


def job_name(cron_job: str, run_id: str, attempt: str) -> str:
    """A fresh Job name: the CronJob's name (<= 52) and a 10-character hash of run id and attempt,
    so it is always a DNS label of at most 63 characters and unique per run."""
    suffix = hashlib.sha256(f"{run_id}/{attempt}".encode()).hexdigest()[:SUFFIX_LEN]
    prefix = cron_job[: DNS_LABEL_MAX - SUFFIX_LEN - 1].rstrip("-")
    return f"{prefix}-{suffix}"


def job_from_cron_job(cron: dict[str, Any], name: str, run_id: str, caller: str) -> dict[str, Any]:
    template = cron["spec"]["jobTemplate"]
    run_labels = {RUN_ID_LABEL: label_value(run_id), CALLER_LABEL: label_value(caller)}
    labels = {**(template.get("metadata", {}).get("labels") or {}), **run_labels}
    spec = json.loads(json.dumps(template["spec"]))
    # On the pod too: `kubectl logs -l ameide.io/run-id=<id>` finds a run's pods.
    pod_meta = spec.setdefault("template", {}).setdefault("metadata", {})
    pod_meta["labels"] = {**(pod_meta.get("labels") or {}), **run_labels}
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {
            "name": name, "labels": labels,
            "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": cron["metadata"]["name"],
                                 "uid": cron["metadata"]["uid"], "controller": True}],
        },
        "spec": spec,
    }


def job_for_rerun(failed: dict[str, Any]) -> dict[str, Any]:
    """The failed Job's own spec under its own name, minus what the API server generated."""
    meta = failed["metadata"]
    spec = json.loads(json.dumps(failed["spec"]))
    spec.pop("selector", None)
    tmpl_labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
    for generated in ("controller-uid", "batch.kubernetes.io/controller-uid", "job-name",
                      "batch.kubernetes.io/job-name"):
        tmpl_labels.pop(generated, None)
    labels = {k: v for k, v in (meta.get("labels") or {}).items()
              if k not in ("controller-uid", "batch.kubernetes.io/controller-uid", "job-name",
                           "batch.kubernetes.io/job-name")}
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": meta["name"], "labels": labels, "annotations": meta.get("annotations") or {}},
            "spec": spec}


def latest_install_job(jobs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest of a service's install-time Jobs (the chart's; not one started from its CronJob).

    After a gated `up` failed, the stack outputs still name the Job of the last successful update
    (Pulumi keeps the previous outputs), which that `up` replaced: the Job to re-run is the newest."""
    installs = [j for j in jobs if not any(o.get("kind") == "CronJob"
                                           for o in j.get("metadata", {}).get("ownerReferences") or [])]
    return max(installs, key=lambda j: str(j["metadata"].get("creationTimestamp") or ""), default=None)


def pod_succeeded(pods: list[dict[str, Any]]) -> bool:
    """The newest pod ended with its containers exiting 0 (phase Succeeded): the suite passed its own
    exit and its report is in the log, before the Job controller marks the Job Complete."""
    return bool(pods) and (pods[-1].get("status") or {}).get("phase") == "Succeeded"


def terminal_state(job: dict[str, Any] | None) -> str | None:
    for cond in (job or {}).get("status", {}).get("conditions") or []:
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "Failed"):
            return str(cond["type"])
    return None

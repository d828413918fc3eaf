"""`make recover` and `make verify` read what Helm recorded of a release, not what a Secret's labels
say: a Secret labelled `owner=helm, status=deployed, version=99` over a `pending-install` record is
pending-install, `version=v2` is no traceback, and a decompression bomb is refused within its bound."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import pytest

from clients import helm_records
from clients.helm_records import SECRET_TYPE, HelmRecordError, latest


def storage_secret(name: str, revision: int, status: str, *, labels: dict[str, str] | None = None,
                   raw: bytes | None = None, type_: str = SECRET_TYPE) -> dict[str, Any]:
    """A Secret as Helm writes it: the release as JSON, gzipped, base64 (and base64 again by the API)."""
    release = raw if raw is not None else gzip.compress(json.dumps(
        {"name": name, "version": revision, "info": {"status": status}, "manifest": "kind: Job"}).encode())
    return {"type": type_,
            "metadata": {"name": f"sh.helm.release.v1.{name}.v{revision}",
                         "labels": labels or {"owner": "helm", "name": name, "status": status,
                                              "version": str(revision)}},
            "data": {"release": base64.b64encode(base64.b64encode(release)).decode()}}


def test_the_newest_revision_that_helm_recorded_gives_the_status() -> None:
    assert latest([storage_secret("test-graph", 1, "superseded"), storage_secret("test-graph", 2, "deployed"),
                   storage_secret("test-agents", 1, "failed")]) == {"test-graph": "deployed", "test-agents": "failed"}


def test_forged_labels_do_not_make_a_pending_install_deployed() -> None:
    forged = storage_secret("test-graph", 1, "pending-install",
                            labels={"owner": "helm", "name": "test-graph", "status": "deployed", "version": "99"})
    assert latest([forged]) == {"test-graph": "pending-install"}


def test_a_label_version_that_is_not_a_number_is_no_traceback() -> None:
    odd = storage_secret("test-graph", 2, "deployed",
                         labels={"owner": "helm", "name": "test-graph", "status": "deployed", "version": "v2"})
    assert latest([odd]) == {"test-graph": "deployed"}


def test_a_secret_of_another_type_is_not_helms_whatever_its_labels() -> None:
    assert latest([storage_secret("test-graph", 9, "deployed", type_="Opaque")]) == {}


@pytest.mark.parametrize(("raw", "why"), [
    (b"not gzip, not json", "not JSON"),
    (gzip.compress(b'{"name": "x"}', mtime=0), "no name, version and info.status"),
    (gzip.compress(b'{"name": "x", "version": "2", "info": {"status": "deployed"}}', mtime=0), "no name, version"),
    (b"\x1f\x8b" + b"garbage", "not gzip"),
], ids=["plain-text", "no-version", "version-a-string", "broken-gzip"])
def test_a_record_that_is_not_helms_is_one_clear_message(raw: bytes, why: str) -> None:
    with pytest.raises(HelmRecordError, match=why) as err:
        latest([storage_secret("x", 1, "deployed", raw=raw)])
    assert "sh.helm.release.v1.x.v1" in str(err.value)


def test_a_decompression_bomb_is_refused_within_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(helm_records, "MAX_RECORD_BYTES", 1024 * 1024)
    bomb = gzip.compress(b"{" + b" " * (8 * 1024 * 1024) + b"}")
    with pytest.raises(HelmRecordError, match="larger than"):
        latest([storage_secret("x", 1, "deployed", raw=bomb)])


def test_the_cluster_reader_asks_for_helms_type_and_decodes_the_records(monkeypatch: pytest.MonkeyPatch) -> None:
    from kubernetes import client

    from clients.kubernetes import ClientCluster

    asked: list[dict[str, Any]] = []

    class Core:
        api_client = client.ApiClient()

        def list_namespaced_secret(self, namespace: str, **kw: Any) -> Any:
            asked.append(kw)
            forged = storage_secret("test-graph", 1, "pending-install",
                                    labels={"owner": "helm", "status": "deployed", "version": "99"})
            return client.V1SecretList(items=[client.V1Secret(
                type=forged["type"], metadata=client.V1ObjectMeta(**forged["metadata"]), data=forged["data"])])

    reader = ClientCluster.__new__(ClientCluster)
    reader.core = Core()  # type: ignore[assignment]
    reader._sanitize = client.ApiClient().sanitize_for_serialization
    assert reader.helm_releases("integration-tests") == {"test-graph": "pending-install"}
    assert asked == [{"field_selector": f"type={SECRET_TYPE}"}]

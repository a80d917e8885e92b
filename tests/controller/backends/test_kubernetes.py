"""KubernetesBackend against the API stand-in: the official client over real HTTP."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.backends import Drift
from controller.backends.kube_rest import Rest
from controller.backends.kubernetes import KubernetesBackend
from gitops.objects import OWNER_LABELS, ObjectId
from gitops.plan import ChangeSet, full
from tests.support.kube_api import KubeApiStandIn

WAIT = 15.0  # generous; events normally arrive in milliseconds
NS = "bookinfo-backends"
VS_PATH = f"/apis/networking.istio.io/v1/namespaces/{NS}/virtualservices"
DR_PATH = f"/apis/networking.istio.io/v1/namespaces/{NS}/destinationrules"


def istio(kind: str, name: str, spec: Any, group: str = "networking.istio.io") -> dict[str, Any]:
    return {
        "apiVersion": f"{group}/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": NS, "labels": dict(OWNER_LABELS)},
        "spec": spec,
    }


DR = istio("DestinationRule", "reviews", {"host": "reviews", "subsets": [{"name": "v1"}]})
SE = istio("ServiceEntry", "reviews-global", {"hosts": ["reviews.global"]})
VS = istio("VirtualService", "reviews", {"hosts": ["reviews"]})
PA = istio("PeerAuthentication", "strict", {"mtls": {"mode": "STRICT"}}, "security.istio.io")


def service(name: str, port: int = 9080) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": name}},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": port}]},
    }


@pytest.fixture
def api() -> Iterator[KubeApiStandIn]:
    with KubeApiStandIn() as stand_in:
        stand_in.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        stand_in.put(service("reviews"))
        stand_in.put(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "reviews-v1", "namespace": NS},
                "spec": {"template": {"metadata": {"labels": {"app": "reviews"}}, "spec": {}}},
            }
        )
        yield stand_in


@pytest.fixture
def backend(api: KubeApiStandIn, tmp_path: Path) -> Iterator[KubernetesBackend]:
    client = api.client()
    b = KubernetesBackend("cluster1", client, tmp_path / "state", watch_seconds=2)
    yield b
    b.close()
    client.close()
    # A watch left running retries forever against a closed server (and, with tenacity's
    # jitter, draws from the global `random` under other tests' feet).
    assert not [t.name for t in threading.enumerate() if t.name.startswith("watch-")]


def test_discover_lists_every_discovered_kind(backend: KubernetesBackend) -> None:
    found = backend.discover()
    assert [(o["kind"], o["metadata"]["name"]) for o in found] == [
        ("Namespace", NS),
        ("Service", "reviews"),
        ("Deployment", "reviews-v1"),
    ]
    assert found[1]["apiVersion"] == "v1" and found[2]["apiVersion"] == "apps/v1"
    assert all("managedFields" not in o["metadata"] for o in found)


def test_watch_inputs_reports_deltas_and_relists_after_410(
    api: KubeApiStandIn, backend: KubernetesBackend
) -> None:
    backend.discover()
    api.put(service("missed-before-watch"))  # between discover and watch: not lost
    deltas: queue.Queue[tuple[list[str], list[str]]] = queue.Queue()
    backend.watch_inputs(
        lambda ups, gone: deltas.put(([o["metadata"]["name"] for o in ups], [g.name for g in gone]))
    )
    assert deltas.get(timeout=WAIT) == (["missed-before-watch"], [])
    assert backend.wait_synced(WAIT)
    api.put(service("ratings"))
    assert deltas.get(timeout=WAIT) == (["ratings"], [])
    api.remove("v1", "Service", NS, "ratings")
    assert deltas.get(timeout=WAIT) == ([], ["ratings"])

    lists_before = _service_lists(api)
    api.expire_history()
    api.put(service("after-410", 8080))
    assert deltas.get(timeout=WAIT) == (["after-410"], [])
    _wait_for(lambda: _service_lists(api) > lists_before)
    api.put(service("after-relist"))
    assert deltas.get(timeout=WAIT) == (["after-relist"], [])
    assert deltas.empty()  # the relist re-delivered nothing already known


def _service_lists(api: KubeApiStandIn) -> int:
    return sum(
        1
        for m, p, q in list(api.requests)
        if m == "GET" and p == "/api/v1/services" and "watch" not in q
    )


def _wait_for(condition: Any, timeout: float = WAIT) -> None:
    done = threading.Event()
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        done.wait(0.05)
    raise AssertionError("condition not met in time")


def test_apply_is_server_side_apply_in_make_before_break_order(
    api: KubeApiStandIn, backend: KubernetesBackend
) -> None:
    result = backend.apply(ChangeSet((VS, PA, SE, DR)))
    assert result.ok and len(result.applied) == 4
    patches = [(m, p) for m, p in api.writes()]
    assert [p.rsplit("/", 2)[-2] for _, p in patches] == [
        "destinationrules",
        "serviceentries",
        "peerauthentications",
        "virtualservices",
    ]
    _, _, query = next(r for r in api.requests if r[0] == "PATCH")
    assert query == {"fieldManager": "mesh-gitops", "force": "true"}
    live = api.get("networking.istio.io/v1", "VirtualService", NS, "reviews")
    assert live is not None and live["spec"] == VS["spec"]
    assert [m["manager"] for m in live["metadata"]["managedFields"]] == ["mesh-gitops"]
    assert backend.inventory() == {ObjectId.of(o) for o in (VS, PA, SE, DR)}

    first = len(api.writes())
    result = backend.apply(full([PA], backend.inventory()))
    assert set(result.deleted) == {ObjectId.of(o) for o in (VS, SE, DR)}
    deletes = [p.rsplit("/", 2)[-2] for m, p in api.writes()[first:] if m == "DELETE"]
    assert deletes == ["virtualservices", "serviceentries", "destinationrules"]
    assert backend.inventory() == {ObjectId.of(PA)}


def test_prune_needs_inventory_and_live_labels(
    api: KubeApiStandIn, backend: KubernetesBackend
) -> None:
    backend.apply(ChangeSet((VS, DR)))
    api.put(istio("VirtualService", "copied-labels", {"hosts": ["x"]}))  # never applied by us
    api.edit(
        "networking.istio.io/v1",
        "DestinationRule",
        NS,
        "reviews",
        lambda o: o["metadata"].update(labels={"team": "theirs"}),
    )
    stranger = ObjectId.of(istio("VirtualService", "copied-labels", {}))
    result = backend.apply(full([], backend.inventory() | {stranger}))
    assert result.deleted == (ObjectId.of(VS),)
    assert "inventory" in result.skipped[stranger]
    assert "ownership labels" in result.skipped[ObjectId.of(DR)]
    assert api.get("networking.istio.io/v1", "VirtualService", NS, "copied-labels") is not None
    assert api.get("networking.istio.io/v1", "DestinationRule", NS, "reviews") is not None
    assert api.get("networking.istio.io/v1", "VirtualService", NS, "reviews") is None


@pytest.mark.parametrize("status", [409, 422])
def test_conflict_and_invalid_are_that_objects_error(
    api: KubeApiStandIn, backend: KubernetesBackend, status: int
) -> None:
    backend.apply(ChangeSet((SE,)))
    message = f"admission webhook said no ({status})"
    api.fail("PATCH", f"{VS_PATH}/reviews", status, times=5, message=message)
    result = backend.apply(ChangeSet((DR, VS), (ObjectId.of(SE),)))
    assert result.errors == {ObjectId.of(VS): message}
    assert result.applied == (ObjectId.of(DR),)
    assert result.deleted == () and "deferred" in result.skipped[ObjectId.of(SE)]
    attempts = [p for m, p in api.writes() if p == f"{VS_PATH}/reviews"]
    assert len(attempts) == 1  # never retried
    assert api.get("networking.istio.io/v1", "ServiceEntry", NS, "reviews-global") is not None


def test_throttling_and_server_errors_are_retried(
    api: KubeApiStandIn, backend: KubernetesBackend
) -> None:
    api.fail("PATCH", f"{VS_PATH}/reviews", 429, times=1, retry_after=1)
    api.fail("PATCH", f"{DR_PATH}/reviews", 500, times=2)
    result = backend.apply(ChangeSet((VS, DR)))
    assert result.ok and set(result.applied) == {ObjectId.of(VS), ObjectId.of(DR)}
    assert len([p for m, p in api.writes() if p == f"{VS_PATH}/reviews"]) == 2
    assert len([p for m, p in api.writes() if p == f"{DR_PATH}/reviews"]) == 3


def test_a_missing_namespace_fails_only_that_object(backend: KubernetesBackend) -> None:
    elsewhere = {**VS, "metadata": {**VS["metadata"], "namespace": "nowhere"}}
    result = backend.apply(ChangeSet((elsewhere, DR)))
    assert result.applied == (ObjectId.of(DR),)
    assert "nowhere" in result.errors[ObjectId.of(elsewhere)]


def test_drift_when_someone_else_edits_or_deletes(
    api: KubeApiStandIn, backend: KubernetesBackend
) -> None:
    drifts: queue.Queue[Drift] = queue.Queue()
    backend.apply(ChangeSet((VS, DR)))
    backend.watch_drift(lambda batch: [drifts.put(d) for d in batch])
    assert backend.wait_synced(WAIT)
    # Our own writes while watching are not drift: an update, a no-op and a new object.
    backend.apply(ChangeSet((istio("VirtualService", "reviews", {"hosts": ["reviews", "b"]}),)))
    backend.apply(ChangeSet((istio("VirtualService", "reviews", {"hosts": ["reviews", "b"]}),)))
    backend.apply(ChangeSet((SE,)))
    # Someone else adds a label of their own: not drift either.
    api.edit(
        "networking.istio.io/v1",
        "VirtualService",
        NS,
        "reviews",
        lambda o: o["metadata"]["labels"].update(team="theirs"),
    )
    api.edit(
        "networking.istio.io/v1",
        "VirtualService",
        NS,
        "reviews",
        lambda o: o["spec"].update(hosts=["evil"]),
    )
    assert drifts.get(timeout=WAIT) == Drift(ObjectId.of(VS), "modified")
    api.remove("networking.istio.io/v1", "DestinationRule", NS, "reviews")
    assert drifts.get(timeout=WAIT) == Drift(ObjectId.of(DR), "deleted")
    # Correcting the drift is our own write again.
    backend.apply(ChangeSet((VS, DR)))
    api.remove("networking.istio.io/v1", "ServiceEntry", NS, "reviews-global")
    assert drifts.get(timeout=WAIT) == Drift(ObjectId.of(SE), "deleted")
    backend.close()
    assert drifts.empty()


def test_drift_relist_after_410_reports_what_was_missed(
    api: KubeApiStandIn, backend: KubernetesBackend
) -> None:
    drifts: queue.Queue[Drift] = queue.Queue()
    backend.apply(ChangeSet((VS,)))
    backend.watch_drift(lambda batch: [drifts.put(d) for d in batch])
    assert backend.wait_synced(WAIT)
    api.expire_history()
    api.remove("networking.istio.io/v1", "VirtualService", NS, "reviews")
    assert drifts.get(timeout=WAIT) == Drift(ObjectId.of(VS), "deleted")


def test_aborting_a_watch_after_it_ended_is_harmless(api: KubeApiStandIn) -> None:
    """`close` may read a watch's abort just before the stream ends on its own (the
    server's timeout); calling it afterwards must not raise (it raised EBADF, or "already
    released to the pool", and left the informer thread running)."""
    client = api.client()
    try:
        registered: list[Any] = []
        events = Rest(client).watch("/api/v1/services", [], 1, registered.append)
        seen = list(events)  # the server ends the watch after 1 s
        assert [e["object"]["metadata"]["name"] for e in seen] == ["reviews"]
        abort, cleared = registered
        assert callable(abort) and cleared is None
        abort()
        abort()
    finally:
        client.close()

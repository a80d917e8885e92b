"""DirectoryBackend: discovery, apply, the prune rule, drift and input watches on a real folder."""

from __future__ import annotations

import queue
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.backends import Drift, Unavailable
from controller.backends.directory import SETTLE_SECONDS, DirectoryBackend
from gitops import rendering
from gitops.discovery import DISCOVERED_KINDS
from gitops.objects import OWNER_LABELS, ObjectId
from gitops.plan import ChangeSet, full

SEED = Path(__file__).parents[3] / "deploy" / "demo" / "clusters" / "cluster1"
WAIT = 10.0  # generous: events normally arrive in milliseconds


def istio(kind: str, name: str, spec: Any, namespace: str = "bookinfo-backends") -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "labels": dict(OWNER_LABELS)},
        "spec": spec,
    }


DR = istio("DestinationRule", "reviews", {"host": "reviews", "subsets": [{"name": "v1"}]})
VS = istio("VirtualService", "reviews", {"hosts": ["reviews"]})


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[DirectoryBackend]:
    root = tmp_path / "cluster1"
    shutil.copytree(SEED, root)
    b = DirectoryBackend("cluster1", root, tmp_path / "state")
    yield b
    b.close()


def test_discover_returns_the_discovered_kinds_of_every_file(backend: DirectoryBackend) -> None:
    seeded = [
        d
        for p in SEED.rglob("*.yaml")
        for d in yaml.safe_load_all(p.read_text())
        if isinstance(d, dict)
    ]
    backend.apply(ChangeSet((VS,)))  # outputs in the folder are not inputs
    found = backend.discover()
    ids = [ObjectId.of(o) for o in found]
    assert sorted(ids) == ids
    assert set(ids) == {
        ObjectId.of(d)
        for d in seeded
        if (ObjectId.of(d).group, ObjectId.of(d).version, d["kind"]) in set(DISCOVERED_KINDS)
    }
    assert {i.kind for i in ids} >= {"Namespace", "Service", "Deployment", "Node"}


def test_discover_of_a_missing_folder_is_unavailable_not_empty(tmp_path: Path) -> None:
    with pytest.raises(Unavailable):
        DirectoryBackend("c", tmp_path / "nope", tmp_path / "state").discover()


def test_apply_writes_one_deterministic_file_per_object(backend: DirectoryBackend) -> None:
    result = backend.apply(ChangeSet((VS, DR)))
    assert result.applied == (ObjectId.of(DR), ObjectId.of(VS))  # make-before-break
    path = backend.root / "bookinfo-backends" / "VirtualService.reviews.yaml"
    assert path.read_text() == rendering.dump(VS)
    assert backend.inventory() == {ObjectId.of(VS), ObjectId.of(DR)}
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp files


def test_a_repeated_full_apply_rewrites_only_what_differs(backend: DirectoryBackend) -> None:
    vs = istio("VirtualService", "reviews", {"hosts": ["reviews"]})
    dr = istio("DestinationRule", "reviews", {"host": "reviews"})
    backend.apply(full([vs, dr], backend.inventory()))
    files = {p.name: p for p in backend.root.rglob("*.yaml") if p.name[0] in "VD"}
    before = {name: p.stat().st_ino for name, p in files.items()}
    changed = istio("VirtualService", "reviews", {"hosts": ["reviews", "reviews.global"]})
    result = backend.apply(full([changed, dr], backend.inventory()))
    after = {name: p.stat().st_ino for name, p in files.items()}
    assert set(result.applied) == {ObjectId.of(changed), ObjectId.of(dr)}
    # The DestinationRule file is the same file (not rewritten); the VirtualService is new.
    assert after["DestinationRule.reviews.yaml"] == before["DestinationRule.reviews.yaml"]
    assert after["VirtualService.reviews.yaml"] != before["VirtualService.reviews.yaml"]
    assert "reviews.global" in files["VirtualService.reviews.yaml"].read_text()
    # Someone edits a file: the same desired object is written again, not skipped.
    path = files["DestinationRule.reviews.yaml"]
    path.write_text(path.read_text().replace("host: reviews", "host: hacked"))
    backend.apply(full([changed, dr], backend.inventory()))
    assert path.read_text() == rendering.dump(dr)


def test_apply_refuses_names_that_would_leave_the_folder(backend: DirectoryBackend) -> None:
    evil = istio("VirtualService", "../../escape", {})
    result = backend.apply(ChangeSet((evil, VS)))
    assert result.applied == (ObjectId.of(VS),)
    assert not (backend.root.parent / "escape.yaml").exists()


def test_prune_deletes_only_inventoried_labelled_absent_objects(backend: DirectoryBackend) -> None:
    backend.apply(ChangeSet((VS, DR)))
    stranger = istio("VirtualService", "stranger", {"hosts": ["x"]})  # labelled, never applied
    stranger_file = backend.root / "bookinfo-backends" / "VirtualService.stranger.yaml"
    stranger_file.write_text(rendering.dump(stranger))
    # Someone replaced our DestinationRule with an unlabelled one of the same name.
    dr_file = backend.root / "bookinfo-backends" / "DestinationRule.reviews.yaml"
    unlabelled = {**DR, "metadata": {"name": "reviews", "namespace": "bookinfo-backends"}}
    dr_file.write_text(rendering.dump(unlabelled))

    inventory = backend.inventory() | {ObjectId.of(stranger)}
    result = backend.apply(full([], inventory))
    assert result.deleted == (ObjectId.of(VS),)
    assert not (backend.root / "bookinfo-backends" / "VirtualService.reviews.yaml").exists()
    assert dr_file.exists() and stranger_file.exists()
    assert "ownership labels" in result.skipped[ObjectId.of(DR)]
    assert "inventory" in result.skipped[ObjectId.of(stranger)]
    assert backend.inventory() == {ObjectId.of(DR)}  # a survivor stays tracked


def test_a_lost_inventory_prunes_nothing(backend: DirectoryBackend, tmp_path: Path) -> None:
    backend.apply(ChangeSet((VS,)))
    (tmp_path / "state" / "inventory-cluster1.json").write_text("{not json")
    result = backend.apply(ChangeSet((), (ObjectId.of(VS),)))
    assert result.deleted == ()
    assert (backend.root / "bookinfo-backends" / "VirtualService.reviews.yaml").exists()


def test_drift_on_edit_and_delete_but_not_on_own_writes(backend: DirectoryBackend) -> None:
    drifts: queue.Queue[Drift] = queue.Queue()
    backend.apply(ChangeSet((VS, DR)))
    backend.watch_drift(lambda batch: [drifts.put(d) for d in batch])
    # Our own writes while watching: an update and a new object.
    backend.apply(ChangeSet((istio("VirtualService", "reviews", {"hosts": ["reviews", "b"]}),)))
    backend.apply(ChangeSet((istio("Gateway", "gw", {"servers": []}),)))
    vs_file = backend.root / "bookinfo-backends" / "VirtualService.reviews.yaml"
    vs_file.write_text(vs_file.read_text().replace("- b", "- evil"))
    assert drifts.get(timeout=WAIT) == Drift(ObjectId.of(VS), "modified")
    (backend.root / "bookinfo-backends" / "DestinationRule.reviews.yaml").unlink()
    assert drifts.get(timeout=WAIT) == Drift(ObjectId.of(DR), "deleted")
    backend.close()
    assert drifts.empty()  # nothing for our own writes, and each change reported once


def test_input_files_changing_produce_input_deltas(backend: DirectoryBackend) -> None:
    backend.discover()
    deltas: queue.Queue[tuple[list[dict[str, Any]], list[ObjectId]]] = queue.Queue()
    backend.watch_inputs(lambda ups, gone: deltas.put((ups, gone)))
    services = backend.root / "bookinfo-backends" / "services.yaml"
    docs = [d for d in yaml.safe_load_all(services.read_text()) if d]
    extra = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "extra", "namespace": "bookinfo-backends"},
        "spec": {"ports": [{"port": 80}]},
    }
    services.write_text(yaml.safe_dump_all([*docs, extra]))
    upserts, removed = deltas.get(timeout=WAIT)
    assert [ObjectId.of(o).name for o in upserts] == ["extra"] and removed == []
    services.unlink()
    upserts, removed = deltas.get(timeout=WAIT)
    assert upserts == []
    assert {r.name for r in removed} == {d["metadata"]["name"] for d in [*docs, extra]}


def test_our_writes_racing_the_settled_read_of_earlier_ones_are_not_drift(
    backend: DirectoryBackend,
) -> None:
    """Each apply rewrites the files just as the watcher reads them for the apply before
    (its settle time). Reading the old bytes and then comparing them with the new write's
    digest reported drift for our own writes (and selfHeal resent the whole set)."""
    drifts: list[Drift] = []
    backend.watch_drift(drifts.extend)
    names = [f"svc-{i}" for i in range(40)]
    for attempt in range(12):
        routes = [
            istio("VirtualService", n, {"hosts": [n], "gateways": [str(attempt)]}) for n in names
        ]
        backend.apply(ChangeSet(tuple(routes)))
        time.sleep(SETTLE_SECONDS * (0.9 + 0.02 * attempt))  # lands on the previous settle
    time.sleep(SETTLE_SECONDS * 3)
    backend.close()
    assert drifts == []

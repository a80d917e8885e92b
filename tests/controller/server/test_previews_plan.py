"""What a previews pass recomputes (`controller.server.previews.plan`, pure): a moved head,
base or cluster set at once; new discovery inputs alone at most once per interval. And the
inputs version it reads (`Cluster.inputs_version`), which only real changes move."""

from __future__ import annotations

from typing import Any

from controller.server.cluster import Cluster
from controller.server.previews import Done, Inputs, plan

A, B, C, D, E, F, N, Z = (ch * 40 for ch in "abcdef9z")
INPUTS: Inputs = (("cluster1", 3), ("cluster2", 5))
CLUSTERS = ("cluster1", "cluster2")
INTERVAL = 30.0


def done(head: str, at: float = 100.0, inputs: Inputs = INPUTS, base: str = B) -> Done:
    return Done((head, base, CLUSTERS), inputs, at)


def test_plan_recomputes_at_once_refs_whose_head_base_or_clusters_changed() -> None:
    known = {
        "refs/pull/1/head": done(A),
        "refs/pull/2/head": done(C),
        "refs/pull/3/head": done(D),
        "refs/pull/4/head": None,  # seen, never computed
    }
    refs = {
        "refs/pull/1/head": A,  # unchanged
        "refs/pull/2/head": E,  # new head
        "refs/pull/4/head": F,
        "refs/pull/5/head": N,  # new ref
    }
    # 1s after the last computation: well inside the interval, which only inputs wait for.
    found = plan(known, refs, B, INPUTS, now=101.0, interval=INTERVAL)
    assert found.todo == ("refs/pull/2/head", "refs/pull/4/head", "refs/pull/5/head")
    assert found.gone == ("refs/pull/3/head",)
    assert found.waiting == ()
    # The base moved: every open ref is due; a new cluster set likewise (even with the
    # remaining cluster's inputs unchanged).
    assert plan(known, refs, Z, INPUTS, now=101.0, interval=INTERVAL).todo == tuple(sorted(refs))
    fewer = plan(known, refs, B, (("cluster1", 3),), now=101.0, interval=INTERVAL)
    assert "refs/pull/1/head" in fewer.todo


def test_new_inputs_alone_recompute_once_the_interval_since_the_last_computation_passed() -> None:
    known = {"refs/pull/1/head": done(A, at=100.0), "refs/pull/2/head": done(C, at=90.0)}
    refs = {"refs/pull/1/head": A, "refs/pull/2/head": C}
    moved: Inputs = (("cluster1", 4), ("cluster2", 5))  # an input delta on cluster1

    # Nothing moved: nothing to do, whatever the time.
    same = plan(known, refs, B, INPUTS, now=1000.0, interval=INTERVAL)
    assert (same.todo, same.waiting) == ((), ())

    # Inputs moved 10s after pull 1's computation and 20s after pull 2's: both wait.
    early = plan(known, refs, B, moved, now=110.0, interval=INTERVAL)
    assert early.todo == ()
    assert early.waiting == ("refs/pull/1/head", "refs/pull/2/head")

    # 30s after pull 2's computation: it is due; pull 1 (computed later) still waits.
    later = plan(known, refs, B, moved, now=120.0, interval=INTERVAL)
    assert later.todo == ("refs/pull/2/head",)
    assert later.waiting == ("refs/pull/1/head",)

    # A head move on a waiting ref is due at once, like any head move.
    pushed = plan(known, {**refs, "refs/pull/1/head": E}, B, moved, now=110.0, interval=INTERVAL)
    assert pushed.todo == ("refs/pull/1/head",)
    assert pushed.waiting == ("refs/pull/2/head",)

    at_interval = plan(known, refs, B, moved, now=130.0, interval=INTERVAL)
    assert at_interval.todo == ("refs/pull/1/head", "refs/pull/2/head")
    assert at_interval.waiting == ()


def service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "bookinfo"},
        "spec": {"ports": [{"port": 9080}]},
    }


def test_inputs_version_moves_when_a_snapshot_changes_the_inputs_only() -> None:
    cluster = Cluster("cluster1")
    cluster.set_inputs([service("ratings")], complete=True, updated=1.0)
    first = cluster.inputs_version
    assert first > 0
    # An agent's reconnect resends the same snapshot: nothing to recompute.
    cluster.set_inputs([service("ratings")], complete=True, updated=2.0)
    assert cluster.inputs_version == first
    cluster.set_inputs([service("ratings"), service("nosuch")], complete=True, updated=3.0)
    assert cluster.inputs_version == first + 1

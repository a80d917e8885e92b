"""Safe mode decisions (gitops.safemode): who blocks translation, who gets pushes."""

from __future__ import annotations

from gitops.safemode import Warming, decide

REGISTERED = ("cluster1", "cluster2", "cluster3")


def test_safe_mode_waits_for_every_registered_cluster_and_names_them() -> None:
    gate = decide(REGISTERED, (), {"cluster1"}, Warming(100.0, True, 0), now=10_000.0)
    assert not gate.translate and gate.active
    assert gate.awaited == ("cluster2", "cluster3")
    assert "cluster2, cluster3" in gate.reason
    assert gate.window_expires is None  # safe mode waits indefinitely


def test_skip_warming_clusters_are_not_awaited_and_get_no_pushes_until_they_push() -> None:
    gate = decide(REGISTERED, {"cluster3"}, {"cluster1", "cluster2"}, Warming(0, True, 0), 1.0)
    assert gate.translate and not gate.active
    assert gate.push_to == {"cluster1", "cluster2"}
    assert gate.awaited == ()


def test_start_window_waits_then_translates_without_the_missing_cluster() -> None:
    warming = Warming(since=100.0, safe_mode=False, window=30)
    waiting = decide(REGISTERED, (), {"cluster1", "cluster2"}, warming, now=110.0)
    assert not waiting.translate and waiting.window_expires == 130.0
    over = decide(REGISTERED, (), {"cluster1", "cluster2"}, warming, now=130.0)
    assert over.translate and not over.active
    assert over.push_to == {"cluster1", "cluster2"}  # cluster3's config stays frozen
    assert "cluster3" in over.reason


def test_window_zero_translates_at_once() -> None:
    gate = decide(REGISTERED, (), (), Warming(5.0, False, 0), now=5.0)
    assert gate.translate and gate.push_to == frozenset()


def test_a_warm_cache_translates_and_still_pushes_only_to_clusters_with_snapshots() -> None:
    gate = decide(REGISTERED, (), {"cluster2"}, None, now=0.0)
    assert gate.translate and gate.warmed
    assert gate.push_to == {"cluster2"}


def test_unregistered_clusters_never_get_pushes() -> None:
    gate = decide(("cluster1",), (), {"cluster1", "rogue"}, None, 0.0)
    assert gate.push_to == {"cluster1"}

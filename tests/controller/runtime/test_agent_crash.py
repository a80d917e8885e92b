"""End to end: a `gitops agent` process killed -9 in the middle of an apply converges when
it starts again, leaving no orphans and touching nothing it does not own.

The agent runs as a real subprocess (`Installation.spawn_agent`) so the kill leaves
exactly what a crash leaves: some files of the change written, the applied version and
the inventory as they were last saved.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.runtime import Installation, commit, owned_files, wait_until

#: Enough RouteTables that applying their VirtualServices takes a while (one fsync each).
ROUTES = 300

UNOWNED = {
    # An input file the agent discovers from, and a look-alike of an output the agent did
    # not write (no ownership labels): neither may be touched.
    "bookinfo-backends/extra-service.yaml": (
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: extra\n  namespace: bookinfo-backends\n"
        "spec:\n  ports:\n  - name: http\n    port: 8080\n"
    ),
    "bookinfo-backends/VirtualService.mine.yaml": (
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: mine\n"
        "  namespace: bookinfo-backends\nspec:\n  hosts:\n  - mine.example\n"
    ),
}


def _route_tables(count: int, start: int = 0) -> str:
    docs = [
        f"""apiVersion: networking.gloo.solo.io/v2
kind: RouteTable
metadata:
  name: extra-{i}
  namespace: bookinfo-backends
spec:
  hosts:
  - extra-{i}.bookinfo.internal
  workloadSelectors:
  - selector:
      labels:
        app: reviews
  http:
  - name: extra-{i}
    forwardTo:
      destinations:
      - ref:
          name: ratings
          namespace: bookinfo-backends
        port:
          number: 9080
"""
        for i in range(start, start + count)
    ]
    return "---\n".join(docs)


def _extra(root: Path) -> int:
    return sum(1 for rel in owned_files(root) if "-extra-" in rel)


def test_agent_killed_mid_apply_converges_on_restart_without_orphans(
    install: Installation,
) -> None:
    server = install.start_server()
    root = install.cluster_dir("cluster1")
    for rel, text in UNOWNED.items():
        (root / rel).write_text(text)
    install.spawn_agent("cluster1")
    install.start_agent("cluster2")
    install.wait_synced(timeout=30)
    before = len(owned_files(root))

    commit(install.repo, "many routes", {"bookinfo/routes/extra.yaml": _route_tables(ROUTES)})
    server.reload()
    wait_until(lambda: _extra(root) > 0, what="the agent to start applying the change")
    install.kill_agent("cluster1")
    partial = _extra(root)
    assert partial > 0

    install.spawn_agent("cluster1")
    install.wait_synced(timeout=30)
    # Exactly the published set: everything the change adds, nothing else owned.
    assert install.converged("cluster1") and install.converged("cluster2")
    added = sum(1 for rel in install.published_files("cluster1") if "-extra-" in rel)
    assert _extra(root) == added >= ROUTES
    assert len(owned_files(root)) == before + added
    for rel, text in UNOWNED.items():
        assert (root / rel).read_text() == text


def test_objects_written_before_a_kill_are_pruned_when_the_change_is_reverted(
    install: Installation,
) -> None:
    server = install.start_server()
    root = install.cluster_dir("cluster1")
    install.spawn_agent("cluster1")
    install.start_agent("cluster2")
    install.wait_synced(timeout=30)
    extra = "bookinfo/routes/extra.yaml"
    commit(install.repo, "many routes", {extra: _route_tables(ROUTES)})
    server.reload()
    wait_until(lambda: _extra(root) > 0, what="the agent to start applying the change")
    install.kill_agent("cluster1")
    version = server.fleet.clusters["cluster1"].version
    commit(install.repo, "revert", {extra: None})
    server.reload()
    wait_until(lambda: server.fleet.clusters["cluster1"].version > version, what="a new publish")

    install.spawn_agent("cluster1")
    install.wait_synced(timeout=30)
    assert _extra(root) == 0
    assert install.converged("cluster1")

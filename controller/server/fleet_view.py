"""The HTTP endpoints' view of the fleet (`controller.server.view.ServerView`).

`gitops serve` (`controller/server/app.py`) hands one `FleetView` to the health and API
apps; tests read the same view. It only reads the `Fleet`'s state, under its lock.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.server.cluster import Cluster
from controller.server.fleet import Fleet
from controller.server.view import ClusterState, SafeModeState


@dataclass
class FleetView:
    """Readiness, safe mode and per-cluster state, from a `Fleet`."""

    fleet: Fleet

    def redis_ok(self) -> bool:
        return self.fleet.redis_up

    def safe_mode(self) -> SafeModeState:
        g = self.fleet.gate
        return SafeModeState(g.active, g.awaited, g.window_expires, g.reason)

    def clusters(self) -> list[ClusterState]:
        """Every registered cluster and every cluster the server has heard from."""
        fleet = self.fleet
        with fleet.lock:
            gate = fleet.gate
            names = set(fleet.clusters)
            if fleet.bundle is not None:
                names |= {o.name for o in fleet.bundle.of_kind("KubernetesCluster")}
            out = []
            for name in sorted(names):
                c = fleet.clusters.get(name) or Cluster(name)
                applied = c.applied.rpartition(":")[2] if c.applied else ""
                out.append(
                    ClusterState(
                        name=name,
                        connected=c.push_streams > 0 or c.pull_streams > 0,
                        last_snapshot=c.last_snapshot,
                        output_version=c.version or None,
                        applied_version=int(applied) if applied.isdigit() else None,
                        drift=c.drift,
                        awaited=name in gate.awaited and gate.active,
                        pushes_frozen=name in gate.awaited and not gate.active,
                        objects=len(c.outputs),
                        errors=len(c.errors),
                        published_revision=c.published_revision,
                        applied_revision=c.revisions.get(c.applied or ""),
                        refused=c.refused,
                        refused_revision=c.refused_revision if c.refused else None,
                        held_revision=c.held_revision,
                    )
                )
            return out

    def leader(self) -> bool:
        return self.fleet.leading

    def config_revision(self) -> str | None:
        bundle = self.fleet.bundle
        return bundle.revision if bundle is not None else None

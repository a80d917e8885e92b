"""Several server replicas on one Redis: who leads, and how the others follow.

`gitops serve` (`controller/server/app.py`) gives its `Fleet` a `controller.store.Lease`
and starts a `Renewer`; the fleet's worker calls `step` on every tick
(`Fleet.run`). DESIGN.md section 8: one leader translates and publishes; every replica
serves relay streams and HTTP.

- The `Renewer` thread renews the lease every third of it, or, while this replica is a
  follower, tries to take it. A failed renewal demotes the fleet at once (`demote`); the
  Store's fenced writes refuse whatever is still in flight (`NotLeader`).
- `step` (the worker, each tick): promotes a replica that got the lock (`promote`: load
  inputs and outputs as Redis holds them, forget the last translation, reconcile), demotes
  one whose lease ran out on its own clock, then `follow`s the others.
- `follow` is the one mechanism by which replicas see each other's writes: per-cluster
  marks in Redis (`controller.store.leader.marks`), compared with what this replica holds.
  An input write by another replica (its `updated` time differs) reloads that cluster's
  inputs and marks the fleet dirty, so the leader sees what agents push to followers. A
  new output version, on a follower, loads the cluster's outputs and wakes its Pull
  handlers. An agent's `applied`, drift and errors recorded by another replica are adopted
  for clusters with no Pull stream here, so the leader's commit statuses see ACKs given to
  followers.
- Triggers a follower received (a webhook, `POST /api/sync`) reach the leader the same
  way: the follower `forward`s them to the `gitops#triggers` stream, and the leader's
  `follow` reads that stream in the same round trip as the marks and hands each entry to
  `Fleet.on_forwarded` (the Git loop, `controller/server/git_loop.py`), which fires the
  leader's own trigger; then it deletes the entries. An entry no leader has acted on yet
  waits for the next one (a replica promoted after a leaderless gap acts on it).
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import replace
from typing import TYPE_CHECKING

import redis

from controller.server.cluster import Cluster
from controller.server.published import Outputs
from controller.store import Lease, StoreError, keys, leader
from controller.store.leader import marks

if TYPE_CHECKING:
    from controller.server.fleet import Fleet

__all__ = ["Renewer", "demote", "follow", "forward", "promote", "step"]

log = logging.getLogger(__name__)


class Renewer:
    """Keeps the lease: renews it while held, tries to take it while not."""

    def __init__(self, lease: Lease, fleet: Fleet) -> None:
        self.lease, self.fleet = lease, fleet
        self._thread: threading.Thread | None = None

    def start(self, stop: threading.Event) -> None:
        self._thread = threading.Thread(
            target=self._run, args=(stop,), name="leader-lease", daemon=True
        )
        self._thread.start()

    def _run(self, stop: threading.Event) -> None:
        # A third of the lease: two renewals may fail in a row before it runs out.
        while not stop.wait(self.lease.lease / 3):
            self.tick()

    def tick(self) -> None:
        if self.lease.valid():
            if not self.lease.renew():
                demote(self.fleet, "the leader lease was not renewed")
        elif self.lease.acquire():
            log.info("replica %s took the leader lock", self.lease.holder)
            self.fleet.dirty.set()  # the worker promotes the fleet

    def stop(self) -> None:
        """After the worker stopped: give the lock up so another replica takes over now."""
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.fleet.leading = False
        self.lease.release()


def step(fleet: Fleet) -> None:
    """The worker's per-tick look at leadership and at the other replicas' writes."""
    lease = fleet.lease
    if lease is None:
        return
    if fleet.leading and not lease.valid():
        demote(fleet, "the leader lease ran out")
    elif not fleet.leading and lease.valid():
        promote(fleet, lease)
    follow(fleet)


def promote(fleet: Fleet, lease: Lease) -> None:
    """Become the leader: take Redis' inputs and outputs as they are, then reconcile."""
    fleet.load_state()
    fleet.forget_translation()
    fleet.store.fence = lease.fence
    fleet.leading = True
    fleet.metrics.leader(True)
    log.info("replica %s leads (fencing token %d)", lease.holder, lease.fence.token)


def demote(fleet: Fleet, why: str) -> None:
    """Stop publishing at once (any thread); the replica follows the new leader."""
    if fleet.leading:
        log.warning("no longer the leader (%s): following", why)
    fleet.leading = False
    fleet.metrics.leader(False)


def forward(fleet: Fleet, reason: str, approve: str | None = None) -> bool:
    """On a follower, hand a trigger (`webhook:<provider>`, `sync` with the commit it
    approved) to the leader; False on the leader (or a single replica), which acts on it
    itself. Raises `StoreError` when Redis did not take it."""
    lease = fleet.lease
    if lease is None or fleet.leading:
        return False
    try:
        entry = leader.forward(fleet.store.client, lease.holder, reason, approve)
    except redis.RedisError as exc:
        raise StoreError(
            f"{reason} not forwarded to the leader (Redis XADD {keys.TRIGGERS}: "
            f"{type(exc).__name__})"
        ) from exc
    log.info("forwarded %s to the leader (%s entry %s)", reason, keys.TRIGGERS, entry)
    return True


def follow(fleet: Fleet) -> None:
    """Load what other replicas wrote (see the module docstring)."""
    act = fleet.on_forwarded if fleet.leading else None
    found = marks(fleet.store, forwarded=act is not None)
    with fleet.lock:
        stale_inputs = [
            name
            for name, (_, updated) in sorted(found.inputs.items())
            if (c := fleet.clusters.get(name)) is None or c.last_snapshot != updated
        ]
        stale_outputs = (
            []
            if fleet.leading
            else [
                name
                for name, version in sorted(found.outputs.items())
                if (c := fleet.clusters.get(name)) is None or c.version != version
            ]
        )
    for name in stale_inputs:
        _reload_inputs(fleet, name, *found.inputs[name])
    if stale_outputs:
        # Read and encoded outside the lock: Pull handlers wait on it.
        loaded = [fleet.store.outputs(name) for name in stale_outputs]
        new = {p.cluster: (Outputs.loaded(p.version, p.objects), p.revision) for p in loaded}
        with fleet.lock:
            if not fleet.leading:  # promoted meanwhile: the leader's own state stands
                for name, (outputs, revision) in new.items():
                    c = fleet._cluster(name)
                    adopted = adopt(c.published, outputs)
                    c.set_published(adopted, revision, fleet.wire_version(adopted.version))
                fleet.changed.notify_all()
    with fleet.lock:
        for name, facts in found.agents.items():
            c = fleet.clusters.get(name)
            if c is not None and c.pull_streams == 0:
                _adopt_facts(c, facts)
    if act is not None and found.forwarded:
        for entry in found.forwarded:
            approve = f" (approve {entry.approve})" if entry.approve else ""
            log.info("trigger forwarded by %s: %s%s", entry.sender, entry.reason, approve)
            act(entry)
        leader.forwarded_done(fleet.store.client, [entry.id for entry in found.forwarded])


def _reload_inputs(fleet: Fleet, name: str, generation: str, updated: float) -> None:
    # Read and applied under the lock: a Push handler's own write, stored in Redis after
    # this read, updates memory after it too, never before (its memory update waits).
    # `updated` may be older than what is read: the next look reloads once more.
    with fleet.lock:
        objects = fleet.store.inputs(name)
        complete = generation == fleet.generation
        fleet._cluster(name).set_inputs(objects, complete=complete, updated=updated)
        fleet.dirty.set()


def adopt(old: Outputs, new: Outputs) -> Outputs:
    """The leader's new version as a follower holds it: computed from `old` (what this
    replica's agents may have applied), so they get a delta, not the whole set."""
    if not old.version or new.version == old.version:
        return new
    changed = tuple(sorted(oid for oid, b in new.encoded.items() if old.encoded.get(oid) != b))
    removed = tuple(sorted(set(old.objects) - set(new.objects)))
    return replace(new, base=old.version, changed=changed, removed=removed)


def _adopt_facts(c: Cluster, facts: dict[str, str]) -> None:
    if applied := facts.get("applied"):
        c.applied = applied
    if (drift := facts.get("drift", "")).isdigit():
        c.drift = int(drift)
    try:
        errors = json.loads(facts.get("error_details") or "{}")
    except ValueError:
        return
    if isinstance(errors, dict):
        c.errors = {str(k): str(v) for k, v in errors.items()}

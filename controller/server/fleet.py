"""The management server's state: config and inputs in, published outputs out.

`gitops serve` holds one `Fleet`. The relay's Push handler hands it what agents discover
(`replace_inputs`, `update_inputs`); the config source hands it bundles (`set_config`);
`reconcile` gates on safe mode (`gitops.safemode`), translates incrementally
(`gitops.translate.incremental.Session`), plans each cluster's change under the sync
policy, keeping the last good outputs of what a commit could not state
(`controller/server/sync_policy.py`, `gitops.last_good`), and publishes each changed
cluster to Redis (`controller.store`); Pull handlers wait on `wait_for` and stream what changed
(`controller/server/streams.py`). `controller/server/fleet_view.py` reads it for the HTTP
endpoints.

Threads: relay handlers run in gRPC's pool, reconciles in one worker (`run`). One lock
guards the state; Redis calls that block for long (full snapshot writes) happen outside it.

Several replicas may share one Redis (`gitops.leader`): only the one holding the leader
lock (`lease`) translates and publishes; the others follow what it wrote and serve their
agents from it (`controller/server/replicas.py`). Without a lease the fleet always leads.

Versions on the wire are `<generation>:<n>`: after the cache is lost the counter starts
again, and the generation part makes every agent's old version unknown, so it gets a
full snapshot instead of a delta computed from the wrong base.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from controller.server import replicas, sync_policy
from controller.server.cluster import Cluster, Translated
from controller.server.metrics import Metrics
from controller.server.published import Change, Outputs
from controller.store import CacheLost, Lease, NotLeader, OutputWrite, Store
from controller.store.leader import Forwarded
from gitops import discovery, reports, safemode
from gitops.bundle import Bundle
from gitops.helm.gitops_block import Sync
from gitops.objects import ObjectId
from gitops.translate.incremental import Session

log = logging.getLogger(__name__)


class Fleet:
    """Server state and the reconcile step (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        metrics: Metrics,
        *,
        safe_mode: bool,
        safe_start_window: float,
        sync: Sync | None = None,
        clock: Callable[[], float] = time.time,
        lease: Lease | None = None,
    ) -> None:
        self.store = store
        #: The leader lock shared with other replicas (None: the only replica).
        self.lease = lease
        #: This replica translates and publishes; followers serve what the leader wrote.
        self.leading = lease is None or lease.valid()
        if lease is not None:
            store.fence = lease.fence  # token 0 until acquired: fenced writes refused
        self.metrics = metrics
        #: `gitops.sync`: prune, selfHeal, allowEmpty, failOnInvalid.
        self.sync = sync or Sync()
        self.safe_mode_setting = safe_mode
        self.window = safe_start_window
        self.clock = clock
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.dirty = threading.Event()
        #: Set when something statuses summarise changed (a translation, a publish, an ACK
        #: or NACK, drift): wakes the status reporter before its next tick.
        self.news = threading.Event()
        self.bundle: Bundle | None = None
        self.session: Session | None = None
        self.clusters: dict[str, Cluster] = {}
        self.gate = safemode.decide((), (), (), None, clock())
        self.warming: safemode.Warming | None = None
        self.generation = ""
        self.redis_up = True
        self._cancel_push: dict[str, list[Callable[[], None]]] = {}
        self._last_shape: tuple[bool, frozenset[Any]] | None = None
        self._reports: dict[tuple[str, str, str], dict[str, Any]] | None = None
        #: The last translation's commit, reports and diagnostics (for commit statuses).
        self.translated: Translated | None = None
        #: The commit an operator asked to sync (`automated: false`).
        self.approved: str | None = None
        #: Acts on a trigger a follower forwarded, while this replica leads (the Git loop
        #: sets it; `controller/server/replicas.py` calls it). None: nothing reads them.
        self.on_forwarded: Callable[[Forwarded], None] | None = None
        self._start()
        metrics.leader(self.leading)

    # -- start and cache loss ---------------------------------------------------------------

    def _start(self) -> None:
        generation, created = self.store.ensure_generation()
        self.generation = generation
        if created:
            self.warming = safemode.Warming(self.clock(), self.safe_mode_setting, self.window)
            log.info("empty snapshot cache: warming (safe mode %s)", self.safe_mode_setting)
            return
        self.load_state()

    def load_state(self) -> None:
        """Inputs and published outputs as Redis holds them (at start, and when this replica
        becomes the leader)."""
        objects, _last_id = self.store.load_inputs()
        status = self.store.input_status()
        outputs = [self.store.outputs(name) for name in sorted(self.store.output_clusters())]
        loaded = {p.cluster: Outputs.loaded(p.version, p.objects) for p in outputs}
        revisions = {p.cluster: p.revision for p in outputs}
        with self.lock:
            for name, objs in objects.items():
                st = status.get(name)
                self._cluster(name).set_inputs(
                    objs,
                    complete=st is not None and st.generation == self.generation,
                    updated=st.updated if st is not None else None,
                )
            for name, published in loaded.items():
                wire = self.wire_version(published.version)
                self._cluster(name).set_published(published, revisions[name], wire)
            self.changed.notify_all()
        log.info("snapshot cache loaded: %d clusters with inputs", len(objects))

    def forget_translation(self) -> None:
        """Translate every cluster whole on the next reconcile: another replica may have
        published since this one last translated (`controller/server/replicas.py`)."""
        with self.lock:
            self.session, self._last_shape, self._reports = None, None, None
            for c in self.clusters.values():
                c.needs_full = True
            self.dirty.set()

    def check_cache(self) -> None:
        """Notice a lost cache (FLUSHALL, Redis restarted): back to warming, nothing deleted."""
        try:
            current = self.store.generation()
        except Exception as exc:  # Redis down: readiness says so; retry on the next tick
            if self.redis_up:
                log.warning("Redis unreachable: %s", exc)
            self.redis_up = False
            return
        self.redis_up = True
        if current != self.generation:
            self.cache_lost()

    def cache_lost(self) -> None:
        with self.lock:
            generation, _ = self.store.ensure_generation()
            if generation == self.generation:
                return
            log.warning("snapshot cache lost (Redis flushed or restarted): back to safe mode")
            self.generation = generation
            self.warming = safemode.Warming(self.clock(), self.safe_mode_setting, self.window)
            self._reports = None  # lost with the cache: write them again
            for c in self.clusters.values():
                c.complete = False
                # Outputs stay in memory (and applied in clusters); publish again when warm.
                c.published = c.published.unpublished()
                c.applied, c.needs_full = None, True
            cancels = [f for fs in self._cancel_push.values() for f in fs]
            self.dirty.set()
            self.changed.notify_all()
        # Agents reconnect and send a full snapshot first.
        for cancel in cancels:
            cancel()

    # -- inputs from agents -------------------------------------------------------------------

    def replace_inputs(self, cluster: str, objects: list[dict[str, Any]]) -> None:
        now = self.clock()
        self.store.replace_inputs(cluster, objects, now=now)
        with self.lock:
            self._cluster(cluster).set_inputs(objects, complete=True, updated=now)
            self.dirty.set()
        size = sum(len(repr(o)) for o in objects)
        self.metrics.snapshot_size(cluster, "inputs", len(objects), size)

    def update_inputs(
        self, cluster: str, upserts: list[dict[str, Any]], removed: list[ObjectId]
    ) -> None:
        with self.lock:
            if not self._cluster(cluster).complete:
                raise CacheLost("no complete snapshot from this cluster in this cache: send one")
        now = self.clock()
        self.store.update_inputs(cluster, upserts, removed, now=now)
        with self.lock:
            c = self._cluster(cluster)
            for obj in upserts:
                c.inputs[ObjectId.of(obj)] = obj
            for oid in removed:
                c.inputs.pop(oid, None)
            c.parsed = discovery.from_objects(cluster, c.inputs.values())
            c.inputs_version += 1
            c.last_snapshot = now
            self.dirty.set()

    def push_stream(self, cluster: str, cancel: Callable[[], None], connected: bool) -> None:
        with self.lock:
            c = self._cluster(cluster)
            c.push_streams += 1 if connected else -1
            cancels = self._cancel_push.setdefault(cluster, [])
            if connected:
                cancels.append(cancel)
            elif cancel in cancels:
                cancels.remove(cancel)
        self.metrics.agent_connected(cluster, "push", connected)

    # -- config and reconcile ---------------------------------------------------------------

    def unregistered(self, cluster: str) -> str | None:
        """Why a cluster may not stream (None: it may): a complete config without its
        KubernetesCluster. An incomplete or missing config refuses no one."""
        with self.lock:
            bundle = self.bundle
        if bundle is None or not bundle.complete:
            return None
        if any(o.name == cluster for o in bundle.of_kind("KubernetesCluster")):
            return None
        return f"no KubernetesCluster named {cluster!r} in the config"

    def approve(self) -> str | None:
        """A manual sync: publish the commit loaded now (`POST /api/sync`); returns it."""
        with self.lock:
            self.approved = self.bundle.revision if self.bundle is not None else None
            for c in self.clusters.values():
                c.needs_full = True
            self.dirty.set()
            return self.approved

    def set_config(self, bundle: Bundle) -> None:
        with self.lock:
            self.bundle = bundle
            self.dirty.set()

    def reconcile(self) -> None:
        """Translate and publish, if safe mode allows; a no-op without config."""
        started = time.monotonic()
        with self.lock:
            bundle = self.bundle
            if bundle is None:
                return
            registered = [o.name for o in bundle.of_kind("KubernetesCluster")]
            skip = [o.name for o in bundle.of_kind("KubernetesCluster") if o.spec.skip_warming]
            complete = [n for n, c in self.clusters.items() if c.complete]
            gate = safemode.decide(registered, skip, complete, self.warming, self.clock())
            self.gate = gate
            if gate.warmed:
                self.warming = None
            self.metrics.safe_mode(gate.active, len(gate.awaited))
            if not gate.translate:
                return
            inputs = {n: c.parsed for n, c in sorted(self.clusters.items()) if c.parsed is not None}
            changes: sync_policy.Changes = None
            if self.session is None:
                self.session = Session(bundle, inputs)
            else:
                delta = self.session.update(bundle, inputs)
                changes = None if delta.full else delta.changes
            session = self.session
            # Objects a commit cannot speak for stay; when that set may have changed, every
            # cluster is computed from its whole desired set.
            shape = (bundle.complete, bundle.invalid)
            if shape != self._last_shape or not bundle.complete or bundle.invalid:
                changes = None
            self._last_shape = shape

            todo = sync_policy.plan(
                self.clusters, gate.push_to, bundle, session, changes, self.sync, self.approved
            )
            base = {name: self.clusters[name].published for name in todo}
        translated = time.monotonic()
        self._publish(
            {name: (base[name], change) for name, change in todo.items()}, bundle.revision
        )
        published = time.monotonic()
        self.metrics.reconcile_stage("translate", translated - started)
        if todo:
            self.metrics.reconcile_stage("publish", published - translated)
        self._write_reports(bundle, session)
        done = time.monotonic()
        self.metrics.translation(done - started, "Published")
        if todo:
            log.info(
                "published %d clusters in %.2fs (translate %.2fs, store %.2fs, reports %.2fs)",
                len(todo),
                done - started,
                translated - started,
                published - translated,
                done - published,
            )

    def _publish(self, todo: Mapping[str, tuple[Outputs, Change]], revision: str | None) -> None:
        """Write the next version of each cluster, translated from commit `revision`, to
        Redis (one transaction), then make it what Pull handlers send. Encoded outside the
        lock; versions come from Redis."""
        if not todo:
            return
        if self.lease is not None and not self.lease.valid():
            raise NotLeader("the leader lease ran out: not publishing")
        staged = {
            name: current.then(0, change.upserts, change.removed)
            for name, (current, change) in todo.items()
        }
        versions = self.store.write_many(
            {
                name: OutputWrite(
                    encoded, todo[name][1].removed, todo[name][0].version == 0, revision
                )
                for name, (_, encoded) in staged.items()
            }
        )
        now = self.clock()
        with self.lock:
            for name, (nxt, _) in staged.items():
                c = self.clusters[name]
                published = replace(nxt, version=versions[name], base=todo[name][0].version)
                c.set_published(published, revision, self.wire_version(versions[name]))
                c.published_at = now
            self.changed.notify_all()
        self.news.set()
        for name, (nxt, _) in staged.items():
            size = sum(len(b) for b in nxt.encoded.values())
            self.metrics.snapshot_size(name, "outputs", len(nxt.objects), size)

    def resync(self, *names: str) -> None:
        """Send these clusters' agents their whole desired set again, at the version they
        have: each applies it (rewriting only what differs) and ACKs. A hard refresh for
        operators, and the relay bench's "full resync"."""
        with self.lock:
            for name in names:
                self.clusters[name].resyncs += 1
            self.changed.notify_all()

    def _write_reports(self, bundle: Bundle, session: Session) -> None:
        t = session.translation
        found_diagnostics = [*bundle.diagnostics, *session.diagnostics()]
        built = reports.build(bundle, t.workspace_of, found_diagnostics, t.selected)
        with self.lock:
            self.translated = Translated(bundle.revision, tuple(built), tuple(found_diagnostics))
        self.news.set()
        found = {(r.ref.kind, r.ref.namespace, r.ref.name): r.to_json() for r in built}
        # Most reconciles (an agent's input delta, a one-policy edit) change no report.
        if found != self._reports:
            self.store.write_reports(found)
            self._reports = found

    def run(self, stop: threading.Event, tick: float = 0.5) -> None:
        """The reconcile worker: reconcile whenever something changed; check the cache."""
        while not stop.is_set():
            woke = self.dirty.wait(tick)
            self.check_cache()
            if self.redis_up and self.lease is not None:
                try:
                    replicas.step(self)
                except Exception:  # Redis hiccup: the next tick looks again
                    log.warning("following other replicas failed", exc_info=True)
            # A start window ends by the clock alone: look again on every tick meanwhile.
            if not self.redis_up or not (woke or self.warming is not None):
                continue
            self.dirty.clear()
            if not self.leading:
                continue
            try:
                self.reconcile()
            except NotLeader as exc:
                replicas.demote(self, str(exc))
            except CacheLost:
                self.cache_lost()
            except Exception:
                log.exception("reconcile failed; the last published outputs stay")

    # -- outputs to agents ------------------------------------------------------------------

    def wire_version(self, version: int) -> str:
        return f"{self.generation}:{version}" if version else ""

    def wait_for(
        self, cluster: str, known: str, resyncs: int, timeout: float
    ) -> tuple[Outputs, int] | None:
        """The cluster's published outputs (and its resync count) once their version
        differs from `known` or a resync was asked for since `resyncs`; None on timeout."""
        with self.lock:
            c = self._cluster(cluster)

            def due() -> bool:
                version = self.wire_version(c.version)
                return version != "" and (version != known or c.resyncs != resyncs)

            if not due():
                self.changed.wait(timeout)
            return (c.published, c.resyncs) if due() else None

    def resyncs(self, cluster: str) -> int:
        with self.lock:
            return self._cluster(cluster).resyncs

    def acked(self, cluster: str, version: str, errors: Mapping[str, str]) -> None:
        """An agent's ACK (no errors) or NACK of an output version. A NACK leaves the
        applied version where it was: the agent holds the version it last fully applied."""
        with self.lock:
            c = self._cluster(cluster)
            c.errors = dict(errors)
            if errors:
                self.metrics.nack(cluster)
                first = min(errors)
                log.warning(
                    "%s NACKed %s: %d errors (%s: %s)",
                    cluster,
                    version,
                    len(errors),
                    first,
                    errors[first],
                )
            else:
                c.applied, c.acked_at = version, self.clock()
                if c.published_at is not None and version == self.wire_version(c.version):
                    self.metrics.ack_latency(cluster, self.clock() - c.published_at)
        self.news.set()
        facts = {"applied": version, "errors": str(len(errors))}
        facts["error_details"] = json.dumps(dict(sorted(errors.items())))
        self.store.record_agent(cluster, facts)

    def reported(self, cluster: str, version: str) -> None:
        """What an agent says it holds, on connecting (and with drift reports): the version
        it last applied with no errors. After a server restart on the same Redis, that is
        how the server learns an agent is current without sending it anything."""
        if not version:
            return
        with self.lock:
            c = self._cluster(cluster)
            if c.applied != version:
                c.applied = version

    def sent(self, cluster: str, full: bool) -> None:
        with self.lock:
            c = self._cluster(cluster)
            if full:
                c.sent_full += 1
            else:
                c.sent_delta += 1

    def drifted(self, cluster: str, items: Iterable[tuple[ObjectId, str]]) -> None:
        found = list(items)
        with self.lock:
            c = self._cluster(cluster)
            changed, c.drift = c.drift != len(found), len(found)
            heal = bool(found) and changed and self.sync.self_heal and c.version > 0
        if heal:
            # selfHeal: send the desired set again; the agent rewrites what differs.
            log.info("%s: %d drifted objects, putting them back (selfHeal)", cluster, len(found))
            self.resync(cluster)
        # Every agent message carries its drift list; Redis hears only of changes.
        if changed:
            self.news.set()
            self.store.record_agent(cluster, {"drift": str(len(found))})

    def pull_stream(self, cluster: str, connected: bool) -> None:
        with self.lock:
            self._cluster(cluster).pull_streams += 1 if connected else -1
        self.metrics.agent_connected(cluster, "pull", connected)

    def _cluster(self, name: str) -> Cluster:
        c = self.clusters.get(name)
        if c is None:
            c = self.clusters[name] = Cluster(name)
        return c

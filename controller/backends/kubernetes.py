"""A real workload cluster through the official Kubernetes client (DESIGN.md section 7).

The agent builds one `KubernetesBackend` from `controller.backends.kubeconfig.load(...)` and
drives it through the `ClusterBackend` protocol:

- `discover`: one list per discovered kind; `watch_inputs`: an `Informer` per kind whose
  first listing is diffed against the last `discover`, so nothing between the two is lost.
- `apply`: server-side apply (`application/apply-patch+yaml`, field manager `mesh-gitops`,
  `force=true`: the outputs are ours, another manager's field is taken back) of each upsert
  in make-before-break order, then prune in the reverse order. Requests are retried by
  `kube_rest` on 429/5xx; 409/422 and other refusals become that object's error. Deletes are
  guarded by the prune rule (`inventory.prune_refusal`) checked against a fresh GET, and sent
  with a resourceVersion precondition so an object changed in between is not deleted.
- `watch_drift`: an `Informer` per owned output kind, label-selected on the ownership labels.
  An event is drift when the live object matches neither what we sent nor what the server
  answered (so server defaults are not drift), or when the object disappears. Our own
  writes are recognised by the resourceVersion the server returned, and by recording what we
  send before sending it (an event can arrive before the PATCH's answer).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from controller.backends import (
    FIELD_MANAGER,
    ApplyResult,
    Drift,
    DriftCallback,
    InputsCallback,
    Unavailable,
)
from controller.backends.inventory import Inventory, prune_refusal
from controller.backends.kube_rest import APPLY_PATCH, KubeError, Rejected, Resource, Rest
from controller.backends.kube_watch import Informer, normalise
from gitops.discovery import DISCOVERED_KINDS
from gitops.objects import OWNER_LABELS, ObjectId
from gitops.plan import ChangeSet, apply_order, drifted

__all__ = ["OWNED_KINDS", "KubernetesBackend"]

log = logging.getLogger(__name__)

#: Kinds the translator emits (gitops.translate.outputs, envoy_filter): watched for drift.
OWNED_KINDS: tuple[tuple[str, str, str], ...] = (
    ("networking.istio.io", "v1", "DestinationRule"),
    ("networking.istio.io", "v1", "Gateway"),
    ("networking.istio.io", "v1", "ServiceEntry"),
    ("networking.istio.io", "v1", "Sidecar"),
    ("networking.istio.io", "v1", "VirtualService"),
    ("networking.istio.io", "v1", "WorkloadEntry"),
    ("networking.istio.io", "v1alpha3", "EnvoyFilter"),
    ("security.istio.io", "v1", "AuthorizationPolicy"),
    ("security.istio.io", "v1", "PeerAuthentication"),
)
OWNER_SELECTOR = ",".join(f"{k}={v}" for k, v in sorted(OWNER_LABELS.items()))
#: Fields the server owns; sending them in an apply would fail or pin stale values.
_SERVER_META = ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields")


@dataclass(frozen=True)
class _Applied:
    """What we last sent for an object, and the server's answer (None until it came)."""

    sent: dict[str, Any]
    answer: dict[str, Any] | None = None

    @property
    def version(self) -> str | None:
        return None if self.answer is None else self.answer["metadata"].get("resourceVersion")

    def matches(self, live: Mapping[str, Any]) -> bool:
        if (
            self.version is not None
            and live.get("metadata", {}).get("resourceVersion") == self.version
        ):
            return True
        return not drifted(self.sent, live) or (
            self.answer is not None and not drifted(self.answer, live)
        )


def _applyable(obj: Mapping[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in obj.items() if k != "status"}
    meta = dict(body.get("metadata") or {})
    for key in _SERVER_META:
        meta.pop(key, None)
    body["metadata"] = meta
    return body


class KubernetesBackend:
    """`ClusterBackend` over the Kubernetes API (see the module docstring)."""

    def __init__(
        self, cluster: str, api_client: Any, state_dir: Path, *, watch_seconds: int = 300
    ) -> None:
        self.cluster = cluster
        self.api_client = api_client
        self._rest = Rest(api_client)
        self._inventory = Inventory(state_dir, cluster)
        self._watch_seconds = watch_seconds
        self._lock = threading.Lock()
        self._known: dict[tuple[str, str, str], dict[ObjectId, dict[str, Any]]] = {}
        self._applied: dict[ObjectId, _Applied] = {}
        self._informers: list[Informer] = []
        self._closed = False

    # -- discovery -------------------------------------------------------------------------

    def _resource(self, group: str, version: str, kind: str) -> Resource | None:
        try:
            return self._rest.resource(group, version, kind)
        except KubeError as err:
            raise Unavailable(f"{self.cluster}: API discovery failed: {err}") from None

    def discover(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for gvk in DISCOVERED_KINDS:
            resource = self._resource(*gvk)
            if resource is None:
                raise Unavailable(f"{self.cluster}: the API server does not serve {gvk}")
            try:
                listing = self._rest.call("GET", resource.path())
            except KubeError as err:
                raise Unavailable(f"{self.cluster}: listing {resource.plural}: {err}") from None
            items = [normalise(i, resource) for i in listing.get("items") or []]
            with self._lock:
                self._known[gvk] = {ObjectId.of(i): i for i in items}
            found.extend(items)
        return sorted(found, key=ObjectId.of)

    def watch_inputs(self, callback: InputsCallback) -> None:
        for gvk in DISCOVERED_KINDS:
            resource = self._resource(*gvk)
            if resource is None:
                raise Unavailable(f"{self.cluster}: the API server does not serve {gvk}")
            self._start(
                Informer(
                    self._rest,
                    resource,
                    on_sync=partial(self._inputs_synced, gvk, callback=callback),
                    on_event=partial(self._input_event, gvk, callback=callback),
                    watch_seconds=self._watch_seconds,
                )
            )

    def _inputs_synced(
        self, gvk: tuple[str, str, str], items: list[dict[str, Any]], callback: InputsCallback
    ) -> None:
        now = {ObjectId.of(i): i for i in items}
        with self._lock:
            before = self._known.get(gvk, {})
            self._known[gvk] = now
        upserts = [now[oid] for oid in sorted(now) if before.get(oid) != now[oid]]
        removed = sorted(set(before) - set(now))
        if upserts or removed:
            callback(upserts, removed)

    def _input_event(
        self, gvk: tuple[str, str, str], kind: str, obj: dict[str, Any], callback: InputsCallback
    ) -> None:
        oid = ObjectId.of(obj)
        with self._lock:
            known = self._known.setdefault(gvk, {})
            if kind == "DELETED":
                known.pop(oid, None)
            else:
                known[oid] = obj
        if kind == "DELETED":
            callback([], [oid])
        else:
            callback([obj], [])

    # -- apply -----------------------------------------------------------------------------

    def apply(self, changes: ChangeSet) -> ApplyResult:
        upserts, deletes = apply_order(changes)
        recorded = self._inventory.write_ahead(upserts)
        applied: list[ObjectId] = []
        errors: dict[ObjectId, str] = {}
        desired: set[ObjectId] = set()
        for obj in upserts:
            try:
                oid = ObjectId.of(obj)
            except ValueError as err:
                log.error("%s: refusing an output: %s", self.cluster, err)
                continue
            desired.add(oid)
            problem = self._apply_one(oid, _applyable(obj))
            if problem is None:
                applied.append(oid)
            else:
                errors[oid] = problem
        # Recorded before any delete: a crash from here on still knows what it owns.
        recorded |= set(applied)
        self._inventory.save(recorded)

        deleted: list[ObjectId] = []
        skipped: dict[ObjectId, str] = {}
        for oid in deletes:
            if errors:
                # Prune only after a complete apply (Flux's order): a failed VirtualService
                # update may still reference what we would delete.
                skipped[oid] = f"prune deferred: {len(errors)} object(s) failed to apply"
                continue
            try:
                outcome = self._delete_one(oid, desired, recorded)
            except KubeError as err:
                errors[oid] = err.message
                continue
            if outcome is None:
                deleted.append(oid)
            else:
                skipped[oid] = outcome
        recorded -= set(deleted)
        self._inventory.save(recorded)
        return ApplyResult(tuple(applied), tuple(deleted), errors, skipped)

    def _apply_one(self, oid: ObjectId, body: dict[str, Any]) -> str | None:
        """Server-side apply one object; None on success, else the error text."""
        resource = self._resource(oid.group, oid.version, oid.kind)
        if resource is None:
            return f"{oid.api_version} {oid.kind} is not served by the cluster (CRD missing?)"
        with self._lock:
            previous = self._applied.get(oid)
            self._applied[oid] = _Applied(body, previous.answer if previous else None)
        query = [("fieldManager", FIELD_MANAGER), ("force", "true")]
        try:
            answer = self._rest.call(
                "PATCH",
                resource.path(oid.namespace, oid.name),
                query=query,
                body=body,
                content_type=APPLY_PATCH,
            )
        except KubeError as err:
            with self._lock:
                if previous is None:
                    self._applied.pop(oid, None)
                else:
                    self._applied[oid] = previous
            return err.message
        with self._lock:
            self._applied[oid] = _Applied(body, normalise(answer, resource))
        return None

    def _delete_one(
        self, oid: ObjectId, desired: set[ObjectId], recorded: set[ObjectId]
    ) -> str | None:
        """Prune one object; None when it is gone, else why it stays. Raises KubeError."""
        resource = self._resource(oid.group, oid.version, oid.kind)
        if resource is None:
            return None  # the kind is not served, so no such object exists
        path = resource.path(oid.namespace, oid.name)
        try:
            live: dict[str, Any] | None = self._rest.call("GET", path)
        except Rejected as err:
            if err.status != 404:
                raise
            live = None
        reason = prune_refusal(oid, desired, recorded, live)
        if reason is not None or live is None:
            return reason
        with self._lock:
            before = self._applied.pop(oid, None)  # its DELETED event is ours, not drift
        options = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "propagationPolicy": "Background",
            "preconditions": {"resourceVersion": live["metadata"]["resourceVersion"]},
        }
        try:
            self._rest.call("DELETE", path, body=options)
        except Rejected as err:
            if err.status == 404:
                return None
            if before is not None:
                with self._lock:
                    self._applied.setdefault(oid, before)
            raise
        return None

    def inventory(self) -> set[ObjectId]:
        return self._inventory.load()

    # -- drift -----------------------------------------------------------------------------

    def watch_drift(self, callback: DriftCallback) -> None:
        for gvk in OWNED_KINDS:
            resource = self._resource(*gvk)
            if resource is None:
                log.info("%s: %s not served, not watched for drift", self.cluster, gvk)
                continue
            self._start(
                Informer(
                    self._rest,
                    resource,
                    on_sync=partial(self._drift_synced, gvk, callback=callback),
                    on_event=partial(self._drift_event, callback=callback),
                    label_selector=OWNER_SELECTOR,
                    watch_seconds=self._watch_seconds,
                )
            )

    def _drift_synced(
        self, gvk: tuple[str, str, str], items: Iterable[dict[str, Any]], callback: DriftCallback
    ) -> None:
        live = {ObjectId.of(i): i for i in items}
        with self._lock:
            ours = {
                oid: a
                for oid, a in self._applied.items()
                if (oid.group, oid.version, oid.kind) == gvk
            }
        drifts = [
            Drift(oid, "deleted") if oid not in live else Drift(oid, "modified")
            for oid, applied in sorted(ours.items())
            if oid not in live or not applied.matches(live[oid])
        ]
        if drifts:
            callback(drifts)

    def _drift_event(self, kind: str, obj: dict[str, Any], callback: DriftCallback) -> None:
        oid = ObjectId.of(obj)
        with self._lock:
            applied = self._applied.get(oid)
        if applied is None:
            return  # not applied by this process (or being deleted by it)
        if kind == "DELETED":
            callback([Drift(oid, "deleted")])
        elif not applied.matches(obj):
            callback([Drift(oid, "modified")])

    # -- lifecycle -------------------------------------------------------------------------

    def _start(self, informer: Informer) -> None:
        with self._lock:
            if self._closed:
                raise Unavailable(f"{self.cluster}: backend is closed")
            self._informers.append(informer)
        informer.start()

    def wait_synced(self, timeout: float) -> bool:
        """Whether every started watch completed its first listing within `timeout`."""
        with self._lock:
            informers = list(self._informers)
        return all(i.synced.wait(timeout) for i in informers)

    def close(self) -> None:
        """Stop the watches; the `ApiClient` belongs to the caller, who closes it."""
        with self._lock:
            self._closed = True
            informers, self._informers = self._informers, []
        for informer in informers:
            informer.stop()
        for informer in informers:
            informer.join(timeout=10)

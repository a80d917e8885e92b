"""The agent's halves of the relay streams: Push its inputs, Pull and apply its outputs.

Called by `controller.agent.runner.Agent`, one thread each. Both loops reconnect forever
with capped, jittered exponential backoff (`RECONNECT`, tenacity) until the agent stops;
a broken connection never touches what is applied in the cluster.

Push: on every (re)connection a full snapshot from `backend.discover()` (chunked), then
the deltas the backend's watch reports. Pull: send the applied version; apply each
complete OutputDelta (full: the desired set, pruned against the backend's inventory;
delta: upserts and deletions) through the backend; ACK, or NACK with per-object errors;
report drift on the same stream (every message carries the whole current drift list).
The applied version is persisted only after an apply with no errors, so after a crash or
a NACK the server brings the agent up from the last version it applied whole.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
from tenacity import Retrying, retry_if_exception_type, wait_exponential, wait_random

from controller.backends import ClusterBackend, Drift
from controller.relay import relay_pb2 as pb
from controller.relay import relay_pb2_grpc, wire
from controller.relay.service import CLUSTER_METADATA
from gitops import plan
from gitops.objects import ObjectId

log = logging.getLogger(__name__)

#: Reconnect backoff: 0.2 s doubling to 5 s, with jitter so a fleet does not reconnect in step.
RECONNECT_INITIAL = 0.2
RECONNECT_MAX = 5.0
#: A stream up this long was healthy: the next reconnect starts the backoff over.
HEALTHY_SECONDS = 2 * RECONNECT_MAX

ChannelFactory = Callable[[], grpc.Channel]
_STOP = object()


class _Reconnect(Exception):
    """The stream ended; connect again."""


def _forever(stop: threading.Event, name: str, once: Callable[[], None]) -> None:
    """Run `once` until stop, reconnecting with backoff whenever it ends or fails.

    Nothing `once` raises ends the loop: an agent that stops reconnecting after an
    unexpected error is worse than one that logs it and tries again. The backoff starts
    over after a stream that stayed up `HEALTHY_SECONDS`, so an agent whose server
    restarts reconnects at once (with jitter), not after the cap of an old failure run.
    """
    retrying = Retrying(
        wait=wait_exponential(multiplier=RECONNECT_INITIAL, max=RECONNECT_MAX)
        + wait_random(0, RECONNECT_INITIAL),
        retry=retry_if_exception_type(Exception),
        sleep=lambda seconds: _sleep(stop, seconds),
        reraise=True,
    )
    while not stop.is_set():
        for attempt in retrying:
            with attempt:
                if stop.is_set():
                    return
                started = time.monotonic()
                try:
                    once()
                    problem: Exception = _Reconnect("the server ended the stream")
                except (grpc.RpcError, _Reconnect, OSError) as exc:
                    problem = exc
                except Exception as exc:
                    log.warning("%s stream failed; reconnecting", name, exc_info=True)
                    problem = exc
                if stop.is_set():
                    return
                log.info("%s stream: %s; reconnecting", name, _describe(problem))
                if time.monotonic() - started < HEALTHY_SECONDS:
                    raise problem
        _sleep(stop, random.uniform(0, RECONNECT_INITIAL))


def _sleep(stop: threading.Event, seconds: float) -> None:
    stop.wait(seconds)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.RpcError):
        code = exc.code() if hasattr(exc, "code") else None
        details = exc.details() if hasattr(exc, "details") else ""
        return f"{code}: {details}"
    return str(exc) or type(exc).__name__


class _Queue:
    """A blocking request iterator for a bidirectional stream, closable from outside."""

    def __init__(self) -> None:
        self.q: queue.Queue[Any] = queue.Queue()

    def put(self, item: Any) -> None:
        self.q.put(item)

    def close(self) -> None:
        self.q.put(_STOP)

    def __iter__(self) -> Iterator[Any]:
        while (item := self.q.get()) is not _STOP:
            yield item


class PushLoop:
    """Sends the cluster's inputs: full on connect, then the watch's deltas."""

    def __init__(
        self, cluster: str, backend: ClusterBackend, channel: ChannelFactory, stop: threading.Event
    ) -> None:
        self.cluster, self.backend, self.channel, self.stop = cluster, backend, channel, stop
        self.current: _Queue | None = None
        self.lock = threading.Lock()
        self.nonce = 0
        self.full_acked = threading.Event()

    def on_inputs(self, upserts: list[dict[str, Any]], removed: list[ObjectId]) -> None:
        """The backend's watch callback: send the change on the live stream, if any (a
        reconnect sends a full snapshot anyway)."""
        with self.lock:
            if self.current is not None:
                for patch in wire.patches(upserts, removed):
                    self.current.put(self._delta(patch, full=False, more=False))

    def _delta(self, patch: pb.ResourcePatch, *, full: bool, more: bool) -> pb.InputDelta:
        self.nonce += 1
        return pb.InputDelta(
            cluster=self.cluster, nonce=str(self.nonce), full=full, more=more, patch=patch
        )

    def run(self) -> None:
        _forever(self.stop, f"push {self.cluster}", self._once)

    def _once(self) -> None:
        requests = _Queue()
        with self.lock:
            self.current = requests
            chunks = list(wire.patches(self.backend.discover()))
            for i, patch in enumerate(chunks):
                requests.put(self._delta(patch, full=True, more=i < len(chunks) - 1))
            last_full = str(self.nonce)
        stub = relay_pb2_grpc.RelayStub(self.channel())
        try:
            for ack in stub.Push(iter(requests), metadata=((CLUSTER_METADATA, self.cluster),)):
                if ack.error:
                    log.warning("server refused input delta %s: %s", ack.nonce, ack.error)
                elif ack.nonce == last_full:
                    self.full_acked.set()
        finally:
            with self.lock:
                self.current = None
            requests.close()

    def close(self) -> None:
        """End the live stream's requests (the agent is stopping)."""
        with self.lock:
            if self.current is not None:
                self.current.close()


class AppliedVersion:
    """The output version applied with no errors, persisted in the agent's data dir."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.value = str(json.loads(path.read_text())["applied"])
        except (OSError, ValueError, KeyError, TypeError):
            self.value = ""

    def set(self, version: str) -> None:
        self.value = version
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"applied": version}))
        tmp.replace(self.path)


class PullLoop:
    """Receives outputs, applies them through the backend, ACKs/NACKs, reports drift."""

    def __init__(
        self,
        cluster: str,
        backend: ClusterBackend,
        channel: ChannelFactory,
        stop: threading.Event,
        applied: AppliedVersion,
    ) -> None:
        self.cluster, self.backend, self.channel, self.stop = cluster, backend, channel, stop
        self.applied = applied
        self.current: _Queue | None = None
        self.lock = threading.Lock()
        self.drift: dict[ObjectId, str] = {}
        #: Set after each apply (tests and the bench wait on it).
        self.applied_event = threading.Event()

    def on_drift(self, items: list[Drift]) -> None:
        with self.lock:
            for d in items:
                self.drift[d.id] = d.change
            if self.current is not None:
                self.current.put(self._drift_report())

    def _drift_report(self) -> pb.PullRequest:
        items = [
            pb.DriftItem(id=wire.resource_id(oid), change=change)
            for oid, change in sorted(self.drift.items())
        ]
        return pb.PullRequest(cluster=self.cluster, version=self.applied.value, drift=items)

    def run(self) -> None:
        _forever(self.stop, f"pull {self.cluster}", self._once)

    def _once(self) -> None:
        requests = _Queue()
        requests.put(pb.PullRequest(cluster=self.cluster, version=self.applied.value))
        with self.lock:
            self.current = requests
            if self.drift:
                requests.put(self._drift_report())
        stub = relay_pb2_grpc.RelayStub(self.channel())
        upserts: list[dict[str, Any]] = []
        removed: list[ObjectId] = []
        try:
            for delta in stub.Pull(iter(requests), metadata=((CLUSTER_METADATA, self.cluster),)):
                objs, gone = wire.decode_patch(delta.patch)
                upserts.extend(objs)
                removed.extend(gone)
                if delta.more:
                    continue
                requests.put(self._apply(delta, upserts, removed))
                upserts, removed = [], []
        finally:
            with self.lock:
                self.current = None
            requests.close()

    def _apply(
        self, delta: pb.OutputDelta, upserts: list[dict[str, Any]], removed: list[ObjectId]
    ) -> pb.PullRequest:
        # Only Istio kinds are applied, whatever the server sends: the relay never makes an
        # agent write (or delete) Secrets, RBAC or workloads with its credentials.
        refused: dict[ObjectId, str] = {}
        allowed = []
        for obj in upserts:
            oid = ObjectId.of(obj)
            if reason := plan.undeliverable(oid):
                refused[oid] = reason
            else:
                allowed.append(obj)
        for oid in removed:
            if reason := plan.undeliverable(oid):
                refused[oid] = reason
        deletes = tuple(oid for oid in removed if oid not in refused)
        if delta.full:
            changes = plan.full(allowed, self.backend.inventory())
        else:
            changes = plan.ChangeSet(tuple(allowed), deletes)
        result = self.backend.apply(changes)
        failed = {**refused, **result.errors}
        errors = [
            pb.ObjectError(id=wire.resource_id(oid), message=message)
            for oid, message in sorted(failed.items())
        ]
        if errors:
            log.warning("applied %s with %d errors", delta.version, len(errors))
        else:
            self.applied.set(delta.version)
        with self.lock:
            for oid in [*result.applied, *result.deleted]:
                self.drift.pop(oid, None)
            # The ACK carries the drift list too: what this apply repaired is no longer drift.
            report = self._drift_report()
        self.applied_event.set()
        report.response_nonce = delta.nonce
        report.errors.extend(errors)
        return report

    def close(self) -> None:
        """End the live stream's requests (the agent is stopping)."""
        with self.lock:
            if self.current is not None:
                self.current.close()

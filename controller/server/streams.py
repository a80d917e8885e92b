"""The server's halves of the relay streams: Push (inputs in) and Pull (outputs out).

`controller.relay.service.RelayService` authenticates each stream (the cluster is the
verified client certificate's identity) and calls these handlers with that cluster; they
talk to the `Fleet` (`controller/server/fleet.py`).

Push: the server speaks first, naming the kinds to send (`gitops.discovery.DISCOVERED_KINDS`);
the agent sends a full snapshot (chunks with `more`), then deltas; each message is ACKed
once stored, or NACKed with the reason. When the cache is lost the fleet cancels every Push
stream, and agents reconnect with a full snapshot.

Pull: the agent speaks first, with the version it has applied. Whenever the published
version differs from what the stream last sent, the server sends a delta (when the version
the agent last fully applied, by its first message or an ACK, is exactly the one before
and the server still holds it) or the full desired set, chunked. So after a NACK, or
while an apply is still unacknowledged, the agent gets the whole set: a delta from a
version it never fully applied would skip what failed. The agent's later messages (ACK,
NACK with per-object errors, each with its current drift list) are read on a thread of
their own so a slow apply never blocks the next publish from being noticed; when they end
(the agent went away, or a message claimed another cluster), the handler ends too.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc

from controller.relay import relay_pb2 as pb
from controller.relay import wire
from controller.server.fleet import Fleet
from controller.server.published import Outputs
from controller.store import CacheLost, StoreError
from gitops import discovery

log = logging.getLogger(__name__)

_WATCH = [pb.GVK(group=g, version=v, kind=k) for g, v, k in discovery.DISCOVERED_KINDS]


def push_handler(fleet: Fleet) -> object:
    def handle(
        cluster: str, requests: Iterator[pb.InputDelta], context: grpc.ServicerContext
    ) -> Iterator[pb.PushAck]:
        if reason := fleet.unregistered(cluster):
            context.abort(grpc.StatusCode.PERMISSION_DENIED, reason)
        cancel = context.cancel
        fleet.push_stream(cluster, cancel, True)
        try:
            yield pb.PushAck(watch=_WATCH)
            pending: list[dict[str, Any]] = []
            for delta in requests:
                started = time.monotonic()
                try:
                    upserts, removed = wire.decode_patch(delta.patch)
                    if delta.full:
                        pending.extend(upserts)
                        if not delta.more:
                            fleet.replace_inputs(cluster, pending)
                            pending = []
                    else:
                        fleet.update_inputs(cluster, upserts, removed)
                except ValueError as exc:
                    yield pb.PushAck(nonce=delta.nonce, error=str(exc))
                    continue
                except CacheLost as exc:
                    # The cache is gone (or this cluster has not sent a full snapshot in
                    # this generation): the fleet starts warming if it has not yet, and
                    # the agent reconnects and sends a full snapshot.
                    _cache_lost(fleet)
                    yield pb.PushAck(nonce=delta.nonce, error=f"{exc}; send a full snapshot")
                    context.abort(grpc.StatusCode.UNAVAILABLE, "snapshot cache lost: reconnect")
                except StoreError as exc:
                    log.warning("push from %s not stored: %s", cluster, exc)
                    context.abort(grpc.StatusCode.UNAVAILABLE, "store unavailable: retry")
                yield pb.PushAck(nonce=delta.nonce)
                fleet.metrics.push_latency(cluster, time.monotonic() - started)
        finally:
            fleet.push_stream(cluster, cancel, False)

    return handle


class _Agent:
    """One Pull stream's view of its agent: what it has fully applied, as far as the server
    knows (its first message, then each ACK), and whether its messages have ended."""

    def __init__(self, applied: str) -> None:
        self.lock = threading.Lock()
        self.applied = applied
        self.ended = threading.Event()

    def acked(self, version: str) -> None:
        with self.lock:
            self.applied = version

    def known(self) -> str:
        with self.lock:
            return self.applied


def _cache_lost(fleet: Fleet) -> None:
    try:
        fleet.cache_lost()
    except StoreError as exc:  # Redis is down: the reconcile worker notices it came back
        log.warning("cache lost and Redis unavailable: %s", exc)


def _responses(
    cluster: str, outputs: Outputs, fleet: Fleet, applied: str, *, resync: bool = False
) -> Iterator[pb.OutputDelta]:
    """Chunks bringing an agent from the version it has fully applied to `outputs`: a delta
    only when that is exactly the version `outputs` was computed from (an agent that
    NACKed, or has not yet ACKed, what it was sent gets the whole desired set). Built from
    the wire JSON encoded at publish time, outside the fleet's lock."""
    version = fleet.wire_version(outputs.version)
    full = resync or not (outputs.base and applied == fleet.wire_version(outputs.base))
    if full:
        chunks = wire.encoded_patches(sorted(outputs.encoded.items()))
    else:
        changed = ((oid, outputs.encoded[oid]) for oid in outputs.changed)
        chunks = wire.encoded_patches(changed, outputs.removed)
    fleet.sent(cluster, full)
    nonce = f"{version}/{time.monotonic_ns()}"
    chunk_list = list(chunks)
    for i, patch in enumerate(chunk_list):
        more = i < len(chunk_list) - 1
        yield pb.OutputDelta(version=version, nonce=nonce, full=full, more=more, patch=patch)


def pull_handler(fleet: Fleet, wait: float = 1.0) -> object:
    def handle(
        cluster: str, requests: Iterator[pb.PullRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.OutputDelta]:
        # A certificate outlives its KubernetesCluster (no revocation): the config decides.
        if reason := fleet.unregistered(cluster):
            context.abort(grpc.StatusCode.PERMISSION_DENIED, reason)
        first = next(requests, None)
        if first is None:
            return
        fleet.pull_stream(cluster, True)
        agent = _Agent(first.version)
        sent = first.version
        # A new stream needs no resend the fleet was asked for before it connected.
        resyncs = fleet.resyncs(cluster)
        reader = threading.Thread(
            target=_read_agent,
            args=(fleet, cluster, agent, itertools.chain([first], requests)),
            name=f"pull-{cluster}",
            daemon=True,
        )
        reader.start()
        try:
            while context.is_active() and not agent.ended.is_set():
                found = fleet.wait_for(cluster, sent, resyncs, wait)
                if found is None:
                    continue
                state, seen = found
                resync = seen != resyncs and fleet.wire_version(state.version) == sent
                sent, resyncs = fleet.wire_version(state.version), seen
                yield from _responses(cluster, state, fleet, agent.known(), resync=resync)
        finally:
            fleet.pull_stream(cluster, False)

    return handle


def _read_agent(
    fleet: Fleet, cluster: str, agent: _Agent, requests: Iterator[pb.PullRequest]
) -> None:
    """The agent's messages on a Pull stream: every one carries its whole drift list; a
    message with `response_nonce` ACKs (no errors) or NACKs an OutputDelta."""
    try:
        for request in requests:
            errors = {str(wire.object_id(e.id)): e.message for e in request.errors}
            if request.response_nonce and not errors:
                agent.acked(request.version)
            try:
                fleet.drifted(cluster, ((wire.object_id(d.id), d.change) for d in request.drift))
                if request.response_nonce:
                    fleet.acked(cluster, request.version, errors)
                else:
                    fleet.reported(cluster, request.version)
            except StoreError as exc:  # kept in memory; Redis gets the next report
                log.warning("pull from %s: agent report not stored: %s", cluster, exc)
    except grpc.RpcError:
        pass  # the stream ended
    except Exception:  # an abort (a message claimed another cluster), or a bug: end the call
        log.debug("pull from %s: reader ended", cluster, exc_info=True)
    finally:
        agent.ended.set()

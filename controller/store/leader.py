"""Leader election among server replicas that share one Redis (DESIGN.md section 8).

Where it sits: `gitops serve` (`controller/server/app.py`) makes one `Lease` per process
and tries it once at start, so a single replica is the leader from its first reconcile;
`controller/server/replicas.py` keeps renewing it on a thread of its own, and every tick
reads `marks` to follow what other replicas wrote. The Store's fenced writes
(`controller.store.transactions`) check the `Fence` the lease got. A follower that receives
a webhook or a manual sync hands it to the leader with `forward`; the leader finds it in its
next `marks` and deletes it with `forwarded_done` once it has acted on it.

The lock is Redis' single-instance pattern:

- acquire: `SET gitops#leader <replica-id> NX PX <lease>` and, in the same Lua script,
  `INCR gitops#leader#fence`: the token. Atomic, so a process paused between the two can
  never end up with a newer token than the replica that took over meanwhile;
- renew: a Lua script that extends the TTL only while the value is still ours;
- release (stop, or a renewal that came too late): compare-and-delete, so the next
  replica need not wait for the TTL.

Leadership ends when a renewal fails or when the lease's deadline passes on this process'
monotonic clock (measured from before the command that set it was sent): a process that
was paused (GC, a stopped container, a swapped host) knows it has lost without asking
Redis. The fencing token makes the rest safe: writes made after another replica took over
fail in Redis (`NotLeader`) however late they arrive.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from redis.client import Pipeline

from controller.store import keys
from controller.store.transactions import Fence, Transactions, text

__all__ = ["Forwarded", "Lease", "Marks", "forward", "forwarded_done", "marks", "replica_id"]

log = logging.getLogger(__name__)

_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def replica_id() -> str:
    """`<host>-<pid>-<random>`: unique per process, and says which pod leads
    (`redis-cli get gitops#leader`)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class Lease:
    """The leader lock as one replica holds it (see the module docstring).

    Not thread-safe by itself: one thread (the renewer) calls `acquire`, `renew` and
    `release`; any thread may read `valid` and `fence`.
    """

    def __init__(
        self,
        client: redis.Redis,
        holder: str,
        lease: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if lease <= 0:
            raise ValueError("the lease must be positive")
        self.holder = holder
        self.lease = lease
        self._client = client
        self._clock = clock
        self._acquire: Any = client.register_script(_ACQUIRE)
        self._renew: Any = client.register_script(_RENEW)
        self._release: Any = client.register_script(_RELEASE)
        #: Monotonic time the lease runs out (0: not held).
        self._deadline = 0.0
        #: The last token this replica got (0: never); kept after a loss so late writes fail.
        self.fence = Fence(holder, 0)

    @property
    def _px(self) -> int:
        return max(1, round(self.lease * 1000))

    def valid(self) -> bool:
        """Held, and the deadline has not passed on this process' clock."""
        return self._deadline > 0 and self._clock() < self._deadline

    def acquire(self) -> bool:
        """Try once; True when this replica is now the leader (with a new fence)."""
        started = self._clock()
        try:
            token = int(
                self._acquire(keys=[keys.LEADER, keys.LEADER_FENCE], args=[self.holder, self._px])
            )
        except redis.RedisError as exc:
            log.warning("leader lock not acquired (Redis: %s)", type(exc).__name__)
            return False
        if not token:
            return False
        self.fence = Fence(self.holder, token)
        self._deadline = started + self.lease
        if not self.valid():  # the reply came after the lease it set had already run out
            self.release()
            return False
        return True

    def renew(self) -> bool:
        """Extend the lease; False (and not held any more) when the lock is not ours, Redis
        did not answer, or the answer came after the deadline."""
        if not self.valid():
            self._lost("the lease ran out before it was renewed")
            return False
        started = self._clock()
        try:
            renewed = int(self._renew(keys=[keys.LEADER], args=[self.holder, self._px]))
        except redis.RedisError as exc:
            self._lost(f"renewal failed (Redis: {type(exc).__name__})")
            return False
        if not renewed:
            self._lost("the lock is held by another replica or expired")
            return False
        if not self.valid():
            self._lost("the renewal came back after the lease ran out")
            return False
        self._deadline = started + self.lease
        return True

    def release(self) -> None:
        """Give the lock up now (compare-and-delete: never someone else's)."""
        self._deadline = 0.0
        try:
            self._release(keys=[keys.LEADER], args=[self.holder])
        except redis.RedisError as exc:  # it expires by itself
            log.warning("leader lock not released (Redis: %s)", type(exc).__name__)

    def _lost(self, why: str) -> None:
        log.warning("leadership lost (%s): replica %s stops publishing", why, self.holder)
        self.release()


@dataclass(frozen=True)
class Forwarded:
    """A trigger a follower received and handed to the leader: one `gitops#triggers` entry."""

    #: The stream entry id (deleted once the leader acted on it).
    id: str
    #: What the follower received: `webhook:<provider>` or `sync`.
    reason: str
    #: A manual sync: the commit the follower read and approved (None: not a sync).
    approve: str | None
    #: The follower's replica id (for the leader's log).
    sender: str


#: Entries a leader reads per tick; more wait for the next one (each is one reload anyway).
_FORWARDED_PER_TICK = 32
#: The stream is trimmed to about this many entries, should no leader delete them.
_FORWARDED_KEPT = 256


def forward(client: redis.Redis, sender: str, reason: str, approve: str | None = None) -> str:
    """Hand a trigger to the leader (`XADD gitops#triggers`); returns the entry id.
    Raises `redis.RedisError` when Redis did not take it: the caller says so."""
    fields = {"reason": reason, "from": sender}
    if approve is not None:
        fields["approve"] = approve
    added = client.xadd(keys.TRIGGERS, fields, maxlen=_FORWARDED_KEPT, approximate=True)  # type: ignore[arg-type]
    return text(added)


def forwarded_done(client: redis.Redis, ids: list[str]) -> None:
    """Delete entries the leader acted on. Not deleted (Redis hiccup): the next tick acts on
    them again, which is harmless: a reload of an unchanged commit changes nothing."""
    if not ids:
        return
    try:
        client.xdel(keys.TRIGGERS, *ids)
    except redis.RedisError as exc:
        log.warning("forwarded triggers not deleted (Redis: %s)", type(exc).__name__)


def _forwarded(entries: list[Any]) -> tuple[Forwarded, ...]:
    found = []
    for raw_id, raw_fields in entries:
        fields = {text(k): text(v) for k, v in raw_fields.items()}
        approve = fields.get("approve")
        found.append(
            Forwarded(
                text(raw_id), fields.get("reason", "?"), approve or None, fields.get("from", "?")
            )
        )
    return tuple(found)


@dataclass(frozen=True)
class Marks:
    """What every replica wrote that the others follow, read in two cheap round trips."""

    #: Cluster -> the generation of its complete snapshot and the `updated` time of its
    #: last input write (a complete snapshot or a delta).
    inputs: dict[str, tuple[str, float]]
    #: Cluster -> its published output version.
    outputs: dict[str, int]
    #: Cluster -> its agent's `applied`, `drift` and `error_details` facts (when recorded).
    agents: dict[str, dict[str, str]]
    #: Triggers followers forwarded, oldest first (read only when asked: by the leader).
    forwarded: tuple[Forwarded, ...] = ()


_AGENT_FACTS = ("applied", "drift", "error_details")


def marks(store: Transactions, *, forwarded: bool = False) -> Marks:
    """The per-cluster marks that say which clusters another replica changed, and, with
    `forwarded`, the triggers followers forwarded (in the same round trip)."""

    def first(pipe: Pipeline) -> None:
        pipe.hgetall(keys.INPUT_STATUS)
        pipe.smembers(keys.OUTPUT_CLUSTERS)
        pipe.smembers(keys.AGENT_CLUSTERS)
        if forwarded:
            pipe.xrange(keys.TRIGGERS, count=_FORWARDED_PER_TICK)

    status, out_set, agent_set, *entries = store.read("marks", first)
    outputs = sorted(text(c) for c in out_set)
    agents = sorted(text(c) for c in agent_set)

    def second(pipe: Pipeline) -> None:
        for cluster in outputs:
            pipe.hget(keys.output_key(cluster), "version")
        for cluster in agents:
            pipe.hmget(keys.agent_key(cluster), list(_AGENT_FACTS))

    replies = store.read("marks", second) if outputs or agents else []
    versions, facts = replies[: len(outputs)], replies[len(outputs) :]
    inputs = {}
    for raw_cluster, raw in status.items():
        try:
            found = json.loads(raw)
            inputs[text(raw_cluster)] = (str(found["generation"]), float(found["updated"]))
        except (ValueError, KeyError, TypeError):
            continue
    return Marks(
        inputs,
        {c: int(v) for c, v in zip(outputs, versions, strict=True) if v is not None},
        {
            c: {k: text(v) for k, v in zip(_AGENT_FACTS, found, strict=True) if v is not None}
            for c, found in zip(agents, facts, strict=True)
        },
        _forwarded(entries[0]) if entries else (),
    )

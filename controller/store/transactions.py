"""How the store talks to Redis: retries, the generation rule, and atomic reads and writes.

Where it sits: the base of `controller.store.store.Store`; every public Store operation is
one `_run` (the tenacity policy of `controller.store.connect.retrying_for`) around one
`_read`, `_watched_read` or `_write`. Nothing else in the package calls Redis directly,
except `ensure_generation` here and the blocking stream read (`controller.store.stream`).

The exception tree: `StoreError` (Redis unreachable after the retries, a refused command,
input the store cannot key) and its subclasses `CacheLost` (the generation key vanished or
changed: Redis lost its data; never retried) and `NotLeader` (a fenced write by a replica
that no longer holds the leader lock; never retried). Messages name keys and clusters, never
values or credentials.

Fencing. Writes only the leader may make (`_write(..., fenced=True)`: outputs, reports,
`clean`) also WATCH `gitops#leader` and `gitops#leader#fence` and check, before MULTI, that
they still name this replica and its token (`fence`, set by `controller.store.leader`);
otherwise `NotLeader`, and nothing is written. A Store without a fence (tools, tests)
writes unchecked.

Generation. `ensure_generation` (server start) creates `gitops#generation` when missing;
the Store adopts it (or, failing that, the first one it reads) and every later operation
checks it inside the same transaction as its reads, so an answer is never taken from a
cache that was emptied underneath it (FLUSHALL, a restart without persistence, a failover
to an empty replica).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
import redis
import tenacity
from redis.client import Pipeline

from controller.store import keys

__all__ = ["CacheLost", "Fence", "NotLeader", "StoreError", "Transactions", "encode", "text"]

T = TypeVar("T")
S = TypeVar("S")
#: A transaction that keeps losing WATCH races gives up after this many tries; the writers
#: are the server's own threads, so a real workload loses a race once in a while, not 50x.
_MAX_RACES = 50


class StoreError(Exception):
    """Redis could not do what was asked; the message says what, never any secret data."""


class CacheLost(StoreError):
    """The generation key vanished or changed: what Redis held was lost; reload from agents."""


class NotLeader(StoreError):
    """A write only the leader may make, by a replica that no longer holds the lock."""


@dataclass(frozen=True)
class Fence:
    """Who must hold the leader lock for a fenced write to go through: this replica's id
    and the token its acquisition got (0: never acquired, so every fenced write fails)."""

    holder: str
    token: int


def encode(obj: Mapping[str, Any]) -> bytes:
    """The stored JSON of one object: compact, keys sorted (same object, same bytes).

    orjson, not the standard library: a full load of a 100-cluster fleet decodes 300,000
    objects, which `json.loads` takes 4-7 s for and orjson well under one."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def text(value: bytes | str) -> str:
    """A reply as str, whether or not the client decodes responses."""
    return value.decode() if isinstance(value, bytes) else value


class Transactions:
    """Retries, the generation check, and MULTI/EXEC helpers over one client."""

    def __init__(self, client: redis.Redis, retrying: tenacity.Retrying | None) -> None:
        if retrying is None:
            from controller.store.connect import retrying_for  # connect imports this module
            from gitops.helm.models import RedisConnection

            retrying = retrying_for(RedisConnection())
        self._client = client
        self._retrying = retrying
        self._generation: str | None = None
        #: Checked by fenced writes; None: unchecked (a single process owns the store).
        self.fence: Fence | None = None

    @property
    def client(self) -> redis.Redis:
        """The redis-py client (the leader lock, `controller.store.leader`, shares it)."""
        return self._client

    def _run(self, what: str, op: Callable[[], T]) -> T:
        """`op` under the retry policy; redis errors left after it become StoreError."""
        attempts = self._retrying.copy()
        try:
            return attempts(op)
        except StoreError:
            raise
        except redis.RedisError as exc:
            tries = attempts.statistics.get("attempt_number", 1)
            raise StoreError(
                f"Redis {what} failed ({type(exc).__name__} after {tries} attempt(s)): {exc}"
            ) from exc

    def _check(self, current: bytes | str | None) -> str:
        """The generation, adopted on first sight; CacheLost when it vanished or changed."""
        if current is None:
            raise CacheLost(
                "Redis has no cache generation: the cache is new or was lost (FLUSHALL or a "
                "restart without persistence); ensure_generation() starts a new one"
            )
        now = text(current)
        if self._generation is None:
            self._generation = now
        elif now != self._generation:
            raise CacheLost(
                f"the cache generation changed ({self._generation} -> {now}): Redis lost "
                "its data and a new generation was started"
            )
        return now

    def _read(self, queue: Callable[[Pipeline], object]) -> list[Any]:
        """One MULTI/EXEC: `GET generation`, then what `queue` adds; returns their replies."""
        with self._client.pipeline(transaction=True) as pipe:
            pipe.get(keys.GENERATION)
            queue(pipe)
            replies = pipe.execute()
        self._check(replies[0])
        return replies[1:]

    def read(self, what: str, queue: Callable[[Pipeline], object]) -> list[Any]:
        """`_read` under the retry policy, for reads that live beside the Store
        (`controller.store.leader.marks`)."""
        return self._run(what, lambda: self._read(queue))

    def _watched_read(
        self,
        watch: str,
        prepare: Callable[[Pipeline], S],
        queue: Callable[[Pipeline, S], object],
    ) -> tuple[S, list[Any]]:
        """Reads that depend on an index set: WATCH it, `prepare` (reads it), then one
        MULTI/EXEC of `GET generation` and what `queue` adds. Redone if the set changed."""
        with self._client.pipeline(transaction=True) as pipe:
            for _ in range(_MAX_RACES):
                try:
                    pipe.watch(watch)  # type: ignore[no-untyped-call]
                    state = prepare(pipe)
                    pipe.multi()
                    pipe.get(keys.GENERATION)
                    queue(pipe, state)
                    replies = pipe.execute()
                except redis.WatchError:
                    continue
                self._check(replies[0])
                return state, replies[1:]
        raise StoreError(f"gave up after {_MAX_RACES} concurrent changes to {watch}")

    def _write(
        self,
        watch: Sequence[str],
        prepare: Callable[[Pipeline], S],
        queue: Callable[[Pipeline, S], object],
        *,
        fenced: bool = False,
    ) -> list[Any]:
        """WATCH the generation and `watch`; check the generation; `prepare` (immediate
        reads); then one MULTI/EXEC of what `queue` adds. Redone if a watched key changed,
        so nothing is written into a cache whose generation is gone. `fenced`: also the
        leader lock and token (see the module docstring)."""
        fence = self.fence if fenced else None
        lock = [keys.LEADER, keys.LEADER_FENCE] if fence is not None else []
        with self._client.pipeline(transaction=True) as pipe:
            for _ in range(_MAX_RACES):
                try:
                    pipe.watch(keys.GENERATION, *lock, *watch)  # type: ignore[no-untyped-call]
                    self._check(pipe.get(keys.GENERATION))
                    if fence is not None:
                        _check_fence(fence, pipe.mget(keys.LEADER, keys.LEADER_FENCE))
                    state = prepare(pipe)
                    pipe.multi()
                    queue(pipe, state)
                    return pipe.execute()
                except redis.WatchError:
                    continue
        raise StoreError(f"gave up after {_MAX_RACES} concurrent changes to {list(watch)}")

    def generation(self) -> str | None:
        """The generation in Redis now (None when there is none); checks nothing."""
        value = self._run("GET generation", lambda: self._client.get(keys.GENERATION))
        return None if value is None else text(value)

    def ensure_generation(self) -> tuple[str, bool]:
        """(generation, created_now): create one when missing; the Store adopts what exists."""
        candidate = uuid.uuid4().hex

        def op() -> tuple[str, bool]:
            with self._client.pipeline(transaction=True) as pipe:
                pipe.set(keys.GENERATION, candidate, nx=True)
                pipe.get(keys.GENERATION)
                created, current = pipe.execute()
            return text(current), bool(created)

        generation, created = self._run("ensure_generation", op)
        self._generation = generation
        return generation, created


def _check_fence(fence: Fence, found: Sequence[bytes | str | None]) -> None:
    holder, token = (None if v is None else text(v) for v in found)
    if holder != fence.holder or token != str(fence.token) or not fence.token:
        raise NotLeader(
            f"replica {fence.holder} no longer holds the leader lock ({keys.LEADER}: "
            f"{holder or 'unset'}; fencing token {token or 'unset'}, ours {fence.token}): "
            "only the leader publishes"
        )

"""The management server's Redis store: inputs, outputs, reports, agent facts (DESIGN.md 4).

Where it sits: the relay server writes each agent's pushed inputs (`replace_inputs` for a
complete snapshot, `update_inputs` for a delta); the reconcile loop reads them
(`load_inputs`, then `follow` on the diff stream), records what it published to each cluster
(`publish_outputs`) and the per-resource reports (`write_reports`), both fenced to the
leader (`controller.store.leader`); `/api/clusters` shows
`input_status` and `agent`; `gitops snapshot export|import` goes through
`controller.store.snapshot_dir`. Reports and agent facts are written by the base class,
`controller.store.records`. Key names are in `controller.store.keys`, stream entries in
`controller.store.stream`, retries and the generation rule in `controller.store.transactions`.

Consistency: every write is one MULTI/EXEC, prepared under WATCH of the generation key and of
the index sets it reads; every read is one MULTI/EXEC too (under WATCH of the key set when
it must list keys first). So a reader sees a cluster's snapshot whole or not at all, and
never reads from, or writes into, a cache whose generation is gone (`CacheLost`).
"""

from __future__ import annotations

import gc
import json
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
import redis
import tenacity
from redis.client import Pipeline

from controller.store import keys, stream
from controller.store.records import Records, check_cluster
from controller.store.stream import InputChange
from controller.store.transactions import (
    CacheLost,
    Fence,
    NotLeader,
    StoreError,
    encode,
    text,
)
from gitops.objects import ObjectId

__all__ = [
    "CacheLost",
    "Fence",
    "InputChange",
    "InputStatus",
    "NotLeader",
    "Published",
    "Store",
    "StoreError",
]

Objects = dict[str, list[dict[str, Any]]]


@dataclass(frozen=True)
class InputStatus:
    """A cluster's last complete snapshot: its generation, when, and its size now."""

    cluster: str
    generation: str
    updated: float
    objects: int


@dataclass(frozen=True)
class OutputWrite:
    """One cluster's part of `Store.write_many`."""

    encoded: Mapping[ObjectId, bytes]
    removed: Collection[ObjectId] = ()
    #: `encoded` is the whole set (the cluster's previous objects are dropped).
    replace: bool = False
    #: The config commit the outputs were translated from, kept beside the version.
    revision: str | None = None


@dataclass(frozen=True)
class Published:
    """What was last published to a cluster; version 0 and no objects when never."""

    cluster: str
    version: int
    objects: list[dict[str, Any]]
    #: The config commit they were translated from (None: unknown, written by an older
    #: version of the server).
    revision: str | None = None


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic GC while decoding a full load: JSON makes no cycles, yet every few
    thousand new dicts trigger a collection that re-walks all the dicts decoded so far
    (3x the decode time at 300,000 objects, bench/store.py)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class Store(Records):
    """The store over one redis-py client (see `controller.store.connect`)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        retrying: tenacity.Retrying | None = None,
        stream_maxlen: int = 10_000,
    ) -> None:
        super().__init__(client, retrying)
        #: The stream's MAXLEN ~ and the reader's "too far behind" bound (Gloo's rule).
        self._maxlen = stream_maxlen

    # -- inputs ---------------------------------------------------------------------------

    def _group(
        self, cluster: str, objects: Iterable[Mapping[str, Any]]
    ) -> dict[str, dict[str, bytes]]:
        grouped: dict[str, dict[str, bytes]] = {}
        for obj in objects:
            try:
                oid = ObjectId.of(obj)
            except ValueError as exc:
                raise StoreError(f"cluster {cluster}: {exc}") from None
            grouped.setdefault(keys.input_key_of(cluster, oid), {})[oid.field] = encode(obj)
        return grouped

    def _cluster_keys(self, pipe: Pipeline, cluster: str | None) -> set[str]:
        found = {text(k) for k in pipe.smembers(keys.KEY_SET)}
        if cluster is None:
            return found
        return {k for k in found if (parts := keys.split_input_key(k)) and parts[0] == cluster}

    def _xadd(self, pipe: Pipeline, change: str) -> None:
        # MAXLEN ~: trimming whole radix-tree nodes is cheap; readers detect a gap (follow).
        pipe.xadd(
            keys.DIFF_STREAM, {keys.STREAM_FIELD: change}, maxlen=self._maxlen, approximate=True
        )

    def replace_inputs(
        self, cluster: str, objects: Iterable[Mapping[str, Any]], *, now: float
    ) -> None:
        """Make `objects` the cluster's whole input snapshot, atomically; record its status."""
        check_cluster(cluster)
        grouped = self._group(cluster, objects)

        def queue(pipe: Pipeline, old: set[str]) -> None:
            if old:
                pipe.delete(*old)
            for key, fields in grouped.items():
                pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
            if stale := old - grouped.keys():
                pipe.srem(keys.KEY_SET, *stale)
            if grouped:
                pipe.sadd(keys.KEY_SET, *grouped)
            status = {"generation": self._generation, "updated": now}
            pipe.hset(keys.INPUT_STATUS, cluster, json.dumps(status))
            self._xadd(pipe, stream.full_change(cluster))

        self._run(
            "replace_inputs",
            lambda: self._write([keys.KEY_SET], lambda p: self._cluster_keys(p, cluster), queue),
        )

    def update_inputs(
        self,
        cluster: str,
        upserts: Iterable[Mapping[str, Any]],
        removed: Iterable[ObjectId],
        *,
        now: float,
    ) -> None:
        """Apply a delta atomically. A hash emptied by removals stays in the key set (a reader
        reads it as empty) until the cluster's next `replace_inputs`."""
        check_cluster(cluster)
        upserts = list(upserts)
        grouped = self._group(cluster, upserts)
        gone: dict[str, list[str]] = {}
        removed_ids = list(removed)
        for oid in removed_ids:
            gone.setdefault(keys.input_key_of(cluster, oid), []).append(oid.field)
        if not grouped and not gone:
            return
        change = stream.delta_change(cluster, map(ObjectId.of, upserts), removed_ids)

        def prepare(pipe: Pipeline) -> bytes | str | None:
            return pipe.hget(keys.INPUT_STATUS, cluster)

        def queue(pipe: Pipeline, status: bytes | str | None) -> None:
            for key, fields in grouped.items():
                pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
            for key, names in gone.items():
                pipe.hdel(key, *names)
            if grouped:
                pipe.sadd(keys.KEY_SET, *grouped)
            if status is not None:
                updated = {**json.loads(status), "updated": now}
                pipe.hset(keys.INPUT_STATUS, cluster, json.dumps(updated))
            self._xadd(pipe, change)

        self._run("update_inputs", lambda: self._write([keys.INPUT_STATUS], prepare, queue))

    def _load(
        self, cluster: str | None, with_stream: bool
    ) -> tuple[dict[str, list[dict[str, Any]]], str]:
        def queue(pipe: Pipeline, found: set[str]) -> None:
            pipe.hkeys(keys.INPUT_STATUS)
            if with_stream:
                pipe.xrevrange(keys.DIFF_STREAM, count=1)
            for key in sorted(found):
                pipe.hgetall(key)

        found, replies = self._watched_read(
            keys.KEY_SET, lambda p: self._cluster_keys(p, cluster), queue
        )
        statuses, rest = replies[0], replies[1:]
        last_id = "0-0"
        if with_stream:
            newest, rest = rest[0], rest[1:]
            last_id = text(newest[0][0]) if newest else "0-0"
        result: dict[str, list[dict[str, Any]]] = {
            text(c): [] for c in statuses if cluster is None or text(c) == cluster
        }
        with _collector_paused():
            for key, fields in zip(sorted(found), rest, strict=True):
                objects = result.setdefault(key.partition("~")[0], [])
                objects.extend(orjson.loads(fields[field]) for field in sorted(fields))
        return dict(sorted(result.items())), last_id

    def inputs(self, cluster: str) -> list[dict[str, Any]]:
        """The cluster's objects, one consistent snapshot, sorted by GVK then namespace/name."""
        found, _ = self._run("inputs", lambda: self._load(cluster, with_stream=False))
        return found.get(cluster, [])

    def load_inputs(self) -> tuple[dict[str, list[dict[str, Any]]], str]:
        """Every cluster's inputs and the diff stream's last id ("0-0" when empty), in ONE
        transaction; `follow` from that id sees exactly the changes made after it."""
        return self._run("load_inputs", lambda: self._load(None, with_stream=True))

    def input_status(self) -> dict[str, InputStatus]:
        """Per cluster that sent a complete snapshot: its generation, time, object count."""

        def queue(pipe: Pipeline, found: set[str]) -> None:
            pipe.hgetall(keys.INPUT_STATUS)
            for key in sorted(found):
                pipe.hlen(key)

        def op() -> dict[str, InputStatus]:
            found, replies = self._watched_read(
                keys.KEY_SET, lambda p: self._cluster_keys(p, None), queue
            )
            counts: dict[str, int] = {}
            for key, size in zip(sorted(found), replies[1:], strict=True):
                cluster = key.partition("~")[0]
                counts[cluster] = counts.get(cluster, 0) + int(size)
            result = {}
            for raw_cluster, raw in sorted(replies[0].items()):
                cluster, status = text(raw_cluster), json.loads(raw)
                result[cluster] = InputStatus(
                    cluster, status["generation"], float(status["updated"]), counts.get(cluster, 0)
                )
            return result

        return self._run("input_status", op)

    def follow(self, last_id: str, block_ms: int) -> list[InputChange] | None:
        """Changes after `last_id`, waiting up to `block_ms` for one ([] when none came).

        None means "reload everything": entries after `last_id` may have been trimmed (the
        id itself is gone), the read returned the stream bound or more (Gloo's rule), or an
        entry did not decode.
        """
        after = stream.stream_id(last_id)

        def op() -> list[InputChange] | None:
            (oldest,) = self._read(lambda p: p.xrange(keys.DIFF_STREAM, count=1))
            if oldest and after != (0, 0) and after < stream.stream_id(text(oldest[0][0])):
                return None
            entries = stream.read_after(self._client, last_id, block_ms, self._maxlen)
            if len(entries) >= self._maxlen:
                return None
            try:
                return [stream.decode(entry_id, fields) for entry_id, fields in entries]
            except (ValueError, KeyError, TypeError):
                return None

        return self._run("follow", op)

    # -- outputs --------------------------------------------------------------------------

    def publish_outputs(self, cluster: str, objects: Sequence[Mapping[str, Any]]) -> int:
        """Record the whole set published to a cluster, atomically; returns the new version."""
        try:
            encoded = {ObjectId.of(o): encode(o) for o in objects}
        except ValueError as exc:
            raise StoreError(f"cluster {cluster}: {exc}") from None
        return self.write_outputs(cluster, encoded, replace=True)

    def write_outputs(
        self,
        cluster: str,
        encoded: Mapping[ObjectId, bytes],
        removed: Collection[ObjectId] = (),
        *,
        replace: bool = False,
        revision: str | None = None,
    ) -> int:
        """Record a publish to one cluster; returns the new version (see `write_many`)."""
        write = OutputWrite(encoded, removed, replace, revision)
        return self.write_many({cluster: write})[cluster]

    def write_many(self, writes: Mapping[str, OutputWrite]) -> dict[str, int]:
        """Record publishes to several clusters in ONE transaction; each cluster's new
        version.

        A write with `replace` holds the whole set; otherwise what changed (object JSON as
        sent to agents) and what is gone: a one-policy edit writes its few objects, not the
        cluster's whole output (1.3 MB at 1,200 objects), and a hundred clusters cost one
        round trip. A retry after a reply lost in transit can bump a version twice: versions
        only ever grow, but may skip a number.
        """
        for cluster in writes:
            check_cluster(cluster)
        order = sorted(writes)
        at: dict[str, int] = {}

        def queue(pipe: Pipeline, _: None) -> None:
            for cluster in order:
                write = writes[cluster]
                key, objects_key = keys.output_key(cluster), keys.output_objects_key(cluster)
                mapping = {keys.output_field(oid): data for oid, data in write.encoded.items()}
                gone = [keys.output_field(o) for o in write.removed if o not in write.encoded]
                at[cluster] = len(pipe.command_stack)
                pipe.hincrby(key, "version", 1)
                if write.revision:
                    pipe.hset(key, "revision", write.revision)
                else:  # a folder source has no commit: never leave an older one standing
                    pipe.hdel(key, "revision")
                if write.replace:
                    pipe.delete(objects_key)
                elif gone:
                    pipe.hdel(objects_key, *gone)
                if mapping:
                    pipe.hset(objects_key, mapping=mapping)  # type: ignore[arg-type]
                pipe.sadd(keys.OUTPUT_CLUSTERS, cluster)

        replies = self._run(
            "write_outputs", lambda: self._write([], lambda p: None, queue, fenced=True)
        )
        return {cluster: int(replies[i]) for cluster, i in at.items()}

    def outputs(self, cluster: str) -> Published:
        """What was last published to the cluster, objects sorted by id."""
        (version, revision), fields = self._run(
            "outputs",
            lambda: self._read(
                lambda p: (
                    p.hmget(keys.output_key(cluster), ["version", "revision"]),
                    p.hgetall(keys.output_objects_key(cluster)),
                )
            ),
        )
        if version is None:
            return Published(cluster, 0, [])
        ordered = sorted(fields, key=lambda f: keys.output_id(text(f)))
        objects = [orjson.loads(fields[f]) for f in ordered]
        return Published(cluster, int(version), objects, text(revision) if revision else None)

    def output_clusters(self) -> set[str]:
        (members,) = self._run(
            "output_clusters", lambda: self._read(lambda p: p.smembers(keys.OUTPUT_CLUSTERS))
        )
        return {text(m) for m in members}

    # -- housekeeping ---------------------------------------------------------------------

    def clean(self, active_clusters: Collection[str]) -> list[str]:
        """Delete inputs, status, outputs and agent facts of every cluster not in
        `active_clusters` (Gloo's `Clean`, leader only); returns those clusters, sorted."""
        active = set(active_clusters)
        index = [keys.KEY_SET, keys.INPUT_STATUS, keys.OUTPUT_CLUSTERS, keys.AGENT_CLUSTERS]

        def prepare(pipe: Pipeline) -> tuple[list[str], list[str]]:
            input_keys = self._cluster_keys(pipe, None)
            known = {k.partition("~")[0] for k in input_keys}
            known |= {text(c) for c in pipe.hkeys(keys.INPUT_STATUS)}
            known |= {text(c) for c in pipe.smembers(keys.OUTPUT_CLUSTERS)}
            known |= {text(c) for c in pipe.smembers(keys.AGENT_CLUSTERS)}
            gone = sorted(known - active)
            return gone, sorted(k for k in input_keys if k.partition("~")[0] in gone)

        def queue(pipe: Pipeline, state: tuple[list[str], list[str]]) -> None:
            gone, input_keys = state
            if input_keys:
                pipe.delete(*input_keys)
                pipe.srem(keys.KEY_SET, *input_keys)
            for cluster in gone:
                pipe.delete(
                    keys.output_key(cluster),
                    keys.output_objects_key(cluster),
                    keys.agent_key(cluster),
                )
                self._xadd(pipe, stream.full_change(cluster))
            if gone:
                pipe.hdel(keys.INPUT_STATUS, *gone)
                pipe.srem(keys.OUTPUT_CLUSTERS, *gone)
                pipe.srem(keys.AGENT_CLUSTERS, *gone)

        holder: list[list[str]] = []

        def op() -> None:
            def remember(pipe: Pipeline) -> tuple[list[str], list[str]]:
                state = prepare(pipe)
                holder[:] = [state[0]]
                return state

            self._write(index, remember, queue, fenced=True)

        self._run("clean", op)
        return holder[0] if holder else []

    def check_eviction_policy(self) -> None:
        """StoreError unless Redis never evicts keys: an evicted input hash would look like
        objects deleted from a cluster, and outputs computed from it would delete config."""
        try:
            found = self._run(
                "CONFIG GET maxmemory-policy", lambda: self._client.config_get("maxmemory-policy")
            )
        except StoreError as exc:
            raise StoreError(
                f"cannot check Redis maxmemory-policy ({exc}); it must be noeviction"
            ) from None
        policy = text(next(iter(found.values()), None) or "unknown")
        if policy != "noeviction":
            raise StoreError(
                f"Redis maxmemory-policy is {policy}, but the store needs noeviction: with "
                f"{policy}, Redis may silently drop cached snapshots under memory pressure. Fix: "
                "`CONFIG SET maxmemory-policy noeviction` (and `maxmemory-policy noeviction` in "
                "redis.conf), or the managed service's equivalent parameter"
            )

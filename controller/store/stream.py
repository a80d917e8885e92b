"""The diff stream `gloo.mesh.diff.stream`: what its entries hold and how they are read.

Where it sits: `Store.replace_inputs`, `update_inputs` and `clean` append one entry per
change (`full_change`, `delta_change`) in the same transaction as the change itself;
`Store.follow` reads entries after an id (`read_after`) and decodes them (`decode`) so the
reconcile loop can apply deltas instead of reloading every cluster.

Gloo's entries hold a serialized `ClusterResourcePatch` under the field `stream.diff.key`;
ours hold JSON under the same field: `{"cluster", "full"}` for a replaced or removed
cluster (the reader reloads that cluster), plus `upserted` and `removed` id lists
(`[group, version, kind, namespace, name]`) for a delta. Ids, not objects: the objects are in
the hashes, and a reader that is behind must read the newest value anyway.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import redis

from controller.store import keys
from gitops.objects import ObjectId

__all__ = ["InputChange", "decode", "delta_change", "full_change", "read_after", "stream_id"]


@dataclass(frozen=True)
class InputChange:
    """One diff-stream entry. `full`: the cluster was replaced or removed; reload all of it
    (`upserted`/`removed` are then empty). Otherwise the ids whose objects changed."""

    stream_id: str
    cluster: str
    full: bool
    upserted: list[ObjectId]
    removed: list[ObjectId]


def full_change(cluster: str) -> str:
    return json.dumps({"cluster": cluster, "full": True}, separators=(",", ":"))


def delta_change(cluster: str, upserted: Iterable[ObjectId], removed: Iterable[ObjectId]) -> str:
    change = {
        "cluster": cluster,
        "full": False,
        "upserted": [list(oid) for oid in upserted],
        "removed": [list(oid) for oid in removed],
    }
    return json.dumps(change, separators=(",", ":"))


def stream_id(value: str) -> tuple[int, int]:
    """`ms-seq` as a comparable pair (`0` and `0-0` are the start)."""
    ms, _, seq = value.partition("-")
    return int(ms), int(seq or 0)


def decode(entry_id: str, fields: Mapping[Any, Any]) -> InputChange:
    """An entry as an InputChange; ValueError, KeyError or TypeError when it is not ours."""
    raw = fields.get(keys.STREAM_FIELD.encode(), fields.get(keys.STREAM_FIELD))
    change = json.loads(raw)
    return InputChange(
        entry_id,
        str(change["cluster"]),
        bool(change["full"]),
        [ObjectId(*map(str, p)) for p in change.get("upserted", [])],
        [ObjectId(*map(str, p)) for p in change.get("removed", [])],
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def read_after(
    client: redis.Redis, last_id: str, block_ms: int, count: int
) -> list[tuple[str, Mapping[Any, Any]]]:
    """`XREAD COUNT count BLOCK block_ms STREAMS gloo.mesh.diff.stream last_id`.

    redis-py applies the plain socket timeout (`readTimeout`) to a blocking read; like
    go-redis, wait the block time on top of it, or every quiet interval would end in a
    TimeoutError. So the command is sent on a connection borrowed from the pool, and its
    reply read with the longer timeout.
    """
    pool = client.connection_pool
    conn: Any = pool.get_connection()
    try:
        conn.send_command(
            "XREAD", "COUNT", count, "BLOCK", block_ms, "STREAMS", keys.DIFF_STREAM, last_id
        )
        timeout = conn.socket_timeout
        if timeout is None:
            raw = conn.read_response()
        else:
            raw = conn.read_response(timeout=timeout + block_ms / 1000)
    finally:
        pool.release(conn)
    if not raw:
        return []
    # RESP2: [[stream, [[id, [field, value, ...]], ...]]]; RESP3: {stream: [[id, {f: v}]]}.
    streams = raw.items() if isinstance(raw, dict) else raw
    entries: list[tuple[str, Mapping[Any, Any]]] = []
    for _, items in streams:
        for entry_id, fields in items:
            if isinstance(fields, list):
                fields = dict(zip(fields[::2], fields[1::2], strict=True))
            entries.append((_text(entry_id), fields))
    return entries

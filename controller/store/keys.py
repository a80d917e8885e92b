"""The Redis key layout of the management server's store (DESIGN.md section 4).

Where it sits: `controller.store.store.Store` builds every key it touches here, so the
layout is written down once, and tests and `redis-cli keys '*'` read the same names.
Inputs follow Gloo's relay storage (gloo-semantics.md section 5.5) so an operator who
knows Gloo reads the cache the same way; everything else is ours and uses `#` as the
separator, which no Kubernetes name or kind can contain.

| Key | Type | Holds |
|---|---|---|
| `{cluster}~{group}~{version}~{kind}` | hash | inputs: field `namespace/name`, value object JSON |
| `gloo.mesh.key.set` | set | every input hash key |
| `gloo.mesh.diff.stream` | stream | one entry per input change, field `stream.diff.key` |
| `gitops#generation` | string | the cache generation (lost on FLUSHALL or restart) |
| `gitops#inputs#status` | hash | field cluster: `{"generation", "updated"}` JSON |
| `outputs#{cluster}` | hash | `version` (int): the published output version |
| `outputs#{cluster}#objects` | hash | field `{group}~{version}~{kind}~{ns}/{name}`: JSON |
| `gitops#outputs#clusters` | set | clusters with an `outputs#` key |
| `reports#{kind}#{namespace}#{name}` | string | one resource's report JSON |
| `gitops#reports#keys` | set | every `reports#` key (so a replace deletes stale ones) |
| `agents#{cluster}` | hash | facts about a cluster's agent (shown by /api/clusters) |
| `gitops#agents#clusters` | set | clusters with an `agents#` key |
| `gitops#leader` | string | the leader replica's id, with the lease as its TTL |
| `gitops#leader#fence` | string | the fencing token: INCR on every acquisition |
| `gitops#triggers` | stream | webhooks and syncs a follower hands to the leader |
| `gitops#commit#{sha}` | string | a commit's report (`/reports/<sha>`) JSON; expires in 30 days |
"""

from __future__ import annotations

from gitops.objects import ObjectId

#: Set of every input hash key (Gloo's name).
KEY_SET = "gloo.mesh.key.set"
#: Stream of input changes (Gloo's name); entries carry one field, `STREAM_FIELD`.
DIFF_STREAM = "gloo.mesh.diff.stream"
STREAM_FIELD = "stream.diff.key"
#: Created at server start when missing; its absence later means the cache was lost.
GENERATION = "gitops#generation"
INPUT_STATUS = "gitops#inputs#status"
OUTPUT_CLUSTERS = "gitops#outputs#clusters"
REPORT_KEYS = "gitops#reports#keys"
AGENT_CLUSTERS = "gitops#agents#clusters"
#: The leader lock (`controller.store.leader`) and its fencing token.
LEADER = "gitops#leader"
LEADER_FENCE = "gitops#leader#fence"
#: Triggers (webhook reasons, manual syncs) followers forward to the leader; the leader
#: deletes each entry once it has fired its own trigger for it.
TRIGGERS = "gitops#triggers"
#: A commit's report outlives the reconcile that wrote it, not forever: a month of commits.
COMMIT_REPORT_SECONDS = 30 * 24 * 3600

#: Characters that would make a key ambiguous: `~` splits input keys, `#` ours.
_RESERVED = ("~", "#")


def check_cluster(cluster: str) -> str:
    """The cluster name, or ValueError when it cannot be part of a key."""
    if not cluster or any(c in cluster for c in _RESERVED) or cluster != cluster.strip():
        raise ValueError(f"{cluster!r} is not a cluster name (empty, spaces, '~' or '#')")
    return cluster


def input_key(cluster: str, gvk: str) -> str:
    """`{cluster}~{group}~{version}~{kind}` for a `gvk` as `ObjectId.gvk` spells it."""
    return f"{cluster}~{gvk}"


def input_key_of(cluster: str, oid: ObjectId) -> str:
    return input_key(cluster, oid.gvk)


def split_input_key(key: str) -> tuple[str, str] | None:
    """(cluster, gvk) of an input hash key; None for a key that is not one."""
    cluster, sep, gvk = key.partition("~")
    if not sep or not cluster or gvk.count("~") != 2:
        return None
    return cluster, gvk


def output_key(cluster: str) -> str:
    return f"outputs#{cluster}"


def output_objects_key(cluster: str) -> str:
    return f"outputs#{cluster}#objects"


def output_field(oid: ObjectId) -> str:
    return f"{oid.gvk}~{oid.field}"


def output_id(field: str) -> ObjectId:
    """Inverse of `output_field`; ValueError on a malformed field."""
    group, version, kind, rest = [*field.split("~", 3), "", "", ""][:4]
    return ObjectId.from_parts(f"{group}~{version}~{kind}", rest)


def agent_key(cluster: str) -> str:
    return f"agents#{cluster}"


def report_key(kind: str, namespace: str, name: str) -> str:
    """`reports#{kind}#{namespace}#{name}`; cluster-scoped resources have an empty namespace."""
    for part, what in ((kind, "kind"), (name, "name")):
        if not part or "#" in part:
            raise ValueError(f"report {what} {part!r} is empty or contains '#'")
    if "#" in namespace:
        raise ValueError(f"report namespace {namespace!r} contains '#'")
    return f"reports#{kind}#{namespace}#{name}"


def commit_report_key(sha: str) -> str:
    """`gitops#commit#{sha}` for a full lowercase hexadecimal commit id."""
    if len(sha) not in (40, 64) or any(c not in "0123456789abcdef" for c in sha):
        raise ValueError(f"{sha[:80]!r} is not a full commit SHA")
    return f"gitops#commit#{sha}"

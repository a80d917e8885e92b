"""The management server's Redis store (DESIGN.md section 4; issue 4).

Where it sits: between the relay (which writes what agents push) and the reconcile loop
(which reads inputs, records outputs and reports); `gitops snapshot export|import` moves
snapshots between it and `SNAP/<cluster>/` directories. The key layout follows Gloo's
(`cluster1~~v1~Service`, `gloo.mesh.key.set`, `gloo.mesh.diff.stream`), so
`redis-cli keys '*'` reads the same way.

Modules: `store` (the `Store` and its values), `connect` (a client and the retry policy from
the Helm values `redis.*`), `local` (the built-in redis-server), `snapshot_dir` (export and
import), and underneath `keys` (names), `stream` (diff-stream entries) and `transactions`
(retries, the generation rule, MULTI/EXEC).

Exceptions: `StoreError` for everything Redis could not do (after the retries, for
connection problems); its subclass `CacheLost` when the generation key vanished, i.e.
Redis lost its data, which the caller answers by re-entering safe mode; its subclass
`NotLeader` when a write only the leader may make comes from a replica that lost the
leader lock (`leader`: the lock, its fencing token, and what replicas follow).
"""

from controller.store.connect import connect, retrying_for
from controller.store.leader import Lease
from controller.store.local import LocalRedis
from controller.store.snapshot_dir import export_snapshots, import_snapshots
from controller.store.store import (
    CacheLost,
    Fence,
    InputChange,
    InputStatus,
    NotLeader,
    OutputWrite,
    Published,
    Store,
    StoreError,
)

__all__ = [
    "CacheLost",
    "Fence",
    "InputChange",
    "InputStatus",
    "Lease",
    "LocalRedis",
    "NotLeader",
    "OutputWrite",
    "Published",
    "Store",
    "StoreError",
    "connect",
    "export_snapshots",
    "import_snapshots",
    "retrying_for",
]

"""What the HTTP endpoints may know about the running server: a read-only view.

The health and API apps (`controller.server.http`) read the server only through
`ServerView`; the server implements it over its own state (fleet, store, safe-mode gate)
and hands it to `health_app` / `api_app` at start-up. Keeping the endpoints behind this
Protocol means they never reach into the loop's internals, and tests drive them with a
small fake instead of a whole server.

Threading: the view is called from the listeners' threads (`controller.server.listeners`),
concurrently with the loop, so implementations return immutable values (the frozen
dataclasses below) built from a consistent snapshot of their state. Calls may block
briefly (a Redis PING with a short timeout): the endpoints run them in a worker thread,
off the listener's event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ClusterState:
    """One registered cluster as the server sees it now (a row of `/api/clusters`)."""

    #: The registered cluster name (its KubernetesCluster, its certificate's identity).
    name: str
    #: An agent holds a relay stream open for it.
    connected: bool
    #: When its last complete input snapshot was stored, epoch seconds (None: never).
    last_snapshot: float | None
    #: The latest output version published for it (None: nothing published yet).
    output_version: int | None
    #: The output version its agent last ACKed (None: no ACK yet).
    applied_version: int | None
    #: Owned objects the agent currently reports as drifted.
    drift: int
    #: Safe mode (or the start window) is waiting for its complete snapshot.
    awaited: bool
    #: The start window expired without its snapshot: it gets no pushes (config frozen).
    pushes_frozen: bool = False
    #: Objects in the published output version.
    objects: int = 0
    #: Objects the agent's last NACK named (0 after an ACK).
    errors: int = 0
    #: The config commit the published version was translated from.
    published_revision: str | None = None
    #: The config commit the agent runs: the published one once it ACKed that version,
    #: None while it is on an older version (the server keeps no history of versions).
    applied_revision: str | None = None
    #: Why the sync policy refused the last commit for this cluster ("": not refused).
    refused: str = ""
    #: The commit refused (None unless `refused`).
    refused_revision: str | None = None
    #: A commit held for a manual sync (`gitops.sync.automated: false`), if any.
    held_revision: str | None = None


@dataclass(frozen=True)
class SafeModeState:
    """The safe-mode gate as `/readyz` reports it (mirrors `gitops.safemode.Gate`)."""

    #: Safe mode (or the start window) is holding translation back: not ready.
    active: bool
    #: Registered clusters still expected to push a complete snapshot, sorted.
    awaited: tuple[str, ...]
    #: When the start window ends, epoch seconds (None: no window, or waiting indefinitely).
    window_expires: float | None
    #: One line saying why, as the gate wrote it.
    reason: str


class ServerView(Protocol):
    """The read-only surface of the management server that HTTP endpoints use."""

    def redis_ok(self) -> bool:
        """The store answered its last health check (readiness needs Redis)."""
        ...

    def safe_mode(self) -> SafeModeState:
        """The current safe-mode gate."""
        ...

    def clusters(self) -> list[ClusterState]:
        """Every registered cluster, in any order (the API sorts by name)."""
        ...

    def config_revision(self) -> str | None:
        """The config commit the server last loaded (None: nothing loaded yet)."""
        ...

    def leader(self) -> bool:
        """This replica holds the leader lock: it translates and publishes; the others
        serve what it published (`gitops.leader`)."""
        ...

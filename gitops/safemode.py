"""Safe mode: when the management server may translate, and which clusters get pushes.

DESIGN.md section 4 and gloo-semantics.md section 5.6. After a start with an empty cache,
or after the cache was lost under a running server (Redis flushed or restarted), the
server knows nothing about the clusters until their agents push again. Translating then
would compute outputs without those clusters' services, and publishing them would delete
cross-cluster config everywhere. So:

- `safeMode: true` (the default): translate nothing until every registered cluster
  (a KubernetesCluster in the config) has pushed a complete snapshot, except clusters with
  `spec.skipWarming: true`.
- `safeMode: false` with `safeStartWindow: N`: wait for them at most N seconds from the
  start of warming, then translate with what exists. `N = 0`: do not wait.
- Whatever the mode, a cluster that has not pushed a complete snapshot since warming began
  gets no output push at all, so its applied config stays as it is (frozen) until it does.

The controller (`controller/server/fleet.py`) calls `decide` before every translation,
passing the time in; this module has no clock.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass


@dataclass(frozen=True)
class Warming:
    """The server is (re)building its cache: since when, and under which settings."""

    #: When warming began (server start with an empty cache, or the cache loss), epoch s.
    since: float
    #: `glooMgmtServer.safeMode`.
    safe_mode: bool
    #: `glooMgmtServer.safeStartWindow`, seconds (used only with safe mode off).
    window: float


@dataclass(frozen=True)
class Gate:
    """What the server may do now."""

    #: Translate and publish (to `push_to` only).
    translate: bool
    #: Clusters whose outputs may be published.
    push_to: frozenset[str]
    #: Registered clusters still expected to push a complete snapshot.
    awaited: tuple[str, ...]
    #: Safe mode (or a start window) is holding translation back.
    active: bool
    #: When the start window ends (None: no window, or safe mode waits indefinitely).
    window_expires: float | None
    #: One line for `/readyz` and logs.
    reason: str
    #: True once nothing is awaited: the server can stop warming.
    warmed: bool


def decide(
    registered: Collection[str],
    skip_warming: Collection[str],
    complete: Collection[str],
    warming: Warming | None,
    now: float,
) -> Gate:
    """The gate for one translation.

    `registered`: clusters with a KubernetesCluster; `skip_warming`: those marked
    `skipWarming`; `complete`: clusters that pushed a complete snapshot since warming began
    (or ever, when not warming); `warming`: None once the cache is warm.
    """
    have = frozenset(complete)
    push_to = frozenset(c for c in registered if c in have)
    awaited = tuple(sorted(c for c in registered if c not in have and c not in skip_warming))
    if warming is None or not awaited:
        return Gate(True, push_to, awaited, False, None, _ready(awaited), warmed=True)
    names = ", ".join(awaited)
    if warming.safe_mode:
        reason = f"safe mode: waiting for a complete snapshot from {names}"
        return Gate(False, push_to, awaited, True, None, reason, warmed=False)
    expires = warming.since + warming.window
    if now < expires:
        reason = f"start window: waiting up to {expires - now:.0f}s more for {names}"
        return Gate(False, push_to, awaited, True, expires, reason, warmed=False)
    reason = f"start window over: translating without {names}; they get no pushes"
    return Gate(True, push_to, awaited, False, expires, reason, warmed=False)


def _ready(awaited: tuple[str, ...]) -> str:
    if awaited:
        return f"translating; no snapshot yet from {', '.join(awaited)} (skipWarming)"
    return "every registered cluster has pushed a snapshot"

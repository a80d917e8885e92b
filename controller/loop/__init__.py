"""The management server's loop: what starts a reconcile (DESIGN.md section 8, issue 5).

Triggers only; the reconcile itself is elsewhere. `gitops serve` builds a `Trigger`
around its reconcile, feeds it from a `PollTimer` (with `HeadWatch` as its cheap check),
from the webhook routes it mounts on the API listener (`webhook_routes`), and, for a
local-path source, from a `LocalWatch`.
"""

from __future__ import annotations

from controller.loop.remote_head import HeadWatch, RemoteHeadError, remote_head
from controller.loop.triggers import LocalWatch, PollTimer, Trigger
from controller.loop.webhooks import PROVIDERS, HookEvent, webhook_routes

__all__ = [
    "PROVIDERS",
    "HeadWatch",
    "HookEvent",
    "LocalWatch",
    "PollTimer",
    "RemoteHeadError",
    "Trigger",
    "remote_head",
    "webhook_routes",
]

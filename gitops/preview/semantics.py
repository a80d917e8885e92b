"""Mesh-semantic summary: what a change means for traffic and access, not which lines moved.

Where it sits: `gitops.preview.diff.diff_clusters` calls `summarize` once per cluster with
the base and head renderings (Istio objects as plain values), and `newly_invalid` once
with both runs' reports. Each finding is one human sentence; they are sorted, so the
bullets of a preview are as deterministic as its diffs.

What is read, from the Istio objects the translators emit:
- VirtualService: hosts, http routes (by name, else by position), their matches, the
  destination weights, `timeout`, `retries` and `fault`;
- PeerAuthentication `mtls.mode` and DestinationRule `trafficPolicy.tls.mode`;
- AuthorizationPolicy principals (`rules[].from[].source.principals`) per target
  workload. Dry-run policies (`istio.io/dry-run: "true"`) are skipped: they enforce nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gitops.reasons import State
from gitops.reports import Report

__all__ = ["newly_invalid", "summarize"]

Obj = Mapping[str, Any]


def summarize(before: Sequence[Obj], after: Sequence[Obj]) -> tuple[str, ...]:
    """Sorted, de-duplicated sentences describing the mesh-level effect of before -> after."""
    found: set[str] = set()
    found.update(_hosts(before, after))
    found.update(_routes(before, after))
    found.update(_mtls(before, after))
    found.update(_access(before, after))
    return tuple(sorted(found))


def newly_invalid(base: Iterable[Report], head: Iterable[Report]) -> tuple[str, ...]:
    """Resources that are INVALID/FAILED in the head and were not in the base, with why."""
    was_bad = {r.ref for r in base if r.state >= State.FAILED}
    out = []
    for r in head:
        if r.state < State.FAILED or r.ref in was_bad:
            continue
        reasons = sorted({d.reason.name for d in r.diagnostics if d.reason.state >= State.FAILED})
        why = f" ({', '.join(reasons)})" if reasons else ""
        out.append(f"{r.ref} became {r.state.name}{why}")
    return tuple(sorted(out))


def _of_kind(objs: Sequence[Obj], kind: str) -> list[Obj]:
    return [o for o in objs if o.get("kind") == kind]


def _where(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def _spec(obj: Obj) -> Mapping[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _canon(value: Any) -> str:
    """A short, stable text for a nested value (matches, retries)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


# --- hosts and routes ---------------------------------------------------------------------


def _hosts(before: Sequence[Obj], after: Sequence[Obj]) -> Iterable[str]:
    def hosts(objs: Sequence[Obj]) -> set[str]:
        return {
            str(h) for vs in _of_kind(objs, "VirtualService") for h in _spec(vs).get("hosts") or []
        }

    old, new = hosts(before), hosts(after)
    yield from (f"host added: {h}" for h in new - old)
    yield from (f"host removed: {h}" for h in old - new)


def _route_table(objs: Sequence[Obj]) -> dict[tuple[str, str], Mapping[str, Any]]:
    """(VirtualService ns/name, route name) -> the http route."""
    out: dict[tuple[str, str], Mapping[str, Any]] = {}
    for vs in _of_kind(objs, "VirtualService"):
        for i, route in enumerate(_spec(vs).get("http") or []):
            if isinstance(route, Mapping):
                out[(_where(vs), str(route.get("name") or f"#{i}"))] = route
    return out


def _routes(before: Sequence[Obj], after: Sequence[Obj]) -> Iterable[str]:
    old, new = _route_table(before), _route_table(after)
    for key in sorted(set(old) | set(new)):
        label = f"route {key[1]} ({key[0]})"
        was, now = old.get(key), new.get(key)
        if was is None and now is not None:
            yield f"{label} added, matching {_canon(now.get('match') or [])}"
        elif now is None and was is not None:
            yield f"{label} removed"
        elif was is not None and now is not None:
            yield from _route_changes(label, was, now)


def _route_changes(label: str, was: Mapping[str, Any], now: Mapping[str, Any]) -> Iterable[str]:
    if _canon(was.get("match")) != _canon(now.get("match")):
        yield f"{label}: match {_canon(was.get('match') or [])} -> {_canon(now.get('match') or [])}"
    old_w, new_w = _weights(was), _weights(now)
    if old_w != new_w:
        parts = [
            f"{dest} {old_w.get(dest, 0)} -> {new_w.get(dest, 0)}"
            for dest in sorted(set(old_w) | set(new_w))
            if old_w.get(dest, 0) != new_w.get(dest, 0)
        ]
        yield f"{label}: weight shift: {', '.join(parts)}"
    for field in ("timeout", "retries"):
        if _canon(was.get(field)) != _canon(now.get(field)):
            yield f"{label}: {field} {_short(was.get(field))} -> {_short(now.get(field))}"
    had, has = bool(was.get("fault")), bool(now.get("fault"))
    if had != has:
        yield f"{label}: fault injection {'on' if has else 'off'}" + (
            f" ({_canon(now['fault'])})" if has else ""
        )
    elif had and _canon(was.get("fault")) != _canon(now.get("fault")):
        yield f"{label}: fault injection {_canon(was['fault'])} -> {_canon(now['fault'])}"


def _short(value: Any) -> str:
    if value is None:
        return "none"
    return value if isinstance(value, str) else _canon(value)


def _weights(route: Mapping[str, Any]) -> dict[str, int]:
    """Destination (host[:port][/subset]) -> weight; a lone destination carries all traffic."""
    dests = [d for d in route.get("route") or [] if isinstance(d, Mapping)]
    out: dict[str, int] = {}
    for d in dests:
        dest = d.get("destination") or {}
        name = str(dest.get("host", ""))
        port = (dest.get("port") or {}).get("number")
        if port is not None:
            name += f":{port}"
        if dest.get("subset"):
            name += f"/{dest['subset']}"
        # Istio: with one destination the weight may be omitted and means 100.
        default = 100 if len(dests) == 1 else 0
        out[name] = out.get(name, 0) + int(d.get("weight", default) or default)
    return out


# --- mTLS -----------------------------------------------------------------------------------


def _tls_modes(objs: Sequence[Obj]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pa in _of_kind(objs, "PeerAuthentication"):
        spec = _spec(pa)
        out[f"PeerAuthentication {_where(pa)}"] = str((spec.get("mtls") or {}).get("mode", "UNSET"))
        for port, setting in sorted((spec.get("portLevelMtls") or {}).items()):
            out[f"PeerAuthentication {_where(pa)} port {port}"] = str(
                (setting or {}).get("mode", "UNSET")
            )
    for dr in _of_kind(objs, "DestinationRule"):
        tls = (_spec(dr).get("trafficPolicy") or {}).get("tls")
        if tls:
            out[f"DestinationRule {_where(dr)}"] = str(tls.get("mode", "UNSET"))
    return out


def _mtls(before: Sequence[Obj], after: Sequence[Obj]) -> Iterable[str]:
    old, new = _tls_modes(before), _tls_modes(after)
    for key in set(old) | set(new):
        if old.get(key) != new.get(key):
            yield f"mTLS mode {key}: {old.get(key, 'none')} -> {new.get(key, 'none')}"


# --- access ----------------------------------------------------------------------------------


#: How non-ALLOW actions read in a sentence ("is now denied at ...").
_VERB = {"DENY": "denied", "AUDIT": "audited", "CUSTOM": "sent to a custom authorizer"}


def _grants(objs: Sequence[Obj]) -> set[tuple[str, str, str]]:
    """(action, principal, target workload) for every enforced AuthorizationPolicy rule."""
    out: set[tuple[str, str, str]] = set()
    for ap in _of_kind(objs, "AuthorizationPolicy"):
        annotations = (ap.get("metadata") or {}).get("annotations") or {}
        if str(annotations.get("istio.io/dry-run", "")).lower() == "true":
            continue
        spec = _spec(ap)
        action = str(spec.get("action", "ALLOW"))
        target = _target(ap)
        for rule in spec.get("rules") or []:
            for src in (rule or {}).get("from") or []:
                for principal in ((src or {}).get("source") or {}).get("principals") or []:
                    out.add((action, str(principal), target))
    return out


def _target(ap: Obj) -> str:
    namespace = (ap.get("metadata") or {}).get("namespace", "")
    labels = (_spec(ap).get("selector") or {}).get("matchLabels") or {}
    selected = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return f"{namespace}/{selected or '*'}"


def _access(before: Sequence[Obj], after: Sequence[Obj]) -> Iterable[str]:
    old, new = _grants(before), _grants(after)
    for action, principal, target in new - old:
        if action == "ALLOW":
            yield f"{principal} gained access to {target}"
        else:
            yield f"{principal} is now {_VERB.get(action, action)} at {target}"
    for action, principal, target in old - new:
        if action == "ALLOW":
            yield f"{principal} lost access to {target}"
        else:
            yield f"{principal} is no longer {_VERB.get(action, action)} at {target}"

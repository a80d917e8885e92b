"""EnvoyFilter segmentation: one proxy's config patches cut into EnvoyFilters under 1 MiB.

Called by `envoy_filter` for every proxy it renders, once the proxy's patches are built
in the order they must apply (filter inserts, then filter merges, then route merges).
Rules (gloo-semantics.md 6):

- **segmented** (the default, as in Gloo 2.5+): patches are grouped by the canonical JSON
  of their `match`; each group is one EnvoyFilter named `S("{port}-{kind}-{subject}-{hash}")`
  (`8080-http-filter-envoy-filters-http-jwt-authn-0c1d...`), the hash taken over the proxy
  and the match so two proxies in a namespace never share a name;
- order across EnvoyFilters is kept with `spec.priority` (Istio applies lower first):
  filter inserts get the lowest, in the order their filters appear (`INSERT_PRIORITY + i`),
  then merges into a filter, then route merges;
- a group still over the limit is cut into numbered chunks `<name>-0`, `<name>-1`, ...,
  each under `MAX_OBJECT_BYTES - MARGIN` serialized (`json.dumps`);
- **unsegmented** (`glooMgmtServer.extraEnvs.EXPERIMENTAL_SEGMENT_ENVOY_FILTERS_BY_MATCHER`
  set to "false"): one EnvoyFilter holds all of a proxy's patches, in order; if it is
  over `MAX_OBJECT_BYTES` the caller reports it (`ObjectTooLarge`) and emits nothing.

`split` only plans; the caller builds each object and checks its exact size, so nothing
over the limit is ever emitted (a single patch bigger than a whole EnvoyFilter cannot be
cut and comes back alone, to be refused).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gitops import names
from gitops.translate.outputs import MAX_OBJECT_BYTES

SEGMENT_ENV = "EXPERIMENTAL_SEGMENT_ENVOY_FILTERS_BY_MATCHER"
#: Room kept under the limit in every segment: what the API server and the agent add
#: (resourceVersion, managedFields, a longer chunk name).
MARGIN = 16 * 1024
INSERT_PRIORITY = 10
FILTER_MERGE_PRIORITY = 100
ROUTE_PRIORITY = 200
#: Go's strconv.ParseBool false spellings (Gloo reads its feature flags with it).
_FALSE = frozenset({"0", "f", "false"})
_NOT_NAME = re.compile(r"[^a-z0-9-]+")
#: SanitizeNameV2 keeps names within a DNS label.
_MAX_NAME = 63


def segment_by_matcher(helm: object) -> bool:
    """The management plane's `EXPERIMENTAL_SEGMENT_ENVOY_FILTERS_BY_MATCHER`: on unless
    set to a false value. Reads typed Helm values (`helm.mgmt`, `gitops.helm.models.Values`)
    when the bundle has them, else the raw `helm.mgmt_plane` mapping. A value from
    `valueFrom` cannot be known here and keeps the default."""
    value: Any = None
    if hasattr(helm, "mgmt"):
        typed = getattr(helm, "mgmt", None)
        envs = getattr(getattr(typed, "gloo_mgmt_server", None), "extra_envs", None) or {}
        value = getattr(envs.get(SEGMENT_ENV), "value", None)
    else:
        raw = getattr(helm, "mgmt_plane", None) or {}
        server = raw.get("glooMgmtServer") if isinstance(raw, dict) else None
        envs = server.get("extraEnvs") if isinstance(server, dict) else None
        entry = envs.get(SEGMENT_ENV) if isinstance(envs, dict) else None
        value = entry.get("value") if isinstance(entry, dict) else entry
    return not (isinstance(value, str) and value.strip().lower() in _FALSE)


@dataclass(frozen=True)
class Patch:
    """One `configPatches` entry, with what it is made from and how segments are named."""

    config: dict[str, Any]
    #: Policy refs whose config it carries (the EnvoyFilter's parent is the oldest).
    owners: tuple[Any, ...]
    #: Repository files it comes from (`mesh-gitops.io/source`).
    files: tuple[str, ...]
    #: Name parts: the listener port (`8080`, `outbound`, or empty) and a readable subject.
    port: str
    subject: str
    size: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", len(json.dumps(self.config)))

    @property
    def match_key(self) -> str:
        return json.dumps(self.config.get("match", {}), sort_keys=True, separators=(",", ":"))

    @property
    def kind(self) -> str:
        """`http-filter` (inserts), `http-filter-merge`, `http-route`, ..."""
        kind = str(self.config["applyTo"]).lower().replace("_", "-")
        if self.config["patch"]["operation"] == "MERGE" and kind == "http-filter":
            kind += "-merge"
        return kind


@dataclass(frozen=True)
class Segment:
    """One EnvoyFilter to build: its name, priority and patches (in order)."""

    name: str
    priority: int
    patches: tuple[Patch, ...]


def size(obj: dict[str, Any]) -> int:
    """Serialized size as measured against the limit (default `json.dumps`, ASCII)."""
    return len(json.dumps(obj))


def split(
    proxy: str,
    patches: Sequence[Patch],
    by_matcher: bool,
    envelope: Callable[[Sequence[Patch]], int],
) -> list[Segment]:
    """Plan a proxy's EnvoyFilters. `proxy` identifies the proxy (it goes into name hashes);
    `envelope(patches)` is the serialized size of the EnvoyFilter for them with no patches."""
    if not patches:
        return []
    inserted = _inserted_filters(patches)
    if not by_matcher:
        first = patches[0]
        name = _name(first.port, first.kind, first.subject, _digest(proxy, "all"))
        return [Segment(name, min(_priority(p, inserted) for p in patches), tuple(patches))]
    groups: dict[str, list[Patch]] = {}
    for patch in patches:
        groups.setdefault(patch.match_key, []).append(patch)
    out: list[Segment] = []
    for key, group in groups.items():
        first = group[0]
        name = _name(first.port, first.kind, first.subject, _digest(proxy, key))
        priority = min(_priority(p, inserted) for p in group)
        room = MAX_OBJECT_BYTES - MARGIN - envelope(group)
        if _packed(group) <= room:
            out.append(Segment(name, priority, tuple(group)))
            continue
        for i, chunk in enumerate(_chunks(group, room)):
            # The chunk number stays visible: the base name gives up characters for it.
            suffix = f"-{i}"
            base = name[: _MAX_NAME - len(suffix)].rstrip("-")
            out.append(Segment(base + suffix, priority, tuple(chunk)))
    return out


def _chunks(group: Sequence[Patch], room: int) -> Iterable[list[Patch]]:
    """Consecutive patches, as many per chunk as fit in `room` (a patch too big for any
    chunk gets one of its own, which the caller refuses)."""
    chunk: list[Patch] = []
    for patch in group:
        if chunk and _packed([*chunk, patch]) > room:
            yield chunk
            chunk = []
        chunk.append(patch)
    if chunk:
        yield chunk


def _packed(patches: Sequence[Patch]) -> int:
    # json.dumps writes list items joined by ", ".
    return sum(p.size for p in patches) + 2 * max(len(patches) - 1, 0)


def _inserted_filters(patches: Iterable[Patch]) -> list[str]:
    found: list[str] = []
    for p in patches:
        if p.config["patch"]["operation"].startswith("INSERT"):
            filter_name = str(p.config["patch"]["value"].get("name", ""))
            if filter_name not in found:
                found.append(filter_name)
    return found


def _priority(patch: Patch, inserted: list[str]) -> int:
    if patch.config["patch"]["operation"].startswith("INSERT"):
        return INSERT_PRIORITY + inserted.index(str(patch.config["patch"]["value"].get("name", "")))
    if patch.config["applyTo"] == "HTTP_FILTER":
        return FILTER_MERGE_PRIORITY
    return ROUTE_PRIORITY


def _digest(proxy: str, key: str) -> str:
    return hashlib.sha256(f"{proxy}\n{key}".encode()).hexdigest()[:10]


def _name(port: str, kind: str, subject: str, digest: str) -> str:
    parts = [part for part in (port, kind, subject, digest) if part]
    return _sanitized("-".join(parts))


def _sanitized(raw: str) -> str:
    """SanitizeNameV2, then anything a Kubernetes name cannot hold (route names are free
    text) becomes `-`; the name starts with the port or kind and ends with hex."""
    return _NOT_NAME.sub("-", names.sanitize(raw)).strip("-")

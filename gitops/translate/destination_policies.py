"""Destination policies: which FailoverPolicy and OutlierDetectionPolicy apply to which
destination port, and what each adds to a DestinationRule's port-level settings.

Runs once per translation; `destination_rule` (client DestinationRules of Services)
and `virtual_destination` (VirtualDestination DestinationRules) read the result.
Rules (gloo-semantics.md 1.2, 2.4, 3.5, 3.8):

- a policy applies only to destinations its own workspace owns; an empty
  `applyToDestinations` selects every Service and VirtualDestination of the workspace;
- selection is per destination port (`port` in the selector, else every port);
- one policy of each kind per destination port: the earliest created wins, later ones
  are FAILED ("<Kind> conflicts existing policy applied to destination. Skipping
  applying <name>.<namespace>");
- OutlierDetection -> `outlierDetection`; Failover -> `loadBalancer.localityLbSetting`
  (`enabled: true`; mappings with weights -> `distribute`, without -> region
  `failover`; `priorityLabels` -> `failoverPriority`). Istio ignores locality
  failover without outlier detection, so that is a warning.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gitops import durations
from gitops.bundle import ConfigObject
from gitops.diagnostics import Diagnostic
from gitops.ids import ObjectRef
from gitops.models.common import DestinationSelector
from gitops.models.policies import FailoverPolicySpec, LocalityMapping, OutlierDetectionPolicySpec
from gitops.reasons import Reason
from gitops.selectors import Target, object_match
from gitops.translate.context import Context

DESTINATION_POLICY_KINDS = ("FailoverPolicy", "OutlierDetectionPolicy")
#: (destination kind, namespace, name): a Service is the same destination in every cluster.
DestKey = tuple[str, str, str]


@dataclass
class DestinationPolicies:
    """`applied[dest][port][kind] = policy`."""

    applied: dict[DestKey, dict[int, dict[str, ConfigObject[Any]]]] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    #: Policy ref -> number of destination ports it applies to (reported as `selected`).
    counts: dict[ObjectRef, int] = field(default_factory=dict)
    #: The same, per workspace (what `choose` can reuse).
    chunks: dict[str, DestinationPolicies] = field(default_factory=dict)

    @classmethod
    def assemble(cls, chunks: dict[str, DestinationPolicies]) -> DestinationPolicies:
        whole = cls(chunks=chunks)
        for chunk in chunks.values():
            whole.applied.update(chunk.applied)
            whole.diagnostics.extend(chunk.diagnostics)
            whole.counts.update(chunk.counts)
        return whole

    def for_port(self, dest: DestKey, port: int) -> Mapping[str, ConfigObject[Any]]:
        return self.applied.get(dest, {}).get(port, {})

    def has(self, dest: DestKey) -> bool:
        return dest in self.applied


@dataclass(frozen=True, slots=True)
class _Candidate:
    key: DestKey
    target: Target
    ports: tuple[tuple[int, str], ...]  # (number, name)


def _candidates(ctx: Context, workspace: str) -> list[_Candidate]:
    out: dict[DestKey, _Candidate] = {}
    for ref in ctx.services_of_workspace.get(workspace, ()):
        key = ("SERVICE", ref.service.namespace, ref.service.name)
        if key not in out:
            ports = tuple((p.port, p.name) for p in ref.service.ports)
            out[key] = _Candidate(key, ref.target, ports)
    for vd in ctx.of_kind("VirtualDestination"):
        if ctx.workspace_of.get(vd.ref) != workspace:
            continue
        key = ("VIRTUAL_DESTINATION", vd.namespace, vd.name)
        ports = tuple((p.number, f"{p.protocol.lower()}-{p.number}") for p in vd.spec.ports)
        out[key] = _Candidate(key, ctx.target(vd), ports)
    return list(out.values())


def _selected_ports(selectors: Iterable[DestinationSelector], c: _Candidate) -> list[int]:
    selectors = list(selectors)
    if not selectors:
        return [number for number, _ in c.ports]
    ports: set[int] = set()
    for s in selectors:
        if s.kind != c.key[0] or not object_match(s.selector, c.target):
            continue
        for number, name in c.ports:
            if (
                s.port is None
                or s.port.number == number
                or (s.port.name is not None and s.port.name == name)
            ):
                ports.add(number)
    return sorted(ports)


def choose(
    ctx: Context, previous: DestinationPolicies | None = None, stale: set[str] | None = None
) -> DestinationPolicies:
    """Pick, for every destination port, at most one policy of each kind.

    Independent per workspace (a policy only selects its own workspace's destinations), so
    with `previous` only the `stale` workspaces are chosen again.
    """
    policies: dict[str, list[ConfigObject[Any]]] = defaultdict(list)
    for kind in DESTINATION_POLICY_KINDS:
        for policy in sorted(ctx.of_kind(kind), key=ConfigObject.age_key):
            policies[ctx.workspace_of[policy.ref]].append(policy)
    chunks: dict[str, DestinationPolicies] = {}
    for ws in sorted(policies):
        if previous is not None and stale is not None and ws not in stale:
            if ws in previous.chunks:
                chunks[ws] = previous.chunks[ws]
            continue
        chunks[ws] = _choose_in(ctx, ws, policies[ws])
    return DestinationPolicies.assemble(chunks)


def _choose_in(ctx: Context, ws: str, policies: list[ConfigObject[Any]]) -> DestinationPolicies:
    result = DestinationPolicies()
    candidates = _candidates(ctx, ws)
    for policy in policies:  # by kind, then oldest first: the order conflicts are decided in
        kind = policy.kind
        selected = 0
        conflicted = False
        for c in candidates:
            for port in _selected_ports(policy.spec.apply_to_destinations, c):
                chosen = result.applied.setdefault(c.key, {}).setdefault(port, {})
                if kind in chosen:
                    conflicted = True
                    continue
                chosen[kind] = policy
                selected += 1
        result.counts[policy.ref] = selected
        if conflicted:
            result.diagnostics.append(
                Diagnostic(
                    Reason.PolicyConflict,
                    f"{kind} conflicts existing policy applied to destination. Skipping "
                    f"applying {policy.name}.{policy.namespace}",
                    policy.source,
                    policy.ref,
                )
            )
        elif not selected:
            result.diagnostics.append(
                Diagnostic(
                    Reason.NothingSelected,
                    f"{kind} selects no destination in workspace {ws}",
                    policy.source,
                    policy.ref,
                    "spec.applyToDestinations",
                )
            )
    # Locality failover needs outlier detection on the same port, or Istio ignores it.
    warned: set[ObjectRef] = set()
    for ports in result.applied.values():
        for chosen in ports.values():
            failover = chosen.get("FailoverPolicy")
            if (
                failover is not None
                and "OutlierDetectionPolicy" not in chosen
                and failover.ref not in warned
            ):
                warned.add(failover.ref)
                result.diagnostics.append(
                    Diagnostic(
                        Reason.FailoverWithoutOutlierDetection,
                        "a destination port has failover but no outlier detection; Istio "
                        "will not fail over there",
                        failover.source,
                        failover.ref,
                    )
                )
    return result


def _locality(region: str, zone: str | None, sub_zone: str | None) -> str:
    parts = [region, zone or "*", sub_zone or "*"]
    while len(parts) > 1 and parts[-1] == "*" and parts[-2] == "*":
        parts.pop()
    return "/".join(parts)


def _locality_setting(spec: FailoverPolicySpec) -> dict[str, Any]:
    setting: dict[str, Any] = {"enabled": True}
    mappings: list[LocalityMapping] = spec.config.locality_mappings
    weighted = any(t.weight is not None for m in mappings for t in m.to)
    if mappings and weighted:
        setting["distribute"] = [
            {
                "from": _locality(m.from_.region, m.from_.zone, m.from_.sub_zone),
                "to": {
                    _locality(t.region, t.zone, t.sub_zone): w
                    for t, w in zip(m.to, m.effective_weights(), strict=True)
                },
            }
            for m in mappings
        ]
    elif mappings:
        pairs = sorted({(m.from_.region, t.region) for m in mappings for t in m.to})
        setting["failover"] = [{"from": a, "to": b} for a, b in pairs if a != b]
    elif spec.config.priority_labels is not None and spec.config.priority_labels.labels:
        setting["failoverPriority"] = list(spec.config.priority_labels.labels)
    return setting


def port_settings(port: int, policies: Mapping[str, ConfigObject[Any]]) -> dict[str, Any]:
    """A `trafficPolicy.portLevelSettings` entry for the chosen policies (maybe only `port`)."""
    out: dict[str, Any] = {"port": {"number": port}}
    outlier = policies.get("OutlierDetectionPolicy")
    if outlier is not None:
        o: OutlierDetectionPolicySpec = outlier.spec
        c = o.config
        detection: dict[str, Any] = {
            "baseEjectionTime": durations.to_proto(c.base_ejection_time),
            "consecutive5xxErrors": c.consecutive_errors,
            "interval": durations.to_proto(c.interval),
            "maxEjectionPercent": c.max_ejection_percent,
        }
        if c.consecutive_gateway_errors:
            detection["consecutiveGatewayErrors"] = c.consecutive_gateway_errors
        out["outlierDetection"] = detection
    failover = policies.get("FailoverPolicy")
    if failover is not None:
        out["loadBalancer"] = {"localityLbSetting": _locality_setting(failover.spec)}
    return out


def sources(policies: Iterable[Mapping[str, ConfigObject[Any]]]) -> set[str]:
    return {p.source.file for chosen in policies for p in chosen.values()}

"""AccessPolicy -> AuthorizationPolicies and PeerAuthentications, per cluster.

Built once per translation by `security.Security`; each AccessPolicy is one producer
(`render_plan`). What it selects and its allow rules are worked out once for the fleet
(`_plan`), so rendering a cluster only writes objects. Rules (gloo-semantics.md 1.2, 2.4,
3.6; worked example 8):

- a policy applies only to what its own workspace owns. `applyToWorkloads` wins when it
  is non-empty; otherwise `applyToDestinations` selects Service ports (both empty: every
  port of every Service of the workspace). VirtualDestinations and ExternalServices
  cannot be selected (`UnsupportedField`);
- destinations: for each selected Service port, in every cluster where the Service
  exists, one AuthorizationPolicy in the Service's namespace, parent the Service,
  `selector.matchLabels` = the Service's pod selector, named
  `accesspolicy-{svc}-{port}-{policy}-{policyNs}-{policyCluster}-{workspace}`; every
  rule gets `to.operation.ports: [<targetPort>]`. A Service without a pod selector is
  skipped (`NoPodSelector`): a policy without a selector would cover the namespace;
- workloads: one AuthorizationPolicy per selected (cluster, namespace, labels) group that
  has workloads, parent the Namespace, `selector.matchLabels` = the labels (none: the
  whole namespace), named `accesspolicy-{policy}-{ns}-{policyNs}-{policyCluster}-
  {workspace}[-{label}-{value}...]`;
- `action: ALLOW`; the rules are `access_rules`' (one per `authzList` entry, never an
  empty source). A policy left with no rules emits no AuthorizationPolicy (zero rules deny
  all), except when its entries explicitly allow nothing (`{}` with `applyToWorkloads`):
  then the AuthorizationPolicy is emitted without rules on purpose (deny all);
- `dryRun` entries go to a second AuthorizationPolicy (suffix `-dry-run` before the
  hash) annotated `istio.io/dry-run: "true"`: Istio dry-runs whole policies only;
- `authn.tlsMode` -> a PeerAuthentication named like the AuthorizationPolicy:
  `portLevelMtls` on the target port for destinations, `mtls` for workloads; STRICT
  whatever is written when the workspace isolates its services (1.2). `authn` without
  `tlsMode` writes none (turning mTLS off must be written out);
- several AccessPolicies on one destination add up: each writes its own objects.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from gitops import names
from gitops.bundle import ConfigObject
from gitops.diagnostics import Diagnostic
from gitops.discovery import ServicePort
from gitops.ids import ObjectRef
from gitops.models.common import DestinationSelector
from gitops.models.security import AccessPolicySpec
from gitops.reasons import Reason
from gitops.selectors import labels_match, object_match
from gitops.translate import access_rules, authz
from gitops.translate.access_rules import Ruleset
from gitops.translate.authz import Identities, Placement
from gitops.translate.context import Context, ServiceRef
from gitops.translate.outputs import ClusterOutputs, Parent, ProducerKey

AccessPolicy = ConfigObject[AccessPolicySpec]
Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class _Port:
    """A selected Service port in one cluster."""

    ref: ServiceRef
    port: ServicePort
    target: str


@dataclass
class _Plan:
    policy: AccessPolicy
    workspace: str
    enforced: Ruleset
    dry_run: Ruleset
    #: PeerAuthentication mode, or None for no PeerAuthentication.
    mode: str | None
    ports: dict[str, list[_Port]] = field(default_factory=dict)
    groups: dict[str, list[tuple[str, Labels]]] = field(default_factory=dict)
    #: Problems that exist in one cluster, reported when that cluster is rendered.
    notes: dict[str, list[Diagnostic]] = field(default_factory=dict)
    #: Fleet-wide problems of this policy, and how many ports or workloads it selects.
    problems: list[Diagnostic] = field(default_factory=list)
    count: int = 0
    #: What it can take over from isolation: Services (namespace, name) it selects ports
    #: of, in any cluster (destination form); namespaces it selects workloads in.
    services: frozenset[tuple[str, str]] = frozenset()
    namespaces: frozenset[str] = frozenset()
    #: The (cluster, namespace, service, port)s it selects (destination form).
    covered: frozenset[tuple[str, str, str, int]] = frozenset()


class AccessPolicies:
    """Every AccessPolicy's plan, and which Service ports they take over from isolation."""

    def __init__(
        self,
        ctx: Context,
        identities: Identities,
        isolating: frozenset[str],
        previous: AccessPolicies | None = None,
    ) -> None:
        """Plan every AccessPolicy. With `previous` (same inputs, workspaces and settings),
        the plans of policies that did not change are reused."""
        self.ctx = ctx
        self.identities = identities
        self._by_workspace: dict[str, list[ServiceRef]] = defaultdict(list)
        self._ports: set[tuple[str, str, str, int]]
        self._groups: dict[tuple[str, str], list[Labels]]
        self._reaching: dict[tuple[str, ...], list[ObjectRef]]
        known: dict[ObjectRef, _Plan] = {}
        if previous is not None:
            self._by_workspace = previous._by_workspace
            known = {p.policy.ref: p for p in previous.plans}
        else:
            for ref in ctx.all_services:
                if ref.workspace is not None:
                    self._by_workspace[ref.workspace].append(ref)
        self.plans: list[_Plan] = []
        for policy in ctx.of_kind("AccessPolicy"):
            old = known.get(policy.ref)
            reuse = old is not None and (old.policy is policy or old.policy == policy)
            self.plans.append(old if reuse and old is not None else self._plan(policy, isolating))
        self.diagnostics: list[Diagnostic] = [d for p in self.plans for d in p.problems]
        #: Policy ref -> destination ports (or workloads) it applies to.
        self.counts: dict[ObjectRef, int] = {p.policy.ref: p.count for p in self.plans}
        #: What enforced AuthorizationPolicies cover: (cluster, ns, svc, port) and, per
        #: (cluster, namespace), the label groups of workload policies. Unchanged plans
        #: give unchanged coverage, so an edit elsewhere reuses it as it is.
        if previous is not None and _same(previous.plans, self.plans):
            self._ports, self._groups = previous._ports, previous._groups
            self._reaching = previous._reaching
            return
        #: Service (namespace, name) or namespace -> the policies that may cover it.
        self._reaching = defaultdict(list)
        for plan in self.plans:
            for service in plan.services:
                self._reaching[service].append(plan.policy.ref)
            for ns in plan.namespaces:
                self._reaching[(ns,)].append(plan.policy.ref)
        self._ports = set()
        self._groups = defaultdict(list)
        for plan in self.plans:
            if not plan.enforced.emits or plan.enforced.problem is not None:
                continue
            self._ports.update(plan.covered)
            for cluster, groups in plan.groups.items():
                for ns, labels in groups:
                    self._groups[(cluster, ns)].append(labels)

    def producers(self) -> list[tuple[ProducerKey, _Plan]]:
        return [(("AccessPolicy", p.policy.namespace, p.policy.name), p) for p in self.plans]

    def reaching(self, service: tuple[str, str]) -> list[ObjectRef]:
        """The policies whose selection includes the Service (its ports, or workloads in its
        namespace) somewhere: the only ones `covers` can answer yes for."""
        return self._reaching.get(service, []) + self._reaching.get((service[0],), [])

    def covers(self, cluster: str, ref: ServiceRef, port: int) -> bool:
        """Does an enforced AccessPolicy allow-list this Service port in this cluster? For
        workload policies: only when they select every workload behind the Service."""
        s = ref.service
        if (cluster, s.namespace, s.name, port) in self._ports:
            return True
        groups = self._groups.get((cluster, s.namespace))
        if not groups:
            return False
        workloads = self.ctx.inputs[cluster].workloads_for(s)
        return bool(workloads) and all(
            any(labels_match(dict(g), w.labels) for g in groups) for w in workloads
        )

    # -- planning (once per translation) ---------------------------------------------------

    def _diag(self, plan: _Plan, reason: Reason, message: str, where: str = "") -> None:
        policy = plan.policy
        plan.problems.append(Diagnostic(reason, message, policy.source, policy.ref, where))

    def _plan(self, policy: AccessPolicy, isolating: frozenset[str]) -> _Plan:
        ws = self.ctx.workspace_of[policy.ref]
        spec = policy.spec
        workloads_form = bool(spec.apply_to_workloads)
        config = spec.config
        enforced, dry_run, problems = access_rules.rulesets(policy, self.identities, workloads_form)
        mode: str | None = None
        authn = config.authn
        if authn is not None and "tls_mode" in authn.model_fields_set:
            mode = "STRICT" if ws in isolating else authn.tls_mode
        plan = _Plan(policy, ws, enforced, dry_run, mode, problems=list(problems))
        if workloads_form:
            self._select_workloads(plan)
        else:
            self._select_ports(plan)
        return plan

    def _select_ports(self, plan: _Plan) -> None:
        policy, ws = plan.policy, plan.workspace
        selectors = policy.spec.apply_to_destinations
        for i, chosen in enumerate(selectors):
            if chosen.kind != "SERVICE":
                self._diag(
                    plan,
                    Reason.UnsupportedField,
                    f"AccessPolicy cannot select kind {chosen.kind}; only Services are translated",
                    f"spec.applyToDestinations[{i}].kind",
                )
        selected: set[tuple[str, str, int]] = set()
        for ref in self._candidates(selectors, ws):
            ports = _selected_ports(policy, ref)
            if not ports:
                continue
            s = ref.service
            notes = plan.notes.setdefault(ref.cluster, [])
            if not s.selector:
                notes.append(_no_selector(policy, ref))
                continue
            for port in ports:
                target, known = authz.target_port(port)
                if not known:
                    notes.append(_unresolved(policy, ref, port))
                plan.ports.setdefault(ref.cluster, []).append(_Port(ref, port, target))
                selected.add((s.namespace, s.name, port.port))
        plan.count = len(selected)
        plan.services = frozenset((ns, name) for ns, name, _ in selected)
        plan.covered = frozenset(
            (cluster, p.ref.service.namespace, p.ref.service.name, p.port.port)
            for cluster, ports in plan.ports.items()
            for p in ports
        )
        if not selected:
            self._diag(
                plan,
                Reason.NothingSelected,
                f"selects no Service port in workspace {ws}",
                "spec.applyToDestinations",
            )

    def _candidates(self, selectors: list[DestinationSelector], ws: str) -> list[ServiceRef]:
        """The workspace's Services a policy's selectors can pick, found through the
        context's name and label indexes rather than by scanning every Service."""
        if not selectors or any(s.selector is None for s in selectors if s.kind == "SERVICE"):
            return list(self._by_workspace.get(ws, ()))
        found: dict[tuple[str, str, str], ServiceRef] = {}
        for s in selectors:
            if s.kind != "SERVICE" or s.selector is None:
                continue
            for ref in self.ctx.find_services(s.selector):
                if ref.workspace == ws:
                    found[(ref.cluster, ref.service.namespace, ref.service.name)] = ref
        return [found[k] for k in sorted(found)]

    def _select_workloads(self, plan: _Plan) -> None:
        policy, ws = plan.policy, plan.workspace
        ctx = self.ctx
        groups: dict[str, set[tuple[str, Labels]]] = defaultdict(set)
        selected: set[tuple[str, str, str, str]] = set()
        for entry in policy.spec.apply_to_workloads:
            sel = entry.selector
            if sel is not None and sel.workspace not in (None, ws):
                continue  # policies apply only to their own workspace (2.4)
            wanted = sel.labels if sel is not None else {}
            for cluster, inputs in sorted(ctx.inputs.items()):
                if sel is not None and sel.cluster not in (None, cluster):
                    continue
                for ns in ctx.membership.namespaces_in(ws, cluster):
                    if sel is not None and sel.namespace not in (None, ns):
                        continue
                    matched = [
                        w for w in inputs.workloads_in.get(ns, ()) if labels_match(wanted, w.labels)
                    ]
                    if matched:
                        groups[cluster].add((ns, tuple(sorted(wanted.items()))))
                        selected.update((cluster, ns, w.kind, w.name) for w in matched)
        plan.groups = {c: sorted(found) for c, found in sorted(groups.items())}
        plan.count = len(selected)
        plan.namespaces = frozenset(ns for found in groups.values() for ns, _ in found)
        if not selected:
            self._diag(
                plan,
                Reason.NothingSelected,
                f"selects no workload in workspace {ws}",
                "spec.applyToWorkloads",
            )

    # -- rendering (per cluster) -------------------------------------------------------------

    def render_plan(self, plan: _Plan, cluster: str, out: ClusterOutputs) -> None:
        for note in plan.notes.get(cluster, ()):
            out.report(note)
        policy, ws = plan.policy, plan.workspace
        files = frozenset({policy.source.file})
        stem_tail = f"{policy.namespace}-{policy.cluster}-{ws}"
        for p in plan.ports.get(cluster, ()):
            s = p.ref.service
            parent = Parent("", "v1", "Service", s.name, s.namespace, cluster)
            base = f"accesspolicy-{s.name}-{p.port.port}-{policy.name}-{stem_tail}"
            self._emit(plan, cluster, out, base, s.namespace, parent, s.selector, files, p.target)
        for ns, labels in plan.groups.get(cluster, ()):
            parent = Parent("", "v1", "Namespace", ns, "", cluster)
            base = f"accesspolicy-{policy.name}-{ns}-{stem_tail}" + "".join(
                f"-{k}-{v}" for k, v in labels
            )
            self._emit(plan, cluster, out, base, ns, parent, dict(labels), files, None)

    def _emit(
        self,
        plan: _Plan,
        cluster: str,
        out: ClusterOutputs,
        base: str,
        namespace: str,
        parent: Parent,
        selector: Any,
        files: frozenset[str],
        port: str | None,
    ) -> None:
        policy = plan.policy
        owner = self.ctx.membership.owner_of(cluster, namespace)
        age = policy.age_key()
        for ruleset, dry_run in ((plan.enforced, False), (plan.dry_run, True)):
            if not ruleset.emits:
                continue
            problem = ruleset.problem
            name = names.sanitize(f"{base}-dry-run" if dry_run else base)
            if problem is not None:
                out.report(
                    Diagnostic(
                        Reason.ObjectTooLarge,
                        f"AuthorizationPolicy {namespace}/{name} would have {problem}; not emitted",
                        policy.source,
                        policy.ref,
                        cluster=cluster,
                    )
                )
                continue
            rules = ruleset.rules if port is None else [_on_port(r, port) for r in ruleset.rules]
            at = Placement(name, namespace, owner, parent, files)
            obj = authz.authorization_policy(out, at, selector, rules, dry_run=dry_run)
            out.add(obj, policy.ref, age, policy.source)
        if plan.mode is not None:
            at = Placement(names.sanitize(base), namespace, owner, parent, files)
            obj = authz.peer_authentication(out, at, selector, plan.mode, port)
            out.add(obj, policy.ref, age, policy.source)


def _on_port(rule: dict[str, Any], port: str) -> dict[str, Any]:
    operation = dict(rule["to"][0]["operation"]) if "to" in rule else {}
    operation["ports"] = [port]
    return {**rule, "to": [{"operation": operation}]}


def _selected_ports(policy: AccessPolicy, ref: ServiceRef) -> list[ServicePort]:
    """The ports of a Service (in one cluster) that the policy's destination selectors pick;
    no selectors pick every port."""
    selectors = policy.spec.apply_to_destinations
    if not selectors:
        return list(ref.service.ports)
    target = ref.target
    picked = []
    for port in ref.service.ports:
        for s in selectors:
            if s.kind != "SERVICE" or not object_match(s.selector, target):
                continue
            if (
                s.port is None
                or s.port.number == port.port
                or (s.port.name is not None and s.port.name == port.name)
            ):
                picked.append(port)
                break
    return picked


def _no_selector(policy: AccessPolicy, ref: ServiceRef) -> Diagnostic:
    s = ref.service
    return Diagnostic(
        Reason.NoPodSelector,
        f"Service {s.namespace}/{s.name} has no pod selector; no AuthorizationPolicy can "
        "target its pods, so it is skipped",
        policy.source,
        policy.ref,
        cluster=ref.cluster,
    )


def _unresolved(policy: AccessPolicy, ref: ServiceRef, port: ServicePort) -> Diagnostic:
    s = ref.service
    return Diagnostic(
        Reason.UnresolvedTargetPort,
        f"Service {s.namespace}/{s.name} port {port.port} has the named targetPort "
        f"{port.target_port!r}; port {port.port} is used in its place",
        policy.source,
        policy.ref,
        cluster=ref.cluster,
    )


def _same(before: list[_Plan], after: list[_Plan]) -> bool:
    """The same plans (the very objects), in the same order."""
    return len(before) == len(after) and all(a is b for a, b in zip(before, after, strict=True))

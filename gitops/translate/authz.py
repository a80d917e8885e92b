"""What the security translators share: workload identities, target ports, and the
AuthorizationPolicy and PeerAuthentication objects themselves.

Used by `access_policy` (AccessPolicy, gloo-semantics.md 3.6) and `isolation`
(WorkspaceSettings `options.serviceIsolation`, 2.6 and 3.6), both built by `security`.
Rules:

- a workload identity is the principal `<trustDomain>/ns/<ns>/sa/<sa>`, without
  `spiffe://` (Istio matches principals without the scheme, 3.6), with the trust domain
  of the cluster the ServiceAccount lives in (`Context.trust_domain`);
- the identities of a cluster are its ServiceAccounts plus the accounts its workloads run
  as (a pod cannot start without its account, so a snapshot that misses the object still
  names a real identity);
- principals are listed one by one, sorted; a list over `COMPACT_BYTES` that covers whole
  namespaces (a workspace's accounts, or a selector without `name`) is written as one
  `<td>/ns/<ns>/sa/*` per namespace instead (Istio matches principals by prefix);
- a `serviceAccountSelector` matches ServiceAccounts of every cluster by name, namespace,
  cluster and workspace (the owner of the account's namespace). It is not limited to what
  the policy's workspace can see: a principal is an identity, not a shared resource, and
  the destination's owner decides who may call it (2.4). ServiceAccount labels are not
  discovered, so a selector with labels matches nothing (the unsupported table says so).
  As Gloo documents, a selector giving exactly name, namespace and registered cluster
  names that account even before it exists;
- the port an AuthorizationPolicy or PeerAuthentication names is the Service port's
  `targetPort` (the sidecar sees the container port); a named targetPort cannot be
  resolved (container ports are not discovered), so the Service port is used and the
  caller reports `UnresolvedTargetPort`;
- AuthorizationPolicies say `action: ALLOW` explicitly and never carry an empty source
  (an empty source allows every client); one whose principals would take it over the
  1 MiB etcd limit, or over Istio's 512 rules or sources, is not emitted (`ObjectTooLarge`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gitops.discovery import ServicePort
from gitops.models.common import ObjectSelector
from gitops.translate.context import Context
from gitops.translate.outputs import MAX_OBJECT_BYTES, SECURITY, ClusterOutputs, Parent

#: Istio's CRD allows at most this many rules, and sources per rule (`maxItems`).
MAX_ISTIO_ITEMS = 512
#: Room left for metadata, selectors and operations when principals are measured.
_METADATA_ALLOWANCE = 64 * 1024
#: Bytes a principal adds to a serialized source besides its own characters (`"",`).
_PRINCIPAL_OVERHEAD = 3
#: Principal lists longer than this (about 1,400 accounts) are written per namespace,
#: `<td>/ns/<ns>/sa/*`, where every account of the namespace is meant: the same identities
#: (a namespace belongs to one workspace), at a size that does not grow with the accounts.
#: An isolation AuthorizationPolicy per Service port carries the list, so at fleet scale
#: account-by-account lists would dominate what is written to each cluster.
COMPACT_BYTES = 64 * 1024
DRY_RUN_ANNOTATION = "istio.io/dry-run"


@dataclass(frozen=True, slots=True)
class Principals:
    """Sorted principals, with their serialized size measured once (they are shared by
    every object that names them)."""

    values: list[str]
    size: int

    @staticmethod
    def of(values: Sequence[str], namespaces: Sequence[str] = ()) -> Principals:
        """`values`, or, when they pass `COMPACT_BYTES` and whole namespaces were selected,
        one `<td>/ns/<ns>/sa/*` per namespace (`namespaces`)."""
        ordered = sorted(set(values))
        size = sum(len(p) + _PRINCIPAL_OVERHEAD for p in ordered)
        if size > COMPACT_BYTES and namespaces:
            ordered = sorted({f"{ns}/sa/*" for ns in namespaces})
            size = sum(len(p) + _PRINCIPAL_OVERHEAD for p in ordered)
        return Principals(ordered, size)


class Identities:
    """The principals of the fleet, indexed by cluster and namespace."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._domains: dict[str, str] = {}
        #: cluster -> namespace -> account names, sorted.
        self.accounts: dict[str, dict[str, tuple[str, ...]]] = {}
        for cluster, inputs in sorted(ctx.inputs.items()):
            by_ns: dict[str, set[str]] = defaultdict(set)
            for ns, name in inputs.service_accounts:
                by_ns[ns].add(name)
            for workload in inputs.workloads:
                by_ns[workload.namespace].add(workload.service_account)
            self.accounts[cluster] = {ns: tuple(sorted(n)) for ns, n in sorted(by_ns.items())}
        self._workspaces: dict[str, Principals] = {}

    def namespace(self, cluster: str, namespace: str) -> str:
        """`<trustDomain>/ns/<ns>`: what the principals of a namespace start with."""
        domain = self._domains.get(cluster)
        if domain is None:
            domain = self._domains[cluster] = self.ctx.trust_domain(cluster)
        return f"{domain}/ns/{namespace}"

    def principal(self, cluster: str, namespace: str, account: str) -> str:
        return f"{self.namespace(cluster, namespace)}/sa/{account}"

    def of_workspace(self, workspace: str) -> Principals:
        """Every account in every (cluster, namespace) the workspace owns."""
        found = self._workspaces.get(workspace)
        if found is None:
            values: list[str] = []
            whole: list[str] = []
            for cluster, by_ns in self.accounts.items():
                for ns in self.ctx.membership.namespaces_in(workspace, cluster):
                    accounts = by_ns.get(ns, ())
                    if accounts:
                        whole.append(self.namespace(cluster, ns))
                        values.extend(self.principal(cluster, ns, a) for a in accounts)
            found = self._workspaces[workspace] = Principals.of(values, whole)
        return found

    def matching(self, selector: ObjectSelector) -> Principals:
        """The principals a `serviceAccountSelector` selects (see the module docstring)."""
        if selector.labels:
            return Principals.of(())
        name, namespace, cluster = selector.name, selector.namespace, selector.cluster
        if (
            name is not None
            and namespace is not None
            and cluster is not None
            and cluster in self.ctx.clusters
            and selector.workspace is None
        ):
            return Principals.of([self.principal(cluster, namespace, name)])
        owner_of = self.ctx.membership.owner_of
        values: list[str] = []
        whole: list[str] = []  # namespaces selected with every account (no `name`)
        for where, by_ns in self.accounts.items():
            if cluster is not None and cluster != where:
                continue
            for ns in by_ns if namespace is None else (namespace,):
                if selector.workspace is not None and owner_of(where, ns) != selector.workspace:
                    continue
                accounts = by_ns.get(ns, ())
                if name is not None:
                    accounts = (name,) if name in accounts else ()
                elif accounts:
                    whole.append(self.namespace(where, ns))
                values.extend(self.principal(where, ns, account) for account in accounts)
        return Principals.of(values, whole)


def isolating_workspaces(ctx: Context) -> frozenset[str]:
    """Workspaces whose settings (their own options, else the `global` ones) turn service
    isolation on."""
    return frozenset(
        ws
        for ws, settings in ctx.settings.items()
        if settings.options is not None
        and settings.options.service_isolation is not None
        and settings.options.service_isolation.enabled
    )


def target_port(port: ServicePort) -> tuple[str, bool]:
    """The container port a Service port delivers to, as Istio wants it (a string), and
    whether it is certain: a named targetPort falls back to the Service port."""
    if isinstance(port.target_port, int):
        return str(port.target_port), True
    return str(port.port), False


def oversize(rules: Sequence[Mapping[str, Any]], principal_bytes: int) -> str | None:
    """Why an AuthorizationPolicy with these rules cannot be applied, or None."""
    if len(rules) > MAX_ISTIO_ITEMS:
        return f"{len(rules)} rules (Istio allows at most {MAX_ISTIO_ITEMS})"
    widest = max((len(r.get("from", ())) for r in rules), default=0)
    if widest > MAX_ISTIO_ITEMS:
        return f"a rule with {widest} sources (Istio allows at most {MAX_ISTIO_ITEMS})"
    if principal_bytes > MAX_OBJECT_BYTES - _METADATA_ALLOWANCE:
        return (
            f"about {principal_bytes:,} bytes of principals (limit {MAX_OBJECT_BYTES:,} "
            "bytes for the whole object)"
        )
    return None


@dataclass(frozen=True, slots=True)
class Placement:
    """Where an output goes and what it belongs to: name, namespace, the workspace owning
    that namespace, the parent object and the repository files that produced it."""

    name: str
    namespace: str
    workspace: str | None
    parent: Parent
    sources: frozenset[str]


def authorization_policy(
    out: ClusterOutputs,
    at: Placement,
    selector: Mapping[str, str],
    rules: list[dict[str, Any]],
    *,
    dry_run: bool = False,
) -> dict[str, Any]:
    """An ALLOW AuthorizationPolicy; no `selector` labels means every pod of the namespace."""
    notes = {DRY_RUN_ANNOTATION: "true"} if dry_run else None
    spec: dict[str, Any] = {"action": "ALLOW"}
    if selector:
        spec["selector"] = {"matchLabels": dict(selector)}
    if rules:
        spec["rules"] = rules
    return {
        "apiVersion": SECURITY,
        "kind": "AuthorizationPolicy",
        "metadata": out.metadata(
            at.name, at.namespace, at.workspace, at.parent, at.sources, annotations=notes
        ),
        "spec": spec,
    }


def peer_authentication(
    out: ClusterOutputs,
    at: Placement,
    selector: Mapping[str, str],
    mode: str,
    port: str | None = None,
) -> dict[str, Any]:
    """A PeerAuthentication: `portLevelMtls` on `port` (Istio requires a selector for
    that), else workload- or namespace-wide `mtls`."""
    spec: dict[str, Any] = {}
    if selector:
        spec["selector"] = {"matchLabels": dict(selector)}
    if port is not None:
        spec["portLevelMtls"] = {port: {"mode": mode}}
    else:
        spec["mtls"] = {"mode": mode}
    return {
        "apiVersion": SECURITY,
        "kind": "PeerAuthentication",
        "metadata": out.metadata(at.name, at.namespace, at.workspace, at.parent, at.sources),
        "spec": spec,
    }

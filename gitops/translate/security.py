"""Zero-trust translation: AccessPolicies and service isolation -> AuthorizationPolicies
and PeerAuthentications (`security.istio.io/v1`).

`translate` builds one `Security` per translation; `Translation.producers` adds what
`producers` returns. The work is split by source kind: `access_policy` (AccessPolicy,
gloo-semantics.md 3.6, worked example 8) and `isolation` (WorkspaceSettings
`options.serviceIsolation`, 2.6 and 3.6, worked example 7); `access_rules` turns
`authzList` entries into Istio rules; `authz` holds what both need (principals, target
ports, the output objects). Isolation is built after the
AccessPolicies because an AccessPolicy on a Service port takes over its allow-list.

Producers and what they depend on (incremental translation):

- `("AccessPolicy", ns, name)`: the policy itself, and the discovered objects of every
  cluster (the Services it selects and the ServiceAccounts its clients match live
  anywhere in the fleet);
- `("ServiceIsolation", ns, name)` per Service owned by an isolating workspace: every
  AccessPolicy of that workspace (one may take the port over), and every cluster's
  discovered objects (principals come from all of them).

WorkspaceSettings, Workspaces and Helm values (trust domains) are global inputs: a change
to them re-translates everything, so no producer lists them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gitops.diagnostics import Diagnostic
from gitops.ids import ObjectRef
from gitops.translate import authz
from gitops.translate.access_policy import AccessPolicies
from gitops.translate.authz import Identities
from gitops.translate.context import Context
from gitops.translate.isolation import ServiceIsolation
from gitops.translate.outputs import INPUTS, ClusterOutputs, ProducerKey

Render = Callable[[str, ClusterOutputs], None]
#: Same shape as `gitops.translate.Dep` (not imported: that package imports this module).
Dep = tuple[str, ...]


class Security:
    """AccessPolicy and isolation translators of one translation."""

    identities: Identities
    isolating: frozenset[str]
    access: AccessPolicies
    isolation: ServiceIsolation

    def __init__(self, ctx: Context, previous: Security | None = None) -> None:
        """With `previous` (same inputs, workspaces and settings), what depends only on
        those is reused: identities, isolating workspaces, unchanged AccessPolicy plans."""
        self.ctx = ctx
        if previous is not None:
            self.identities = previous.identities
            self.isolating = previous.isolating
        else:
            self.identities = Identities(ctx)
            self.isolating = authz.isolating_workspaces(ctx)
        self.access = AccessPolicies(
            ctx, self.identities, self.isolating, previous.access if previous else None
        )
        self.isolation = ServiceIsolation(
            ctx,
            self.identities,
            self.access,
            self.isolating,
            previous.isolation if previous else None,
        )

    @property
    def diagnostics(self) -> list[Diagnostic]:
        """Fleet-wide problems (per-cluster ones are reported while rendering)."""
        return list(self.access.diagnostics)

    @property
    def counts(self) -> dict[ObjectRef, int]:
        """AccessPolicy ref -> destination ports (or workloads) it applies to."""
        return dict(self.access.counts)

    def producers(self) -> list[tuple[ProducerKey, Render, frozenset[Dep]]]:
        inputs: frozenset[Dep] = frozenset({INPUTS})
        found: list[tuple[ProducerKey, Render, frozenset[Dep]]] = []
        access = self.access
        for key, plan in access.producers():
            policy = plan.policy
            deps = inputs | {("ref", "AccessPolicy", policy.namespace, policy.name)}
            found.append((key, _bind(access.render_plan, plan), deps))
        isolation = self.isolation
        for key, service in isolation.producers():
            # Isolation steps aside where an AccessPolicy covers a port: it reads the
            # policies that select this Service. A policy that starts or stops selecting
            # it is in the deps of the new or the old translation, which both count.
            policies = {("ref", r.kind, r.namespace, r.name) for r in access.reaching(service)}
            found.append((key, _bind(isolation.render_service, service), inputs | policies))
        return found


def _bind(method: Callable[..., None], *args: Any) -> Render:
    def render(cluster: str, out: ClusterOutputs) -> None:
        method(*args, cluster, out)

    return render

"""WorkspaceSettings `options.serviceIsolation` -> an AuthorizationPolicy and a
PeerAuthentication per Service port, per cluster.

Built once per translation by `security.Security`; each Service (namespace/name) owned by
an isolating workspace in some cluster is one producer (`render_service`). The options
are the workspace's own, else the `global` WorkspaceSettings' (`Context.settings`).
Rules (gloo-semantics.md 2.6, 3.6; worked example 7):

- for every port P of every Service the workspace W owns, in every cluster where the
  Service exists: `settings-{svc}-{P}-{W}` in the Service's namespace, parent the
  Service, `selector.matchLabels` = the Service's pod selector;
- the AuthorizationPolicy has one rule: `from` = one source with the principals of every
  ServiceAccount in every (cluster, namespace) of W, then one source per workspace that
  imports this Service (its own accounts), each sorted; `to.operation.ports` = the target
  port. Workspaces without accounts add no source (an empty source allows everyone);
- the PeerAuthentication is STRICT on the target port (`portLevelMtls`);
- an enforced AccessPolicy on the port takes over the allow-list: the `settings-`
  AuthorizationPolicy is not written (both would be ALLOW policies, and Istio allows what
  either allows, so isolation would undo the narrower policy). The PeerAuthentication
  stays STRICT. A workload AccessPolicy takes over only when it selects every workload
  behind the Service (otherwise the workloads it misses would lose isolation);
- a Service without a pod selector cannot be targeted and is skipped (`NoPodSelector`);
- `trimProxyConfig` (Sidecars) is another translator's.
"""

from __future__ import annotations

from typing import Any

from gitops import names, workspaces
from gitops.bundle import ConfigObject
from gitops.diagnostics import Diagnostic
from gitops.models.admin import WorkspaceSettingsSpec
from gitops.reasons import Reason
from gitops.translate import authz
from gitops.translate.access_policy import AccessPolicies
from gitops.translate.authz import Identities, Placement
from gitops.translate.context import Context, ServiceRef
from gitops.translate.outputs import ClusterOutputs, Parent, ProducerKey

Settings = ConfigObject[WorkspaceSettingsSpec]
ServiceKey = tuple[str, str]


class ServiceIsolation:
    def __init__(
        self,
        ctx: Context,
        identities: Identities,
        access: AccessPolicies,
        isolating: frozenset[str],
        previous: ServiceIsolation | None = None,
    ) -> None:
        """With `previous` (same inputs, workspaces and settings), the Service index and
        the principals sources are reused."""
        self.ctx = ctx
        self.identities = identities
        self.access = access
        self.isolating = isolating
        self.settings_of = _settings_objects(ctx, isolating)
        #: Service key -> the isolating workspaces owning it somewhere (for deps).
        self.services: dict[ServiceKey, frozenset[str]] = {}
        #: Importing workspaces -> the `from` sources they make, shared by every port.
        self._sources: dict[tuple[str, ...], tuple[list[dict[str, Any]], int]] = {}
        if previous is not None:
            self.services = previous.services
            self._sources = previous._sources
            return
        for key, refs in sorted(ctx.services_by_key.items()):
            owners = frozenset(w for r in refs if (w := r.workspace) is not None and w in isolating)
            if owners:
                self.services[key] = owners

    def producers(self) -> list[tuple[ProducerKey, ServiceKey]]:
        return [(("ServiceIsolation", ns, name), (ns, name)) for ns, name in self.services]

    def _from(self, ref: ServiceRef) -> tuple[list[dict[str, Any]], int]:
        """The owner's accounts, then each importing workspace's, as sources (and their size)."""
        assert ref.workspace is not None
        viewers = self.ctx.visibility.viewers(ref.workspace, "SERVICE", ref.target)
        found = self._sources.get(viewers)
        if found is None:
            sources: list[dict[str, Any]] = []
            size = 0
            for ws in viewers:
                principals = self.identities.of_workspace(ws)
                if principals.values:
                    sources.append({"source": {"principals": principals.values}})
                    size += principals.size
            found = self._sources[viewers] = (sources, size)
        return found

    def render_service(self, key: ServiceKey, cluster: str, out: ClusterOutputs) -> None:
        ref = self.ctx.service_in(cluster, key)
        if ref is None or ref.workspace not in self.isolating:
            return
        ws = ref.workspace
        settings = self.settings_of[ws]
        s = ref.service
        if not s.selector:
            out.report(
                self._note(
                    settings,
                    Reason.NoPodSelector,
                    f"Service {s.namespace}/{s.name} has no pod selector; service isolation "
                    "cannot target its pods, so it is skipped",
                    cluster,
                )
            )
            return
        parent = Parent("", "v1", "Service", s.name, s.namespace, cluster)
        files = frozenset({settings.source.file})
        age = settings.age_key()
        sources, size = self._from(ref)
        for port in s.ports:
            target, known = authz.target_port(port)
            if not known:
                out.report(
                    self._note(
                        settings,
                        Reason.UnresolvedTargetPort,
                        f"Service {s.namespace}/{s.name} port {port.port} has the named "
                        f"targetPort {port.target_port!r}; port {port.port} is used in its place",
                        cluster,
                    )
                )
            name = names.sanitize(f"settings-{s.name}-{port.port}-{ws}")
            at = Placement(name, s.namespace, ws, parent, files)
            if not self.access.covers(cluster, ref, port.port):
                self._allow_list(settings, at, s.selector, sources, size, target, cluster, out)
            obj = authz.peer_authentication(out, at, s.selector, "STRICT", target)
            out.add(obj, settings.ref, age, settings.source)

    def _allow_list(
        self,
        settings: Settings,
        at: Placement,
        selector: Any,
        sources: list[dict[str, Any]],
        size: int,
        target: str,
        cluster: str,
        out: ClusterOutputs,
    ) -> None:
        if not sources:
            out.report(
                self._note(
                    settings,
                    Reason.NothingSelected,
                    f"no service account is known in the workspaces that can reach "
                    f"{at.namespace}/{at.parent.name}; its isolation AuthorizationPolicy "
                    "is not written",
                    cluster,
                )
            )
            return
        rules = [{"from": sources, "to": [{"operation": {"ports": [target]}}]}]
        problem = authz.oversize(rules, size)
        if problem is not None:
            out.report(
                self._note(
                    settings,
                    Reason.ObjectTooLarge,
                    f"AuthorizationPolicy {at.namespace}/{at.name} would have {problem}; "
                    "not emitted",
                    cluster,
                )
            )
            return
        obj = authz.authorization_policy(out, at, selector, rules)
        out.add(obj, settings.ref, settings.age_key(), settings.source)

    @staticmethod
    def _note(settings: Settings, reason: Reason, message: str, cluster: str) -> Diagnostic:
        return Diagnostic(
            reason,
            message,
            settings.source,
            settings.ref,
            "spec.options.serviceIsolation",
            cluster,
        )


def _settings_objects(ctx: Context, isolating: frozenset[str]) -> dict[str, Settings]:
    """The WorkspaceSettings each isolating workspace takes its options from: its own when
    they have `options`, else the oldest `global` one (as `Context.settings` decided)."""
    own: dict[str, Settings] = {
        ctx.workspace_of[o.ref]: o for o in ctx.of_kind("WorkspaceSettings")
    }
    shared = min(
        (
            o
            for o in ctx.bundle.of_kind("WorkspaceSettings")
            if o.name == workspaces.GLOBAL_SETTINGS
        ),
        key=ConfigObject.age_key,
        default=None,
    )
    found: dict[str, Settings] = {}
    for ws in sorted(isolating):
        mine = own.get(ws)
        chosen = mine if mine is not None and mine.spec.options is not None else shared
        assert chosen is not None, "isolation options come from some WorkspaceSettings"
        found[ws] = chosen
    return found

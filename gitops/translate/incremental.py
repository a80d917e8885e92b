"""Incremental translation: keep a fleet's translation and re-render only what changed.

The server keeps one `Session` per config repository (and `gitops render --since`
uses one for a run): `Session(bundle, inputs)` translates and renders every cluster
once; `update(bundle, inputs)` then works out which producers a change touches and
renders only those, in every cluster, returning the objects that changed. The result
is always the same as a full render of the new bundle (tests/gitops/test_incremental.py
checks this on random edits of the golden cases).

What is rendered again after a change:

- producers whose `deps` name a changed object (`("ref", kind, ns, name)`), a kind in
  a workspace where an object of that kind changed (`("kind", kind, ws)`), or a cluster
  whose discovered objects changed (`("input", cluster)`) — in the old translation or
  the new one, so a policy that stops (or starts) applying to a route counts;
- producers that appear or disappear;
- client DestinationRules whose Service is needed differently by the RouteTables that
  were rendered again (their `Need`s are compared);
- everything, when a change is global: a KubernetesCluster, Workspace or
  WorkspaceSettings changed, Helm values or the config cluster changed, or clusters
  came or went. Those change placement and visibility for the whole fleet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gitops.bundle import Bundle, ConfigObject
from gitops.diagnostics import Diagnostic
from gitops.discovery import ClusterInputs
from gitops.ids import ObjectRef
from gitops.translate import Dep, Producer, Translation, translate
from gitops.translate.outputs import ClusterOutputs, OutKey, ProducerKey

#: Kinds that decide placement and visibility for everything: a change re-renders all.
GLOBAL_KINDS = frozenset({"KubernetesCluster", "Workspace", "WorkspaceSettings"})
_CLIENT_DR = "ClientDR"


@dataclass(frozen=True)
class Delta:
    """What an update changed: per cluster, the objects to apply (None: to delete)."""

    changes: Mapping[str, Mapping[OutKey, dict[str, Any] | None]]
    #: Producer renders done (one producer in one cluster), and what a full render does.
    renders: int
    full_renders: int
    #: True when a global change made this a full re-translation.
    full: bool

    @property
    def changed_objects(self) -> int:
        return sum(len(c) for c in self.changes.values())


def changed_refs(old: Bundle, new: Bundle) -> dict[ObjectRef, tuple[Any, Any]]:
    """Config objects added, removed or different between two bundles: ref -> (old, new)."""
    out: dict[ObjectRef, tuple[Any, Any]] = {}
    for ref in old.by_ref.keys() | new.by_ref.keys():
        before, after = old.by_ref.get(ref), new.by_ref.get(ref)
        if before is not after and before != after:
            out[ref] = (before, after)
    return out


def changed_clusters(
    old: Mapping[str, ClusterInputs], new: Mapping[str, ClusterInputs]
) -> set[str]:
    return {
        c
        for c in old.keys() | new.keys()
        if (before := old.get(c)) is not (after := new.get(c)) and before != after
    }


class Session:
    """A fleet's translation and rendered output, kept up to date by `update`."""

    def __init__(self, bundle: Bundle, inputs: Mapping[str, ClusterInputs]) -> None:
        self.bundle = bundle
        self.inputs = dict(inputs)
        self.translation = translate(bundle, self.inputs)
        self.producers = {p.key: p for p in self.translation.producers()}
        self.stores = {c: self._render_all(c) for c in self.translation.clusters}

    # -- reading ------------------------------------------------------------------------------

    @property
    def clusters(self) -> tuple[str, ...]:
        return self.translation.clusters

    def objects(self, cluster: str) -> list[dict[str, Any]]:
        """A cluster's objects in apply order: what a full render of it gives."""
        return self.stores[cluster].objects()

    def diagnostics(self) -> list[Diagnostic]:
        found = list(self.translation.diagnostics)
        for store in self.stores.values():
            found.extend(store.diagnostics())
        return found

    # -- updating -------------------------------------------------------------------------------

    def update(self, bundle: Bundle, inputs: Mapping[str, ClusterInputs] | None = None) -> Delta:
        """Bring the session to `bundle` (and `inputs`); return what changed."""
        new_inputs = dict(inputs) if inputs is not None else self.inputs
        refs = changed_refs(self.bundle, bundle)
        clusters = changed_clusters(self.inputs, new_inputs)
        translation = translate(bundle, new_inputs)
        producers = {p.key: p for p in translation.producers()}
        full_renders = len(producers) * len(translation.clusters)
        if self._is_global(bundle, refs, new_inputs):
            delta = self._replace_all(translation, producers, full_renders)
        else:
            changed = self._changed_deps(refs, translation, clusters)
            affected = {k for k, p in producers.items() if p.deps & changed}
            affected |= {k for k, p in self.producers.items() if p.deps & changed}
            affected |= producers.keys() ^ self.producers.keys()
            order = [k for k in producers if k in affected] + sorted(
                self.producers.keys() - producers.keys()
            )
            changes: dict[str, Mapping[OutKey, dict[str, Any] | None]] = {}
            renders = 0
            for cluster in translation.clusters:
                found, done = self._rerender(self.stores[cluster], order, producers)
                renders += done
                if found:
                    changes[cluster] = found
            delta = Delta(changes, renders, full_renders, full=False)
        self.bundle, self.inputs = bundle, new_inputs
        self.translation, self.producers = translation, producers
        return delta

    def _is_global(
        self, bundle: Bundle, refs: Mapping[ObjectRef, Any], inputs: Mapping[str, Any]
    ) -> bool:
        return (
            any(ref.kind in GLOBAL_KINDS for ref in refs)
            or bundle.config_cluster != self.bundle.config_cluster
            or bundle.helm != self.bundle.helm
            or set(inputs) != set(self.inputs)
        )

    def _changed_deps(
        self,
        refs: Mapping[ObjectRef, tuple[Any, Any]],
        translation: Translation,
        clusters: set[str],
    ) -> set[Dep]:
        deps: set[Dep] = {("input", c) for c in clusters}
        old_ws, new_ws = self.translation.workspace_of, translation.workspace_of
        for ref, (before, after) in refs.items():
            deps.add(("ref", ref.kind, ref.namespace, ref.name))
            for obj, placed in ((before, old_ws), (after, new_ws)):
                if isinstance(obj, ConfigObject) and (ws := placed.get(ref)) is not None:
                    deps.add(("kind", ref.kind, ws))
        return deps

    def _rerender(
        self,
        store: ClusterOutputs,
        order: list[ProducerKey],
        producers: Mapping[ProducerKey, Producer],
    ) -> tuple[dict[OutKey, dict[str, Any] | None], int]:
        """Render `order` again in one cluster (client DestinationRules follow the needs of
        what was rendered); returns the changed objects and the number of renders."""
        touched: set[OutKey] = set()
        needs_changed: set[tuple[str, str]] = set()
        done: set[ProducerKey] = set()
        for key in order:
            if key[0] == _CLIENT_DR:
                continue
            needs_changed.update(n.service for n in store.needs.get(key, ()))
            touched |= store.begin(key)
            producer = producers.get(key)
            if producer is not None:
                producer.render(store.cluster, store)
                touched.update(store.owned.get(key, ()))
                needs_changed.update(n.service for n in store.needs.get(key, ()))
                done.add(key)
        client_drs = [k for k in order if k[0] == _CLIENT_DR]
        client_drs += [k for k in producers if k[0] == _CLIENT_DR and (k[1], k[2]) in needs_changed]
        for key in dict.fromkeys(client_drs):
            touched |= store.begin(key)
            producer = producers.get(key)
            if producer is not None:
                producer.render(store.cluster, store)
                touched.update(store.owned.get(key, ()))
                done.add(key)
        return store.resolve(touched), len(done)

    def _replace_all(
        self,
        translation: Translation,
        producers: Mapping[ProducerKey, Producer],
        full_renders: int,
    ) -> Delta:
        changes: dict[str, Mapping[OutKey, dict[str, Any] | None]] = {}
        old_stores = self.stores
        self.producers = dict(producers)
        self.translation = translation
        stores = {c: self._render_all(c) for c in translation.clusters}
        for cluster in old_stores.keys() | stores.keys():
            before = old_stores[cluster].final if cluster in old_stores else {}
            after = stores[cluster].final if cluster in stores else {}
            diff: dict[OutKey, dict[str, Any] | None] = {
                k: after.get(k)
                for k in before.keys() | after.keys()
                if before.get(k) != after.get(k)
            }
            if diff:
                changes[cluster] = diff
        self.stores = stores
        return Delta(changes, full_renders, full_renders, full=True)

    def _render_all(self, cluster: str) -> ClusterOutputs:
        store = ClusterOutputs(cluster)
        self.translation.render_into(store, list(self.producers.values()))
        store.resolve()
        return store

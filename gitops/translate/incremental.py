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
  whose discovered objects changed (`("inputs",)`) — in the old translation or
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
from gitops.translate.outputs import INPUTS, ClusterOutputs, OutKey, ProducerKey

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
    #: Objects the renders produced (recomputed), and all objects after the update.
    recomputed: int = 0
    total: int = 0

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


def is_global(
    old: Bundle,
    new: Bundle,
    refs: Mapping[ObjectRef, Any],
    old_inputs: Mapping[str, Any],
    new_inputs: Mapping[str, Any],
) -> bool:
    """Does the change reach placement or visibility for the whole fleet?"""
    return (
        any(ref.kind in GLOBAL_KINDS for ref in refs)
        or new.config_cluster != old.config_cluster
        or new.helm != old.helm
        or set(new_inputs) != set(old_inputs)
    )


def changed_deps(
    refs: Mapping[ObjectRef, tuple[Any, Any]],
    old: Translation,
    new: Translation,
    clusters: set[str],
) -> set[Dep]:
    """The deps a change touches: each changed object, its kind in its workspace (before and
    after), and the clusters whose discovered objects changed."""
    deps: set[Dep] = {INPUTS} if clusters else set()
    for ref, (before, after) in refs.items():
        deps.add(("ref", ref.kind, ref.namespace, ref.name))
        for obj, placed in ((before, old.workspace_of), (after, new.workspace_of)):
            if isinstance(obj, ConfigObject) and (ws := placed.get(ref)) is not None:
                deps.add(("kind", ref.kind, ws))
    return deps


def affected_producers(
    old: Translation,
    old_producers: Mapping[ProducerKey, Producer],
    new: Translation,
    new_producers: Mapping[ProducerKey, Producer],
    refs: Mapping[ObjectRef, tuple[Any, Any]],
    clusters: set[str],
) -> set[ProducerKey]:
    """Producers whose output may change: a dep changed (old or new deps, so selection
    changes count), or the producer appeared or disappeared."""
    changed = changed_deps(refs, old, new, clusters)
    affected = {k for k, p in new_producers.items() if p.deps & changed}
    affected |= {k for k, p in old_producers.items() if p.deps & changed}
    affected |= new_producers.keys() ^ old_producers.keys()
    return affected


def affected_clusters(
    old: Translation, new: Translation, refs: Mapping[ObjectRef, tuple[Any, Any]]
) -> set[str]:
    """Clusters whose output may differ between two translations of the same inputs
    (`gitops render --since`): where an affected producer renders anything, before or
    after. Client DestinationRules only change where RouteTables' subsets do, so the
    RouteTables' clusters cover them."""
    if is_global(old.ctx.bundle, new.ctx.bundle, refs, old.ctx.inputs, new.ctx.inputs):
        return set(old.clusters) | set(new.clusters)
    old_producers = {p.key: p for p in old.producers()}
    new_producers = {p.key: p for p in new.producers()}
    affected = affected_producers(old, old_producers, new, new_producers, refs, set())
    found: set[str] = set()
    for translation, producers in ((old, old_producers), (new, new_producers)):
        chosen = [producers[k] for k in producers if k in affected]
        for cluster in translation.clusters:
            if cluster in found:
                continue
            scratch = ClusterOutputs(cluster)
            translation.render_into(scratch, chosen)
            if scratch.owned or scratch.needs or scratch.reported:
                found.add(cluster)
    return found


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
        translation = translate(bundle, new_inputs, self.translation, frozenset(refs))
        producers = {p.key: p for p in translation.producers()}
        full_renders = len(producers) * len(translation.clusters)
        if is_global(self.bundle, bundle, refs, self.inputs, new_inputs):
            delta = self._replace_all(translation, producers, full_renders)
        else:
            affected = affected_producers(
                self.translation, self.producers, translation, producers, refs, clusters
            )
            order = [k for k in producers if k in affected] + sorted(
                self.producers.keys() - producers.keys()
            )
            client_dr = {(k[1], k[2]): k for k in producers if k[0] == _CLIENT_DR}
            changes: dict[str, Mapping[OutKey, dict[str, Any] | None]] = {}
            renders = recomputed = 0
            for cluster in translation.clusters:
                store = self.stores[cluster]
                found, done, objects = self._rerender(store, order, producers, client_dr)
                renders += done
                recomputed += objects
                if found:
                    changes[cluster] = found
            total = sum(len(s.final) for s in self.stores.values())
            delta = Delta(changes, renders, full_renders, False, recomputed, total)
        self.bundle, self.inputs = bundle, new_inputs
        self.translation, self.producers = translation, producers
        return delta

    def _rerender(
        self,
        store: ClusterOutputs,
        order: list[ProducerKey],
        producers: Mapping[ProducerKey, Producer],
        client_dr: Mapping[tuple[str, str], ProducerKey],
    ) -> tuple[dict[OutKey, dict[str, Any] | None], int, int]:
        """Render `order` again in one cluster (client DestinationRules follow the needs of
        what was rendered); returns the changed objects, the number of renders and the
        number of objects they produced."""
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
        client_drs += [k for s in sorted(needs_changed) if (k := client_dr.get(s)) is not None]
        for key in dict.fromkeys(client_drs):
            touched |= store.begin(key)
            producer = producers.get(key)
            if producer is not None:
                producer.render(store.cluster, store)
                touched.update(store.owned.get(key, ()))
                done.add(key)
        produced = sum(len(store.owned.get(key, ())) for key in done)
        return store.resolve(touched), len(done), produced

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
        total = sum(len(s.final) for s in stores.values())
        return Delta(changes, full_renders, full_renders, True, total, total)

    def _render_all(self, cluster: str) -> ClusterOutputs:
        store = ClusterOutputs(cluster)
        self.translation.render_into(store, list(self.producers.values()))
        store.resolve()
        return store

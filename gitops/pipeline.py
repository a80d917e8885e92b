"""The offline pipeline: tree (+ snapshots) -> diagnostics, reports, per-cluster output.

The one function `gitops validate` and `gitops render` call (and, later, the
server's reconcile loop for a full translation): load -> parse inputs ->
translate -> render each cluster -> report. Output is handed to `sink` one
cluster at a time, so a large fleet is never held in memory at once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gitops import discovery, loading, reports
from gitops.bundle import Bundle
from gitops.diagnostics import Diagnostic, has_errors, sort_key
from gitops.ids import ObjectRef
from gitops.reasons import Severity, State
from gitops.translate import ClusterOutput, incremental, translate
from gitops.tree import Tree

Sink = Callable[[ClusterOutput], None]
#: Called with a stage name when a stage is done ("loaded", "inputs", "translated",
#: "rendered <cluster>"): for progress display and memory management by the caller.
StageHook = Callable[[str], None]


@dataclass(frozen=True)
class ClusterSummary:
    cluster: str
    objects: int
    kinds: Mapping[str, int]

    def line(self) -> str:
        detail = ", ".join(f"{n} {kind}" for kind, n in sorted(self.kinds.items()))
        return f"{self.cluster}: {self.objects} objects" + (f" ({detail})" if detail else "")


@dataclass(frozen=True)
class Outcome:
    bundle: Bundle
    diagnostics: tuple[Diagnostic, ...]
    reports: tuple[reports.Report, ...]
    clusters: tuple[ClusterSummary, ...]
    #: With `base`: clusters whose output cannot differ from the base's, not rendered.
    skipped: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        """True when `validate`/`render` must exit 1: any error, or an INVALID/FAILED resource."""
        return has_errors(self.diagnostics) or any(r.state >= State.FAILED for r in self.reports)

    @property
    def errors(self) -> int:
        return sum(d.severity is Severity.ERROR for d in self.diagnostics)

    @property
    def warnings(self) -> int:
        return sum(d.severity is Severity.WARNING for d in self.diagnostics)


def load_inputs(snapshots: Mapping[str, Tree]) -> dict[str, discovery.ClusterInputs]:
    return {name: discovery.load_cluster(name, tree) for name, tree in sorted(snapshots.items())}


def run(
    tree: Tree,
    snapshots: Mapping[str, Tree] | None,
    sink: Sink | None = None,
    stage_done: StageHook | None = None,
    base: Tree | None = None,
) -> Outcome:
    """Load, translate (when snapshots are given) and report.

    With `base` (the tree at an earlier commit, `gitops render --since`), only clusters
    whose output can differ from the base's are rendered (each exactly as a full render
    would); the others are listed in `Outcome.skipped`.
    """
    done = stage_done or (lambda _stage: None)
    base_bundle = loading.load(base) if base is not None else None
    bundle = loading.load(tree, previous=base_bundle)
    done("loaded")
    skipped: tuple[str, ...] = ()
    found: list[Diagnostic] = list(bundle.diagnostics)
    summaries: list[ClusterSummary] = []
    workspace_of: Mapping[ObjectRef, str] = {}
    selected: Mapping[ObjectRef, int] = {}
    if snapshots is not None:
        inputs = load_inputs(snapshots)
        for cluster_inputs in inputs.values():
            found.extend(cluster_inputs.diagnostics)
        done("inputs")
        translation = translate(bundle, inputs)
        clusters = translation.clusters
        if base_bundle is not None:
            refs = incremental.changed_refs(base_bundle, bundle)
            before = translate(base_bundle, inputs)
            wanted = incremental.affected_clusters(before, translation, refs)
            skipped = tuple(c for c in clusters if c not in wanted)
            clusters = tuple(c for c in clusters if c in wanted)
        done("translated")
        workspace_of = translation.workspace_of
        selected = translation.selected
        found.extend(translation.diagnostics)
        for output in (translation.render(c) for c in clusters):
            found.extend(output.diagnostics)
            kinds = Counter(o["kind"] for o in output.objects)
            summaries.append(ClusterSummary(output.cluster, len(output.objects), kinds))
            if sink is not None:
                sink(output)
            done(f"rendered {output.cluster}")
    # Field-level problems found while translating carry the field path; give them its line.
    located = [_locate(bundle, d) for d in found]
    ordered = tuple(sorted(set(located), key=sort_key))
    built = reports.build(bundle, workspace_of, ordered, selected)
    return Outcome(bundle, ordered, tuple(built), tuple(summaries), skipped)


def _locate(bundle: Bundle, d: Diagnostic) -> Diagnostic:
    if d.obj is None or d.source is None or not d.field:
        return d
    source = bundle.locate(d.obj, d.field, d.source)
    if source == d.source:
        return d
    return Diagnostic(d.reason, d.message, source, d.obj, d.field, d.cluster)

"""Test support: render golden cases as they are, or with files added, changed or removed.

Shared by the behaviour tests (tests/test_behaviour_*.py) that check what a golden case
means, and by tests that take a case as the starting point of a variation.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from controller.sources.directory import read_directory
from controller.sources.snapshots import read_snapshot_dir
from gitops import pipeline
from gitops.translate import ClusterOutput
from gitops.tree import Tree
from tests.test_golden import case_paths, run_case

Objects = list[dict[str, Any]]


@cache
def rendered(case: str) -> tuple[pipeline.Outcome, dict[str, Objects]]:
    return run_case(case)


def tree_of(case: str, changes: dict[str, str | None]) -> Tree:
    """The case's repository with files added, replaced (text) or removed (None)."""
    base = read_directory(case_paths(case)[0])
    entries = dict(base.entries)
    for path, text in changes.items():
        if text is None:
            entries.pop(path, None)
        else:
            entries[path] = text.encode()
    return Tree(entries)


def render(
    case: str, changes: dict[str, str | None]
) -> tuple[pipeline.Outcome, dict[str, Objects]]:
    outputs: dict[str, Objects] = {}

    def sink(output: ClusterOutput) -> None:
        outputs[output.cluster] = output.objects

    snapshots = read_snapshot_dir(case_paths(case)[1])
    return pipeline.run(tree_of(case, changes), snapshots, sink), outputs


def repo_text(case: str, path: str) -> str:
    entry = read_directory(case_paths(case)[0]).entries[path]
    assert isinstance(entry, bytes)
    return entry.decode()


def named(objects: Objects, kind: str, namespace: str, name: str) -> dict[str, Any]:
    found = [
        o
        for o in objects
        if o["kind"] == kind
        and o["metadata"]["namespace"] == namespace
        and o["metadata"]["name"] == name
    ]
    assert len(found) == 1, f"expected one {kind} {namespace}/{name}, got {len(found)}"
    return found[0]


def of_kind(objects: Objects, kind: str) -> Objects:
    return [o for o in objects if o["kind"] == kind]


def report(outcome: pipeline.Outcome, kind: str, name: str) -> Any:
    return next(r for r in outcome.reports if r.ref.kind == kind and r.ref.name == name)


def routes_to(objects: Objects, namespace: str) -> list[dict[str, Any]]:
    vs = [o for o in of_kind(objects, "VirtualService") if o["metadata"]["namespace"] == namespace]
    assert len(vs) == 1
    return [r for route in vs[0]["spec"]["http"] for r in route.get("route", [])]

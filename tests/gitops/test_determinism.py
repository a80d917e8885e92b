"""Same inputs, byte-identical output: the order in which files arrive must not matter."""

from __future__ import annotations

import random
from pathlib import Path

from controller.sources.directory import read_directory
from controller.sources.snapshots import read_snapshot_dir
from gitops import pipeline, rendering
from gitops.translate import ClusterOutput
from gitops.tree import Tree

ROOT = Path(__file__).resolve().parents[2]


def shuffled(tree: Tree, seed: int) -> Tree:
    items = list(tree.entries.items())
    random.Random(seed).shuffle(items)
    return Tree(dict(items), tree.revision, tree.origin)


def render(tree: Tree, snapshots: dict[str, Tree]) -> dict[str, str]:
    out: dict[str, str] = {}

    def sink(output: ClusterOutput) -> None:
        out[output.cluster] = rendering.dump_all(output.objects)

    outcome = pipeline.run(tree, snapshots, sink)
    out["reports"] = rendering.dump({"reports": [r.to_json() for r in outcome.reports]})
    return out


def test_file_order_does_not_change_a_byte() -> None:
    tree = read_directory(ROOT / "examples-repo")
    snapshots = read_snapshot_dir(ROOT / "deploy" / "demo" / "clusters")
    expected = render(tree, snapshots)
    assert expected["cluster1"].count("\n---\n") >= 10
    for seed in range(3):
        other = {name: shuffled(t, seed) for name, t in reversed(list(snapshots.items()))}
        assert render(shuffled(tree, seed), other) == expected

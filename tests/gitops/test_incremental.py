"""Incremental translation gives exactly what a full render gives.

For every golden case, a Session takes a chain of random edits of the case's repository
(and some of its snapshots) and, after each one, every cluster's objects must be
byte-identical to a fresh full render of the edited input, and the diagnostics equal.
Edits are random but seeded, so a failure reproduces.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.sources.directory import read_directory
from controller.sources.snapshots import read_snapshot_dir
from gitops import loading, pipeline, rendering
from gitops.translate import translate
from gitops.translate.incremental import GLOBAL_KINDS, Delta, Session
from gitops.tree import Tree
from tests.test_golden import CASES, case_paths

EDITS_PER_CASE = 12


def documents(tree: Tree) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for path, entry in sorted(tree.entries.items()):
        if isinstance(entry, bytes) and path.endswith(".yaml") and not path.startswith("helm/"):
            try:
                out[path] = [d for d in yaml.safe_load_all(entry) if d is not None]
            except yaml.YAMLError:
                continue
    return out


def as_tree(base: Tree, docs: dict[str, list[Any]]) -> Tree:
    entries = dict(base.entries)
    for path, found in docs.items():
        entries[path] = yaml.safe_dump_all(found, sort_keys=False).encode()
    return Tree(entries, base.revision, base.origin)


def strings_in(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings_in(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return [value] if isinstance(value, str) else []


def replace_first(value: Any, old: str, new: str) -> bool:
    """Replace the first string value equal to `old` (depth first), in place."""
    items: list[tuple[Any, Any]] = (
        list(value.items())
        if isinstance(value, dict)
        else list(enumerate(value))
        if isinstance(value, list)
        else []
    )
    for key, item in items:
        if item == old:
            value[key] = new
            return True
        if isinstance(item, (dict, list)) and replace_first(item, old, new):
            return True
    return False


def edit(rng: random.Random, docs: dict[str, list[Any]]) -> str:
    """One random change to one object; returns what was done (for failure messages)."""
    # Mostly edit what incremental translation handles piecewise; global kinds (clusters,
    # workspaces) force a full re-translation and are exercised less often.
    spots = [
        (p, i)
        for p, found in sorted(docs.items())
        for i, d in enumerate(found)
        if isinstance(d, dict) and (d.get("kind") not in GLOBAL_KINDS or rng.random() < 0.15)
    ] or [(p, i) for p, found in sorted(docs.items()) for i in range(len(found))]
    path, index = rng.choice(spots)
    doc = docs[path][index]
    if not isinstance(doc, dict) or not isinstance(doc.get("metadata"), dict):
        return "nothing"
    meta = doc["metadata"]
    words = sorted({s for d in docs.values() for s in strings_in(d) if len(s) < 40})
    choice = rng.randrange(6)
    if choice == 0:
        docs[path].pop(index)
        return f"delete {path}#{index}"
    if choice == 1:
        labels = meta.setdefault("labels", {})
        key = rng.choice(sorted(labels) or ["expose", "failover", "app", "team"])
        labels[key] = rng.choice(["true", "false", "v2", "ratings", "reviews"])
        return f"label {path}#{index} {key}={labels[key]}"
    if choice == 2:
        meta["creationTimestamp"] = f"20{rng.randrange(20, 26)}-0{rng.randrange(1, 9)}-01T00:00:00Z"
        return f"stamp {path}#{index}"
    if choice == 3:
        clone = copy.deepcopy(doc)
        clone["metadata"]["name"] = f"{meta.get('name', 'x')}-copy{rng.randrange(100)}"
        docs[path].append(clone)
        return f"copy {path}#{index}"
    if choice == 4 and isinstance(doc.get("spec"), dict):
        spec_strings = strings_in(doc["spec"])
        if spec_strings:
            old = rng.choice(spec_strings)
            new = rng.choice(words)
            replace_first(doc["spec"], old, new)
            return f"swap {path}#{index} {old!r}->{new!r}"
    meta.setdefault("annotations", {})["note"] = str(rng.random())
    return f"annotate {path}#{index}"


def edit_inputs(rng: random.Random, inputs: dict[str, Any], trees: dict[str, Tree]) -> str:
    cluster = rng.choice(sorted(trees))
    tree = trees[cluster]
    docs = documents(tree)
    path = rng.choice(sorted(p for p, d in docs.items() if d))
    services = [d for d in docs[path] if isinstance(d, dict) and d.get("kind") == "Service"]
    if not services:
        return "nothing"
    service = rng.choice(services)
    service.setdefault("metadata", {}).setdefault("labels", {})["edited"] = str(rng.random())
    if rng.random() < 0.5:
        docs[path].remove(service)
    trees[cluster] = as_tree(tree, docs)
    inputs.update(pipeline.load_inputs({cluster: trees[cluster]}))
    return f"input {cluster}/{path}"


def full(bundle: Any, inputs: Any) -> tuple[dict[str, str], set[Any]]:
    translation = translate(bundle, inputs)
    outputs = {c: translation.render(c) for c in translation.clusters}
    text = {c: rendering.dump_all(o.objects) for c, o in outputs.items()}
    found = set(translation.diagnostics)
    for o in outputs.values():
        found.update(o.diagnostics)
    return text, found


def edit_chain(case: str) -> Iterator[tuple[str, Tree, Any, Any, Delta, Session]]:
    """A seeded chain of edits of one golden case: yields (what, tree, bundle, inputs,
    delta, session) after each update of one Session."""
    rng = random.Random(f"incremental:{case}")
    repo, snapshot = case_paths(case)
    base = read_directory(repo)
    trees = read_snapshot_dir(snapshot)
    inputs = pipeline.load_inputs(trees)
    session = Session(loading.load(base), inputs)
    docs = documents(base)
    for step in range(EDITS_PER_CASE):
        if step % 5 == 4:
            inputs = dict(inputs)
            what = edit_inputs(rng, inputs, trees)
        else:
            what = edit(rng, docs)
        # Load the way the server does: files whose bytes did not change are reused.
        tree = as_tree(base, docs)
        bundle = loading.load(tree, previous=session.bundle)
        delta = session.update(bundle, inputs)
        yield what, tree, bundle, inputs, delta, session


@pytest.mark.parametrize("case", CASES)
def test_incremental_equals_full_after_random_edits(case: str) -> None:
    history: list[str] = []
    for what, tree, bundle, inputs, delta, session in edit_chain(case):
        history.append(what)
        fresh = loading.load(tree)
        assert fresh.objects == bundle.objects, f"incremental load differs after {history}"
        assert set(fresh.diagnostics) == set(bundle.diagnostics), f"after {history}"
        expected, expected_diagnostics = full(bundle, inputs)
        actual = {c: rendering.dump_all(session.objects(c)) for c in session.clusters}
        assert actual == expected, f"after {history}"
        assert set(session.diagnostics()) == expected_diagnostics, f"after {history}"
        assert delta.renders <= delta.full_renders


def test_the_edit_chains_exercise_the_incremental_path() -> None:
    # The equality test above only means something if edits change output without a full
    # re-translation often enough.
    # (Cases whose repository is large, built to force EnvoyFilter chunking, are left out:
    # they are slow, and the equality test above covers them.)
    small = [c for c in CASES if _repo_bytes(case_paths(c)[0]) < 100_000]
    piecewise = sum(
        not delta.full and bool(delta.changes) and delta.renders < delta.full_renders
        for case in small
        for *_, delta, _ in edit_chain(case)
    )
    assert len(small) >= 10 and piecewise >= len(small)


def _repo_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*.yaml"))


def test_a_policy_edit_renders_only_the_routes_it_touches() -> None:
    repo, snapshot = case_paths("examples-repo")
    base = read_directory(repo)
    inputs = pipeline.load_inputs(read_snapshot_dir(snapshot))
    session = Session(loading.load(base), inputs)
    path = "bookinfo/policies/retry-timeout.yaml"
    entry = base.entries[path]
    assert isinstance(entry, bytes)
    edited = Tree({**base.entries, path: entry.replace(b"attempts: 3", b"attempts: 5")})
    delta = session.update(loading.load(edited))
    assert not delta.full
    # The reviews table (and its subsets' DestinationRules) in each cluster, nothing else.
    assert delta.renders <= 2 * len(session.clusters)
    changed = {key for found in delta.changes.values() for key in found}
    assert {kind for kind, _, _ in changed} == {"VirtualService"}
    for cluster in session.clusters:
        for obj in session.objects(cluster):
            if obj["kind"] == "VirtualService" and "retries" in obj["spec"]["http"][0]:
                assert obj["spec"]["http"][0]["retries"]["attempts"] == 5


def test_a_global_change_renders_everything(tmp_path: Path) -> None:
    repo, snapshot = case_paths("ex2-sidecar-fault-injection")
    base = read_directory(repo)
    inputs = pipeline.load_inputs(read_snapshot_dir(snapshot))
    session = Session(loading.load(base), inputs)
    docs = documents(base)
    workspace = next(d for found in docs.values() for d in found if d.get("kind") == "Workspace")
    workspace["metadata"].setdefault("labels", {})["edited"] = "true"
    delta = session.update(loading.load(as_tree(base, docs)))
    assert delta.full and delta.renders == delta.full_renders


def test_an_access_policy_edit_renders_only_the_services_it_selects_before_or_after() -> None:
    # Under isolation, an AccessPolicy takes over the allow-list of the ports it selects.
    # Moving it from reviews to ratings must bring back reviews' isolation policy and drop
    # ratings', while productpage's isolation is not rendered again.
    repo, snapshot = case_paths("isolation-with-access-policy")
    base = read_directory(repo)
    inputs = pipeline.load_inputs(read_snapshot_dir(snapshot))
    session = Session(loading.load(base), inputs)
    entry = base.entries["access-policy.yaml"]
    assert isinstance(entry, bytes) and entry.count(b"name: reviews\n") == 1
    moved = entry.replace(b"name: reviews\n", b"name: ratings\n")
    edited = loading.load(Tree({**base.entries, "access-policy.yaml": moved}))
    delta = session.update(edited)
    assert not delta.full
    # The policy, reviews' and ratings' isolation, in each cluster: 3 producers at most.
    assert delta.renders <= 3 * len(session.clusters)
    expected, _ = full(edited, inputs)
    for cluster in session.clusters:
        assert rendering.dump_all(session.objects(cluster)) == expected[cluster]
        allow_lists = {
            o["metadata"]["name"]
            for o in session.objects(cluster)
            if o["kind"] == "AuthorizationPolicy"
        }
        assert "settings-ratings-9080-bookinfo" not in allow_lists
        assert "settings-reviews-9080-bookinfo" in allow_lists

"""Golden translation cases: every folder under tests/golden/ is one case.

A case is `repo/` (a config repository) and `snapshot/<cluster>/` (discovery), or a
`case.yaml` naming them elsewhere; `expected/<cluster>.yaml` and
`expected/reports.yaml` are what `gitops render` must produce, byte for byte.
Refresh with `pytest --update-goldens` and read the diff: behaviour tests
(tests/test_behaviour_*.py) back the goldens so a blind refresh still fails.
Every emitted object is also validated against Istio's own CRD schemas.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.sources.directory import read_directory
from controller.sources.snapshots import read_snapshot_dir
from gitops import pipeline, rendering
from gitops.translate import ClusterOutput
from tests.support import istio_schema

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())


def case_paths(case: str) -> tuple[Path, Path]:
    folder = GOLDEN / case
    config = folder / "case.yaml"
    if config.exists():
        spec = yaml.safe_load(config.read_text())
        return (folder / spec["repo"]).resolve(), (folder / spec["snapshot"]).resolve()
    return folder / "repo", folder / "snapshot"


def run_case(case: str) -> tuple[pipeline.Outcome, dict[str, list[dict[str, Any]]]]:
    repo, snapshot = case_paths(case)
    outputs: dict[str, list[dict[str, Any]]] = {}

    def sink(output: ClusterOutput) -> None:
        outputs[output.cluster] = output.objects

    outcome = pipeline.run(read_directory(repo), read_snapshot_dir(snapshot), sink)
    return outcome, outputs


def reports_document(outcome: pipeline.Outcome) -> dict[str, Any]:
    unattached = [d.to_json() for d in outcome.diagnostics if d.obj is None]
    return {
        "reports": [r.to_json() for r in outcome.reports],
        "diagnostics": unattached,
    }


def check(path: Path, actual: str, update: bool) -> None:
    if update:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
        return
    assert path.exists(), f"{path} is missing; run pytest --update-goldens"
    expected = path.read_text()
    if expected != actual:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                fromfile=str(path),
                tofile="actual",
            )
        )
        pytest.fail(f"golden mismatch for {path}:\n{diff[:20000]}")


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str, update_goldens: bool) -> None:
    outcome, outputs = run_case(case)
    expected_dir = GOLDEN / case / "expected"
    for cluster, objects in sorted(outputs.items()):
        check(expected_dir / f"{cluster}.yaml", rendering.dump_all(objects), update_goldens)
    check(
        expected_dir / "reports.yaml",
        rendering.dump(reports_document(outcome)),
        update_goldens,
    )
    stale = {p.stem for p in expected_dir.glob("*.yaml")} - set(outputs) - {"reports"}
    assert not stale, f"expected files for clusters that rendered nothing: {sorted(stale)}"


@pytest.mark.parametrize("case", CASES)
def test_golden_outputs_match_istio_schemas(case: str) -> None:
    _, outputs = run_case(case)
    problems = [p for objects in outputs.values() for p in istio_schema.validate_all(objects)]
    assert problems == []


@pytest.mark.parametrize("case", CASES)
def test_golden_is_deterministic(case: str) -> None:
    first = run_case(case)[1]
    second = run_case(case)[1]
    assert {c: rendering.dump_all(o) for c, o in first.items()} == {
        c: rendering.dump_all(o) for c, o in second.items()
    }

"""Translation edge cases that golden files would make unreadable: object size limits,
conflicts between resources, and policies on routes that take none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from controller.sources.directory import read_directory
from controller.sources.snapshots import read_snapshot_dir
from gitops import pipeline
from gitops.reasons import Reason, State
from gitops.translate import ClusterOutput
from gitops.tree import Tree

CASE = Path(__file__).resolve().parents[1] / "golden" / "ex2-sidecar-fault-injection"


def render(extra: dict[str, str]) -> tuple[pipeline.Outcome, dict[str, list[dict[str, Any]]]]:
    base = read_directory(CASE / "repo")
    tree = Tree({**base.entries, **{k: v.encode() for k, v in extra.items()}})
    outputs: dict[str, list[dict[str, Any]]] = {}

    def sink(output: ClusterOutput) -> None:
        outputs[output.cluster] = output.objects

    return pipeline.run(tree, read_snapshot_dir(CASE / "snapshot"), sink), outputs


def route_table(name: str, host: str, route: str) -> str:
    return f"""
apiVersion: networking.gloo.solo.io/v2
kind: RouteTable
metadata: {{name: {name}, namespace: bookinfo-backends}}
spec:
  hosts: [{host}]
  http:
  - name: {name}
    {route}
"""


def test_a_virtualservice_over_one_mebibyte_is_not_emitted() -> None:
    body = "x" * 1_000_000
    outcome, out = render(
        {
            "huge.yaml": route_table(
                "huge", "huge.example.com", f"directResponse: {{status: 200, body: {body}}}"
            )
        }
    )
    huge = next(r for r in outcome.reports if r.ref.name == "huge")
    assert huge.state is State.INVALID
    assert [d.reason for d in huge.diagnostics] == [Reason.ObjectTooLarge]
    hosts = [o["spec"].get("hosts") for o in out["cluster1"]]
    assert ["huge.example.com"] not in hosts
    # Everything else still translates.
    assert any(h == ["ratings.bookinfo-backends.svc.cluster.local"] for h in hosts)


def test_route_policies_skip_redirects_and_direct_responses() -> None:
    # ratings-fault-injection selects routes labelled fault_injection=true.
    redirect = route_table(
        "moved",
        "moved.example.com",
        "labels: {fault_injection: 'true'}\n    redirect: {hostRedirect: new.example.com}",
    )
    outcome, out = render({"moved.yaml": redirect})
    moved = next(o for o in out["cluster1"] if o["spec"].get("hosts") == ["moved.example.com"])
    route = moved["spec"]["http"][0]
    assert "redirect" in route and "fault" not in route
    assert not outcome.failed


def test_two_virtual_destinations_for_one_host_the_older_wins() -> None:
    def vd(name: str, stamp: str) -> str:
        return f"""
apiVersion: networking.gloo.solo.io/v2
kind: VirtualDestination
metadata: {{name: {name}, namespace: bookinfo-backends, creationTimestamp: "{stamp}"}}
spec:
  hosts: [ratings.global]
  services: [{{labels: {{app: ratings}}}}]
  ports: [{{number: 9080, protocol: HTTP}}]
"""

    outcome, out = render(
        {
            "vd-new.yaml": vd("ratings-new", "2025-02-01T00:00:00Z"),
            "vd-old.yaml": vd("ratings-old", "2024-02-01T00:00:00Z"),
        }
    )
    new = next(r for r in outcome.reports if r.ref.name == "ratings-new")
    assert new.state is State.FAILED
    assert new.diagnostics[0].reason is Reason.OutputConflict
    parents = {
        o["metadata"]["labels"]["gloo.solo.io/parent_name"]
        for o in out["cluster1"]
        if o["kind"] in ("ServiceEntry", "DestinationRule", "WorkloadEntry")
    }
    assert parents == {"ratings-old"}


def test_a_child_table_delegated_to_twice_gets_unique_route_names() -> None:
    tables = """
apiVersion: networking.gloo.solo.io/v2
kind: RouteTable
metadata: {name: parent, namespace: bookinfo-backends}
spec:
  hosts: [api.example.com]
  http:
  - name: v1
    matchers: [{uri: {prefix: /v1}}]
    delegate: {routeTables: [{labels: {team: ratings}}]}
  - name: v2
    matchers: [{uri: {prefix: /v2}}]
    delegate: {routeTables: [{labels: {team: ratings}}]}
---
apiVersion: networking.gloo.solo.io/v2
kind: RouteTable
metadata: {name: child, namespace: bookinfo-backends, labels: {team: ratings}}
spec:
  http:
  - name: ratings
    forwardTo: {destinations: [{ref: {name: ratings}, port: {number: 9080}}]}
"""
    outcome, out = render({"delegation.yaml": tables})
    assert not outcome.failed
    vs = next(o for o in out["cluster1"] if o["spec"].get("hosts") == ["api.example.com"])
    routes = vs["spec"]["http"]
    assert [r["name"] for r in routes] == ["ratings-child", "ratings-child-2"]
    assert [r["match"][0]["uri"] for r in routes] == [{"prefix": "/v1"}, {"prefix": "/v2"}]

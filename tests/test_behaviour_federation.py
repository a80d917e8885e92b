"""What the federation and east-west gateway goldens mean.

Each test renders a golden case (tests/golden/federation, tests/golden/east-west-selection),
sometimes with a file changed, and checks the mesh behaviour the case exists for
(gloo-semantics.md 1.2, 2.8, 3.4, 4.1, 4.4), so a blindly refreshed golden still fails.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from gitops import rendering
from gitops.reasons import Reason, State
from tests.support.golden_cases import (
    Objects,
    named,
    of_kind,
    render,
    rendered,
    repo_text,
    report,
    routes_to,
)

EAST_WEST = {"cluster1": "172.18.0.10", "cluster2": "172.18.0.20"}
LOCALITY = {"cluster1": "us-east-1", "cluster2": "us-west-1"}
EVERY_NAMESPACE = ["bookinfo-backends", "bookinfo-frontends", "gloo-mesh-addons", "istio-gateways"]
OTHER = {"cluster1": "cluster2", "cluster2": "cluster1"}


# -- federation ---------------------------------------------------------------------------


def global_name(cluster: str) -> str:
    return f"vd-reviews-bookinfo-backends-svc-{cluster}-global-bookinfo"


def test_a_federated_service_is_local_in_its_cluster_and_behind_the_gateway_elsewhere() -> None:
    _, out = rendered("federation")
    vips = set()
    for cluster, other in OTHER.items():
        host = f"reviews.bookinfo-backends.svc.{cluster}.global"
        local = named(out[cluster], "ServiceEntry", "bookinfo-backends", global_name(cluster))
        assert local["spec"]["hosts"] == [host]
        assert local["spec"]["workloadSelector"] == {"labels": {"app": "reviews"}}
        assert local["spec"]["exportTo"] == EVERY_NAMESPACE
        assert local["spec"]["resolution"] == "STATIC"
        assert local["spec"]["location"] == "MESH_INTERNAL"
        assert "endpoints" not in local["spec"]
        labels = local["metadata"]["labels"]
        assert labels["gloo.solo.io/parent_kind"] == "Service"
        assert labels["gloo.solo.io/parent_cluster"] == cluster
        # In the other cluster: a copy per consuming namespace, through this cluster's
        # east-west gateway.
        for ns in EVERY_NAMESPACE:
            copy = named(out[other], "ServiceEntry", ns, global_name(cluster))
            assert copy["spec"]["exportTo"] == ["."]
            assert copy["spec"]["hosts"] == [host]
            assert copy["spec"]["endpoints"] == [
                {
                    "address": EAST_WEST[cluster],
                    "locality": LOCALITY[cluster],
                    "ports": {"http-9080": 15443},
                }
            ]
            assert "workloadSelector" not in copy["spec"]
            assert copy["spec"]["addresses"] == local["spec"]["addresses"]
        vips.add(local["spec"]["addresses"][0])
        assert ipaddress.ip_address(local["spec"]["addresses"][0]) in ipaddress.ip_network(
            "240.0.0.0/4"
        )
    assert len(vips) == 2  # one address per global host


def test_a_federated_host_is_mutual_tls_to_its_own_clusters_workloads() -> None:
    _, out = rendered("federation")
    for cluster, other in OTHER.items():
        for where, ns in [(cluster, "bookinfo-backends"), *((other, n) for n in EVERY_NAMESPACE)]:
            entry = named(out[where], "ServiceEntry", ns, global_name(cluster))
            rule = named(out[where], "DestinationRule", ns, global_name(cluster))
            assert rule["spec"]["host"] == entry["spec"]["hosts"][0]
            assert rule["spec"]["exportTo"] == entry["spec"]["exportTo"]
            assert rule["spec"]["trafficPolicy"]["portLevelSettings"] == [
                {
                    "port": {"number": 9080},
                    "tls": {
                        "mode": "ISTIO_MUTUAL",
                        "subjectAltNames": [
                            f"spiffe://{cluster}/ns/bookinfo-backends/sa/bookinfo-reviews"
                        ],
                    },
                }
            ]


def test_only_the_selected_services_are_federated() -> None:
    _, out = rendered("federation")
    hosts = {h for objs in out.values() for o in objs for h in o["spec"].get("hosts", [])}
    assert not any(h.startswith(("ratings.", "productpage.")) for h in hosts)


def test_a_route_to_a_service_in_another_cluster_uses_its_federated_host() -> None:
    outcome, out = rendered("federation")
    port = {"number": 9080}
    for ns in ("bookinfo-backends", "bookinfo-frontends"):
        assert routes_to(out["cluster1"], ns) == [
            {"destination": {"host": "reviews.bookinfo-backends.svc.cluster2.global", "port": port}}
        ]
        assert routes_to(out["cluster2"], ns) == [
            {"destination": {"host": "reviews.bookinfo-backends.svc.cluster.local", "port": port}}
        ]
    assert report(outcome, "RouteTable", "reviews-in-cluster2").state is State.ACCEPTED


CROSS_CLUSTER_RATINGS = """
apiVersion: networking.gloo.solo.io/v2
kind: RouteTable
metadata: {name: ratings-in-cluster2, namespace: bookinfo-backends}
spec:
  hosts: [ratings.bookinfo-backends.svc.cluster.local]
  http:
  - name: ratings
    forwardTo:
      destinations: [{ref: {name: ratings, cluster: cluster2}, port: {number: 9080}}]
"""


def test_a_route_to_an_unfederated_service_in_another_cluster_is_still_refused() -> None:
    outcome, out = render("federation", {"ratings.yaml": CROSS_CLUSTER_RATINGS})
    table = report(outcome, "RouteTable", "ratings-in-cluster2")
    assert [d.reason for d in table.diagnostics] == [Reason.CrossClusterDestinationNotFederated]
    assert table.diagnostics[0].cluster == "cluster1"
    by_host = {
        c: next(
            o
            for o in of_kind(objs, "VirtualService")
            if o["spec"]["hosts"] == ["ratings.bookinfo-backends.svc.cluster.local"]
        )
        for c, objs in out.items()
    }
    assert by_host["cluster1"]["spec"]["http"][0]["directResponse"] == {"status": 500}
    assert "route" in by_host["cluster2"]["spec"]["http"][0]


def test_subsets_do_not_cross_clusters() -> None:
    with_subset = repo_text("federation", "route-table.yaml").replace(
        "        port:\n          number: 9080\n",
        "        port:\n          number: 9080\n        subset:\n          version: v2\n",
    )
    outcome, out = render("federation", {"route-table.yaml": with_subset})
    table = report(outcome, "RouteTable", "reviews-in-cluster2")
    assert {(d.reason, d.cluster) for d in table.diagnostics} == {
        (Reason.SubsetAcrossClusters, "cluster1")
    }
    assert routes_to(out["cluster2"], "bookinfo-frontends")[0]["destination"]["subset"] == (
        "version-v2"
    )


def test_a_federation_selector_that_matches_nothing_is_reported() -> None:
    settings = repo_text("federation", "workspaces.yaml").replace("app: reviews\n", "app: nope\n")
    outcome, out = render("federation", {"workspaces.yaml": settings})
    bookinfo = report(outcome, "WorkspaceSettings", "bookinfo")
    assert [d.reason for d in bookinfo.diagnostics] == [Reason.NothingSelected]
    assert not any(".global" in str(o["spec"].get("hosts")) for objs in out.values() for o in objs)


# -- east-west gateway selection and client modes -------------------------------------------


def workload_entry(objects: Objects, host: str) -> dict[str, Any]:
    found = [o for o in of_kind(objects, "WorkloadEntry") if f"vd-{host}-" in o["metadata"]["name"]]
    assert len(found) == 1
    spec: dict[str, Any] = found[0]["spec"]
    return spec


def test_the_workspace_selects_its_east_west_gateways_and_overrides_their_addresses() -> None:
    _, out = rendered("east-west-selection")
    # cluster1 reaches cluster2 through the overrides; cluster2 reaches cluster1 through
    # the internal gateway's discovered address. The istio: eastwestgateway ones are unused.
    reviews = {c: workload_entry(out[c], "reviews-global") for c in out}
    ratings = {c: workload_entry(out[c], "ratings-global") for c in out}
    assert (reviews["cluster1"]["address"], reviews["cluster1"]["ports"]) == (
        "203.0.113.21",
        {"http-9080": 443},
    )
    assert (ratings["cluster1"]["address"], ratings["cluster1"]["ports"]) == (
        "203.0.113.20",
        {"http-9080": 15443},
    )
    assert (reviews["cluster2"]["address"], reviews["cluster2"]["ports"]) == (
        "172.18.0.12",
        {"http-9080": 16443},
    )
    assert (ratings["cluster2"]["address"], ratings["cluster2"]["ports"]) == (
        "172.18.0.12",
        {"http-9080": 15443},
    )
    text = "".join(rendering.dump_all(objs) for objs in out.values())
    assert EAST_WEST["cluster1"] not in text and EAST_WEST["cluster2"] not in text


def test_tls_termination_adds_the_gateways_identity() -> None:
    _, out = rendered("east-west-selection")
    rules = {
        o["spec"]["host"]: o["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"]
        for o in of_kind(out["cluster1"], "DestinationRule")
    }
    gateways = [f"spiffe://{c}/ns/istio-gateways/sa/internal-eastwestgateway" for c in OTHER]
    assert set(gateways) <= set(rules["reviews.global"]["subjectAltNames"])
    assert not set(gateways) & set(rules["ratings.global"]["subjectAltNames"])


def test_a_cluster_without_a_selected_gateway_is_reported_on_the_virtual_destination() -> None:
    settings = repo_text("east-west-selection", "workspaces.yaml").replace(
        "          gateway: internal-ew\n        cluster: cluster2\n",
        "          gateway: internal-ew\n        cluster: elsewhere\n",
    )
    outcome, out = render("east-west-selection", {"workspaces.yaml": settings})
    reviews = report(outcome, "VirtualDestination", "reviews")
    assert [(d.reason, d.cluster) for d in reviews.diagnostics] == [
        (Reason.EastWestGatewayNotFound, "cluster2")
    ]
    assert "eastWestGateways" in reviews.diagnostics[0].message
    # cluster1 has no way into cluster2: no WorkloadEntry for it.
    assert not [
        o for o in of_kind(out["cluster1"], "WorkloadEntry") if "reviews" in o["metadata"]["name"]
    ]

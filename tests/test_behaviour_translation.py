"""What the golden cases mean, asserted directly, so a blindly refreshed golden still fails.

Each test renders a golden case (tests/golden/<case>/) and checks the mesh behaviour the
case exists for, in the words of the spec's worked examples.
"""

from __future__ import annotations

import ipaddress
from functools import cache
from typing import Any

from gitops import pipeline
from gitops.reasons import State
from tests.test_golden import run_case

Objects = list[dict[str, Any]]


@cache
def rendered(case: str) -> tuple[pipeline.Outcome, dict[str, Objects]]:
    return run_case(case)


def find(objects: Objects, kind: str, namespace: str | None = None) -> Objects:
    return [
        o
        for o in objects
        if o["kind"] == kind and (namespace is None or o["metadata"]["namespace"] == namespace)
    ]


def one(objects: Objects, kind: str, namespace: str | None = None) -> dict[str, Any]:
    found = find(objects, kind, namespace)
    assert len(found) == 1, f"expected one {kind} in {namespace}, got {len(found)}"
    return found[0]


def report(outcome: pipeline.Outcome, kind: str, name: str) -> Any:
    return next(r for r in outcome.reports if r.ref.kind == kind and r.ref.name == name)


def test_ex1_gateway_routetable_binds_a_virtualservice_to_the_generated_gateway() -> None:
    _, out = rendered("ex1-gateway-routetable")
    gateway = one(out["cluster1"], "Gateway", "istio-gateways")
    assert gateway["spec"]["selector"] == {"app": "istio-ingressgateway", "istio": "ingressgateway"}
    # Listener port 80 is served on the gateway Service's targetPort.
    assert gateway["spec"]["servers"][0]["port"] == {
        "name": "http-8080-all",
        "number": 8080,
        "protocol": "HTTP",
    }
    vs = one(out["cluster1"], "VirtualService", "istio-gateways")
    assert vs["metadata"]["name"] == "routetable-productpage-bookinfo-frontends-cluster1-gateways"
    assert vs["spec"]["gateways"] == [gateway["metadata"]["name"]]
    route = vs["spec"]["http"][0]
    assert [m["uri"] for m in route["match"]] == [{"exact": "/productpage"}, {"prefix": "/static"}]
    assert all(m["sourceLabels"] == gateway["spec"]["selector"] for m in route["match"])
    assert "weight" not in route["route"][0]
    # The VirtualGateway selects cluster1 only, and no sidecar gets the gateway table.
    assert out["cluster2"] == []
    assert find(out["cluster1"], "VirtualService", "bookinfo-frontends") == []


def test_ex2_fault_injection_decorates_the_sidecar_route_in_every_namespace() -> None:
    _, out = rendered("ex2-sidecar-fault-injection")
    for cluster in ("cluster1", "cluster2"):
        for ns in ("bookinfo-backends", "bookinfo-frontends"):
            vs = one(out[cluster], "VirtualService", ns)
            assert vs["spec"]["gateways"] == ["mesh"] and vs["spec"]["exportTo"] == ["."]
            route = vs["spec"]["http"][0]
            assert route["name"] == "ratings-ratings"
            assert route["fault"] == {"delay": {"fixedDelay": "2s", "percentage": {"value": 100}}}
            assert route["match"] == [{"sourceLabels": {"app": "reviews"}, "uri": {"prefix": "/"}}]


def test_ex3_subset_route_gets_a_client_destination_rule_in_the_same_namespace() -> None:
    _, out = rendered("ex3-subset-retry-timeout")
    for ns in ("bookinfo-backends", "bookinfo-frontends"):
        vs = one(out["cluster1"], "VirtualService", ns)
        route = vs["spec"]["http"][0]
        assert route["timeout"] == "0.500s"
        assert route["route"][0]["destination"]["subset"] == "version-v2"
        dr = one(out["cluster1"], "DestinationRule", ns)
        assert dr["metadata"]["name"].startswith("reviews-bookinfo-backends-svc-c")
        assert dr["spec"]["host"] == "reviews.bookinfo-backends.svc.cluster.local"
        assert dr["spec"]["subsets"] == [{"labels": {"version": "v2"}, "name": "version-v2"}]
        assert dr["metadata"]["labels"]["gloo.solo.io/parent_kind"] == "Service"


def test_ex4_the_later_policy_loses_and_changes_nothing() -> None:
    outcome, out = rendered("ex4-conflicting-policies")
    _, base = rendered("ex3-subset-retry-timeout")

    def specs(objects: Objects) -> list[Any]:
        return [o["spec"] for o in objects]

    assert specs(out["cluster1"]) == specs(base["cluster1"])
    loser = report(outcome, "RetryTimeoutPolicy", "reviews-timeout-2")
    assert loser.state is State.FAILED
    assert loser.diagnostics[0].message == (
        "RetryTimeoutPolicy conflicts existing policy applied to route. Skipping applying "
        "reviews-timeout-2.bookinfo-backends"
    )
    assert report(outcome, "RetryTimeoutPolicy", "reviews-request-timeout").state is State.ACCEPTED


def test_ex5_each_cluster_reaches_the_other_through_its_east_west_gateway() -> None:
    _, out = rendered("ex5-virtual-destination")
    east_west = {"cluster1": "172.18.0.10", "cluster2": "172.18.0.20"}
    locality = {"cluster1": "us-east-1", "cluster2": "us-west-1"}
    for cluster, other in (("cluster1", "cluster2"), ("cluster2", "cluster1")):
        objects = out[cluster]
        entry = one(objects, "ServiceEntry", "bookinfo-backends")
        assert entry["metadata"]["name"] == "vd-reviews-global-bookinfo"
        assert entry["spec"]["hosts"] == ["reviews.global"]
        assert entry["spec"]["workloadSelector"] == {"labels": {"app": "reviews"}}
        assert entry["spec"]["exportTo"] == ["bookinfo-backends", "bookinfo-frontends"]
        vip = ipaddress.ip_address(entry["spec"]["addresses"][0])
        assert vip in ipaddress.ip_network("240.0.0.0/4")
        # cluster2 gets a WorkloadEntry for reviews at cluster1's east-west address.
        we = one(objects, "WorkloadEntry", "bookinfo-backends")
        assert we["spec"]["address"] == east_west[other]
        assert we["spec"]["locality"] == locality[other]
        assert we["spec"]["ports"] == {"http-9080": 15443}
        assert we["spec"]["labels"] == {"app": "reviews"}
        dr = one(objects, "DestinationRule", "bookinfo-backends")
        tls = dr["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"]
        assert tls["mode"] == "ISTIO_MUTUAL"
        assert tls["subjectAltNames"] == [
            "spiffe://cluster1/ns/bookinfo-backends/sa/bookinfo-reviews",
            "spiffe://cluster2/ns/bookinfo-backends/sa/bookinfo-reviews",
        ]
    # Gloo 1.x's VIP algorithm gives the spec's worked-example address.
    assert one(out["cluster1"], "ServiceEntry")["spec"]["addresses"] == ["253.18.193.56"]


def test_ex6_failover_and_outlier_detection_land_on_the_vd_port() -> None:
    outcome, out = rendered("ex6-failover-outlier")
    for cluster in ("cluster1", "cluster2"):
        dr = one(out[cluster], "DestinationRule", "bookinfo-backends")
        [port] = dr["spec"]["trafficPolicy"]["portLevelSettings"]
        assert port["port"] == {"number": 9080}
        assert port["loadBalancer"] == {"localityLbSetting": {"enabled": True}}
        assert port["outlierDetection"] == {
            "baseEjectionTime": "30s",
            "consecutive5xxErrors": 2,
            "interval": "5s",
            "maxEjectionPercent": 100,
        }
        assert port["tls"]["mode"] == "ISTIO_MUTUAL"
    assert all(r.state is State.ACCEPTED for r in outcome.reports)


def test_delegation_flattens_children_in_weight_order_and_replaces_conflicts() -> None:
    outcome, out = rendered("delegation")
    vs = one(out["cluster1"], "VirtualService", "istio-gateways")
    names = [r["name"] for r in vs["spec"]["http"]]
    assert names == [
        "productpage-bookinfo-root",
        "products-products-api",
        "reviews-v2-reviews-api-v2",
        "legacy-reviews-reviews-api",
    ]
    products, reviews_v2, legacy = vs["spec"]["http"][1:]
    assert products["match"][0]["uri"] == {"prefix": "/api/v1/products"}
    assert products["match"][0]["method"] == {"exact": "GET"}
    assert reviews_v2["match"][0]["uri"] == {"prefix": "/api/v1/reviews/v2"}
    # The conflicting child route answers 500 within the parent's scope, never outside it.
    assert legacy["directResponse"] == {"status": 500}
    assert all(m["uri"]["prefix"].startswith("/api") for m in legacy["match"])
    # Child tables produce no VirtualService of their own.
    assert len(find(out["cluster1"], "VirtualService")) == 1
    assert report(outcome, "RouteTable", "reviews-api").state is State.INVALID


def test_workspace_visibility_needs_export_and_import() -> None:
    outcome, out = rendered("workspace-visibility")
    ingress = one(out["cluster1"], "VirtualService", "istio-gateways")
    productpage, ratings = ingress["spec"]["http"]
    assert productpage["route"][0]["destination"]["host"].startswith("productpage.")
    assert ratings["directResponse"] == {"status": 500}
    bad = report(outcome, "RouteTable", "bookinfo-ingress")
    assert bad.state is State.INVALID
    assert bad.diagnostics[0].reason.name == "DestinationNotFound"
    reviews = [
        o["metadata"]["namespace"]
        for o in find(out["cluster1"], "VirtualService")
        if o["metadata"]["labels"]["gloo.solo.io/parent_name"] == "reviews"
    ]
    assert reviews == ["bookinfo-backends", "bookinfo-frontends"]


def test_gateway_tls_listener_servers_and_host_filtering() -> None:
    outcome, out = rendered("gateway-tls")
    gateway = one(out["cluster1"], "Gateway")
    http, https = gateway["spec"]["servers"]
    assert http["tls"] == {"httpsRedirect": True} and http["port"]["number"] == 8080
    assert https["port"] == {
        "name": "https-8443-bookinfo-example-com",
        "number": 8443,
        "protocol": "HTTPS",
    }
    assert https["tls"] == {
        "credentialName": "bookinfo-example-com-tls",
        "minProtocolVersion": "TLSV1_2",
        "mode": "SIMPLE",
    }
    refused = report(outcome, "RouteTable", "reviews-admin")
    assert refused.state is State.WARNING
    assert refused.diagnostics[0].reason.name == "RouteTableNotAllowed"
    hosts = [o["spec"]["hosts"] for o in find(out["cluster1"], "VirtualService")]
    assert ["admin.example.com"] not in hosts


def test_header_manipulation_on_routes_and_on_route_destinations() -> None:
    outcome, out = rendered("header-manipulation")
    gateway_vs = one(out["cluster1"], "VirtualService", "istio-gateways")
    headers = gateway_vs["spec"]["http"][0]["headers"]
    assert headers["response"]["add"]["x-frame-options"] == "DENY"
    assert "cache-control" not in str(headers)
    assert report(outcome, "HeaderManipulationPolicy", "add-cache-headers").state is State.FAILED
    reviews = next(
        o
        for o in find(out["cluster2"], "VirtualService", "bookinfo-frontends")
        if o["spec"]["hosts"] == ["reviews.bookinfo-backends.svc.cluster.local"]
    )
    route = reviews["spec"]["http"][0]
    assert "headers" not in route
    assert all(
        d["headers"] == {"request": {"add": {"x-bookinfo-caller": "productpage"}}}
        for d in route["route"]
    )


def test_invalid_config_reports_each_problem_and_still_translates_the_rest() -> None:
    outcome, out = rendered("invalid-config")
    found = {(d.obj.name if d.obj else "", d.reason.name) for d in outcome.diagnostics}
    assert {
        ("ratings", "SchemaViolation"),
        ("reviews-global", "SchemaViolation"),
        ("reviews-canary", "InvalidValue"),
        ("catch-all", "InvalidValue"),
        ("ratings-timeout", "InvalidValue"),
        ("ratings-global", "InvalidValue"),
        ("Cluster_1", "InvalidClusterName"),
        ("productpage-delay", "DuplicateObject"),
        ("bookinfo-feature-flags", "UnknownKind"),
        ("productpage-cors", "UnsupportedKind"),
    } <= found
    assert outcome.failed
    for cluster in ("cluster1", "cluster2"):
        kinds = {o["kind"] for o in out[cluster]}
        assert kinds == {"VirtualService"}
        for vs in out[cluster]:
            route = vs["spec"]["http"][0]
            assert route["timeout"] == "15s" and "fault" not in route

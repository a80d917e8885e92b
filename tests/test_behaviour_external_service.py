"""What the ExternalService and trimProxyConfig goldens mean.

Each test renders a golden case (tests/golden/external-service,
tests/golden/trim-proxy-config), sometimes with a file added or changed, and checks the
mesh behaviour the case exists for (gloo-semantics.md 2.7, 3.4, 3.7, worked example 7), so
a blindly refreshed golden still fails. The last tests check that incremental translation
renders again what depends on a changed ExternalService or VirtualDestination.
"""

from __future__ import annotations

from typing import Any

from controller.sources.snapshots import read_snapshot_dir
from gitops import loading, pipeline, rendering
from gitops.reasons import Reason, State
from gitops.translate import translate
from gitops.translate.incremental import Session
from tests.support.golden_cases import (
    Objects,
    named,
    of_kind,
    render,
    rendered,
    repo_text,
    report,
    routes_to,
    tree_of,
)
from tests.test_golden import case_paths

EVERY_NAMESPACE = ["bookinfo-backends", "bookinfo-frontends", "gloo-mesh-addons", "istio-gateways"]


# -- ExternalService ----------------------------------------------------------------------


def test_an_external_https_api_gets_tls_origination_in_every_consuming_namespace() -> None:
    _, out = rendered("external-service")
    for objects in out.values():
        entries = [
            o
            for o in of_kind(objects, "ServiceEntry")
            if o["spec"]["hosts"] == ["api.payments.example.com"]
        ]
        assert sorted(o["metadata"]["namespace"] for o in entries) == EVERY_NAMESPACE
        for entry in entries:
            assert entry["metadata"]["name"].startswith("externalservice-payments-api-bo")
            assert entry["metadata"]["labels"]["gloo.solo.io/parent_kind"] == "ExternalService"
            spec = entry["spec"]
            assert spec["exportTo"] == ["."]
            assert spec["location"] == "MESH_EXTERNAL"
            assert spec["resolution"] == "DNS"
            # The application speaks HTTP; its proxy originates TLS.
            assert spec["ports"] == [{"name": "https", "number": 443, "protocol": "HTTP"}]
        rules = of_kind(objects, "DestinationRule")
        assert sorted(o["metadata"]["namespace"] for o in rules) == EVERY_NAMESPACE
        for rule in rules:
            assert rule["spec"]["host"] == "api.payments.example.com"
            assert rule["spec"]["trafficPolicy"]["portLevelSettings"] == [
                {
                    "port": {"number": 443},
                    "tls": {
                        "caCertificates": "/etc/ssl/certs/ca-certificates.crt",
                        "mode": "SIMPLE",
                        "sni": "api.payments.example.com",
                    },
                }
            ]


def test_an_addresses_only_service_passes_through_to_its_addresses() -> None:
    _, out = rendered("external-service")
    for objects in out.values():
        entries = [
            o for o in of_kind(objects, "ServiceEntry") if "legacy-db" in o["metadata"]["name"]
        ]
        # Not exported: only the bookinfo namespaces.
        assert sorted(o["metadata"]["namespace"] for o in entries) == [
            "bookinfo-backends",
            "bookinfo-frontends",
        ]
        spec = entries[0]["spec"]
        assert spec["addresses"] == ["10.20.30.0/24"]
        assert spec["resolution"] == "NONE"
        assert spec["hosts"] == ["legacy-db.bookinfo-backends.cluster1.externalservice.invalid"]
        assert spec["ports"] == [{"name": "tcp-5432", "number": 5432, "protocol": "TCP"}]


def test_a_route_forwards_to_the_external_service_host() -> None:
    outcome, out = rendered("external-service")
    for objects in out.values():
        assert routes_to(objects, "bookinfo-frontends") == [
            {"destination": {"host": "api.payments.example.com", "port": {"number": 443}}}
        ]
    assert report(outcome, "RouteTable", "payments").state is State.ACCEPTED
    assert report(outcome, "ExternalService", "payments-api").state is State.ACCEPTED


def test_external_service_destination_problems() -> None:
    route = repo_text("external-service", "route-table.yaml")
    cases = {
        "name: payments-api": ("name: no-such-api", Reason.DestinationNotFound),
        "number: 443": ("number: 8443", Reason.DestinationPortNotFound),
        "          number: 443\n": (
            "          number: 443\n        subset:\n          version: v1\n",
            Reason.SubsetOnVirtualDestination,
        ),
    }
    for old, (new, reason) in cases.items():
        outcome, out = render("external-service", {"route-table.yaml": route.replace(old, new)})
        table = report(outcome, "RouteTable", "payments")
        assert [d.reason for d in table.diagnostics] == [reason], old
        for objects in out.values():
            vs = next(o for o in of_kind(objects, "VirtualService"))
            assert vs["spec"]["http"][0]["directResponse"] == {"status": 500}


def test_an_unexported_external_service_is_not_a_destination_for_other_workspaces() -> None:
    route = repo_text("external-service", "route-table.yaml").replace(
        "name: payments-api", "name: legacy-db"
    )
    gateway_table = route.replace("namespace: bookinfo-frontends", "namespace: istio-gateways")
    outcome, _ = render("external-service", {"route-table.yaml": gateway_table})
    table = report(outcome, "RouteTable", "payments")
    assert [d.reason for d in table.diagnostics] == [Reason.DestinationNotFound]
    assert "not visible to workspace gateways" in table.diagnostics[0].message


def test_untranslated_external_service_fields_are_reported() -> None:
    services = repo_text("external-service", "external-services.yaml").replace(
        "  addresses:\n", "  selector:\n    db: legacy\n  addresses:\n"
    )
    outcome, _ = render("external-service", {"external-services.yaml": services})
    legacy = report(outcome, "ExternalService", "legacy-db")
    assert [(d.reason, d.field) for d in legacy.diagnostics] == [
        (Reason.UnsupportedField, "spec.selector")
    ]


# -- trimProxyConfig ----------------------------------------------------------------------

BOOKINFO_FQDNS = [
    "*/productpage.bookinfo-frontends.svc.cluster.local",
    "*/ratings.bookinfo-backends.svc.cluster.local",
    "*/reviews.bookinfo-backends.svc.cluster.local",
]


def productpage_sidecar(objects: Objects, cluster: str) -> dict[str, Any]:
    return named(
        objects,
        "Sidecar",
        "bookinfo-frontends",
        f"sidecar-productpage-v1-bookinfo-frontends-{cluster}-bookinfo",
    )


def test_ex7_every_workload_gets_a_sidecar_listing_what_its_workspace_sees() -> None:
    _, out = rendered("trim-proxy-config")
    for cluster, objects in out.items():
        sidecar = productpage_sidecar(objects, cluster)
        assert sidecar["spec"] == {
            "egress": [{"hosts": BOOKINFO_FQDNS}],
            "workloadSelector": {"labels": {"app": "productpage", "version": "v1"}},
        }
        labels = sidecar["metadata"]["labels"]
        assert (labels["gloo.solo.io/parent_group"], labels["gloo.solo.io/parent_kind"]) == (
            "apps",
            "Deployment",
        )
        assert labels["gloo.solo.io/parent_name"] == "productpage-v1"
        parents = sorted(o["metadata"]["labels"]["gloo.solo.io/parent_name"] for o in objects)
        expected = ["productpage-v1", "ratings-v1", "reviews-v1", "reviews-v2"]
        if cluster == "cluster2":
            expected.append("reviews-v3")
        assert parents == expected  # no Sidecar for the gateways workspace
        assert {o["kind"] for o in objects} == {"Sidecar"}


VIRTUAL_DESTINATION = """
apiVersion: networking.gloo.solo.io/v2
kind: VirtualDestination
metadata: {name: reviews, namespace: bookinfo-backends}
spec:
  hosts: [reviews.global]
  services: [{labels: {app: reviews}}]
  ports: [{number: 9080, protocol: HTTP}]
"""


def test_trimmed_proxies_list_visible_virtual_destination_and_external_hosts() -> None:
    external = repo_text("external-service", "external-services.yaml")
    _, out = render("trim-proxy-config", {"vd.yaml": VIRTUAL_DESTINATION, "es.yaml": external})
    for cluster, objects in out.items():
        hosts = productpage_sidecar(objects, cluster)["spec"]["egress"][0]["hosts"]
        assert hosts == sorted(
            [
                *BOOKINFO_FQDNS,
                "*/reviews.global",
                "*/api.payments.example.com",
                "*/legacy-db.bookinfo-backends.cluster1.externalservice.invalid",
            ]
        )


def test_trim_all_proxy_config_trims_too() -> None:
    settings = repo_text("trim-proxy-config", "workspaces.yaml").replace(
        "    serviceIsolation:\n      trimProxyConfig: true\n", "    trimAllProxyConfig: true\n"
    )
    _, out = render("trim-proxy-config", {"workspaces.yaml": settings})
    assert productpage_sidecar(out["cluster1"], "cluster1")["spec"]["egress"] == [
        {"hosts": BOOKINFO_FQDNS}
    ]
    off = settings.replace("trimAllProxyConfig: true", "trimAllProxyConfig: false")
    _, out = render("trim-proxy-config", {"workspaces.yaml": off})
    assert out["cluster1"] == []


def test_a_changed_virtual_destination_host_renders_the_sidecars_again() -> None:
    case = "trim-proxy-config"
    inputs = pipeline.load_inputs(read_snapshot_dir(case_paths(case)[1]))
    session = Session(loading.load(tree_of(case, {"vd.yaml": VIRTUAL_DESTINATION})), inputs)
    moved = VIRTUAL_DESTINATION.replace("reviews.global", "reviews.mesh")
    bundle = loading.load(tree_of(case, {"vd.yaml": moved}))
    delta = session.update(bundle, inputs)
    assert not delta.full
    fresh = translate(bundle, inputs)
    for cluster in session.clusters:
        assert rendering.dump_all(session.objects(cluster)) == rendering.dump_all(
            fresh.render(cluster).objects
        )
        hosts = productpage_sidecar(session.objects(cluster), cluster)["spec"]["egress"][0]["hosts"]
        assert "*/reviews.mesh" in hosts and "*/reviews.global" not in hosts


def test_a_changed_external_service_renders_the_routes_to_it_again() -> None:
    case = "external-service"
    inputs = pipeline.load_inputs(read_snapshot_dir(case_paths(case)[1]))
    session = Session(loading.load(tree_of(case, {})), inputs)
    services = repo_text(case, "external-services.yaml").replace(
        "  - api.payments.example.com\n", "  - api.pay.example.com\n"
    )
    bundle = loading.load(tree_of(case, {"external-services.yaml": services}))
    delta = session.update(bundle, inputs)
    assert not delta.full
    fresh = translate(bundle, inputs)
    for cluster in session.clusters:
        assert rendering.dump_all(session.objects(cluster)) == rendering.dump_all(
            fresh.render(cluster).objects
        )
        route = routes_to(session.objects(cluster), "bookinfo-frontends")
        assert route[0]["destination"]["host"] == "api.pay.example.com"

"""What the JWT golden cases mean, asserted directly (a blindly refreshed golden still fails).

Cases: `jwt-gateway` (a gateway table, one policy on two of its three routes),
`jwt-conflict` (two policies on one sidecar route), `jwt-chunking` (a provider config too
big for one EnvoyFilter), `jwt-unsegmented` (segmentation turned off in the Helm values).
Plus the pieces those rest on: the Helm flag, segment planning, and route names that
match the VirtualServices'.
"""

from __future__ import annotations

import json
from collections import Counter
from functools import cache
from types import SimpleNamespace
from typing import Any

import pytest

from controller.sources.directory import read_directory
from controller.sources.snapshots import read_snapshot_dir
from gitops import loading, pipeline
from gitops.reasons import Reason, State
from gitops.translate import ClusterOutput, jwt, segments, translate
from gitops.translate.outputs import MAX_OBJECT_BYTES
from gitops.tree import Tree
from tests.test_golden import CASES, case_paths, run_case

Objects = list[dict[str, Any]]
JWT = "envoy.filters.http.jwt_authn"
GATEWAY_LABELS = {"app": "istio-ingressgateway", "istio": "ingressgateway"}


@cache
def rendered(case: str) -> tuple[pipeline.Outcome, dict[str, Objects]]:
    return run_case(case)


def run_with(case: str, files: dict[str, str]) -> tuple[pipeline.Outcome, dict[str, Objects]]:
    """A golden case with some repository files replaced or added."""
    repo, snapshot = case_paths(case)
    tree = read_directory(repo)
    entries = {**tree.entries, **{path: text.encode() for path, text in files.items()}}
    outputs: dict[str, Objects] = {}

    def sink(output: ClusterOutput) -> None:
        outputs[output.cluster] = output.objects

    outcome = pipeline.run(
        Tree(entries, tree.revision, tree.origin), read_snapshot_dir(snapshot), sink
    )
    return outcome, outputs


def filters(objects: Objects, namespace: str | None = None) -> Objects:
    return [
        o
        for o in objects
        if o["kind"] == "EnvoyFilter" and namespace in (None, o["metadata"]["namespace"])
    ]


def patches(objects: Objects, apply_to: str, operation: str | None = None) -> list[dict[str, Any]]:
    return [
        p
        for o in objects
        for p in o["spec"]["configPatches"]
        if p["applyTo"] == apply_to and operation in (None, p["patch"]["operation"])
    ]


def report(outcome: pipeline.Outcome, name: str) -> Any:
    return next(r for r in outcome.reports if r.ref.kind == "JWTPolicy" and r.ref.name == name)


def requirements_named(route_patches: list[dict[str, Any]]) -> set[str]:
    return {
        p["patch"]["value"]["typed_per_filter_config"][JWT]["requirement_name"]
        for p in route_patches
    }


# -- jwt-gateway ------------------------------------------------------------------------------


def test_gateway_jwt_filter_goes_before_the_router_on_the_gateway_server_port() -> None:
    _, out = rendered("jwt-gateway")
    assert out["cluster2"] == []  # the VirtualGateway selects cluster1 only
    found = filters(out["cluster1"], "istio-gateways")
    assert all(f["spec"]["workloadSelector"] == {"labels": GATEWAY_LABELS} for f in found)
    (insert,) = patches(found, "HTTP_FILTER", "INSERT_BEFORE")
    # Listener port 80 is served on the gateway Service's targetPort 8080.
    assert insert["match"] == {
        "context": "GATEWAY",
        "listener": {
            "filterChain": {
                "filter": {
                    "name": "envoy.filters.network.http_connection_manager",
                    "subFilter": {"name": "envoy.filters.http.router"},
                }
            },
            "portNumber": 8080,
        },
    }
    typed = insert["patch"]["value"]["typed_config"]
    assert insert["patch"]["value"]["name"] == JWT
    provider = typed["providers"]["productpage-jwt.bookinfo-frontends/idp"]
    assert provider["issuer"] == "https://idp.example.com"
    assert provider["audiences"] == ["productpage"]
    assert provider["remote_jwks"] == {
        "cache_duration": "600s",
        "http_uri": {
            "cluster": "outbound|443||idp.example.com",
            "timeout": "2s",
            "uri": "https://idp.example.com/.well-known/jwks.json",
        },
    }
    assert provider["claim_to_headers"] == [
        {"claim_name": "sub", "header_name": "x-user-id"},
        {"claim_name": "email", "header_name": "x-user-email"},
    ]
    assert provider["from_headers"] == [{"name": "Authorization", "value_prefix": "Bearer "}]
    assert typed["requirement_map"] == {
        "productpage-jwt.bookinfo-frontends": {
            "provider_name": "productpage-jwt.bookinfo-frontends/idp"
        }
    }


def test_gateway_routes_with_the_policy_name_its_requirement_and_the_others_do_not() -> None:
    outcome, out = rendered("jwt-gateway")
    found = filters(out["cluster1"])
    routes = patches(found, "HTTP_ROUTE", "MERGE")
    vs = next(o for o in out["cluster1"] if o["kind"] == "VirtualService")
    served = {r["name"] for r in vs["spec"]["http"]}
    names = sorted(p["match"]["routeConfiguration"]["vhost"]["route"]["name"] for p in routes)
    # Two of the three routes carry `jwt: "true"`; the route names are the VirtualService's.
    assert names == ["api-productpage", "productpage-productpage"]
    assert set(names) <= served and "static-productpage" in served
    assert requirements_named(routes) == {"productpage-jwt.bookinfo-frontends"}
    assert report(outcome, "productpage-jwt").selected == 2
    assert report(outcome, "productpage-jwt").state == State.ACCEPTED


def test_gateway_segments_one_envoyfilter_per_matcher_ordered_by_priority() -> None:
    _, out = rendered("jwt-gateway")
    found = filters(out["cluster1"])
    assert all(len(f["spec"]["configPatches"]) == 1 for f in found)
    assert len(found) == 3  # the filter insert, and one per protected route
    by_kind = {f["spec"]["configPatches"][0]["applyTo"]: f for f in found}
    insert = by_kind["HTTP_FILTER"]
    assert insert["metadata"]["name"].startswith("8080-http-filter-envoy-filters-http-jwt-authn-")
    route_priorities = {
        f["spec"]["priority"]
        for f in found
        if f["spec"]["configPatches"][0]["applyTo"] != "HTTP_FILTER"
    }
    assert route_priorities and insert["spec"]["priority"] < min(route_priorities)
    labels = insert["metadata"]["labels"]
    assert labels["gloo.solo.io/parent_kind"] == "JWTPolicy"
    assert labels["gloo.solo.io/parent_name"] == "productpage-jwt"
    assert insert["apiVersion"] == "networking.istio.io/v1alpha3"


# -- jwt-conflict -----------------------------------------------------------------------------


def test_conflict_the_later_policy_fails_with_glooss_message_and_applies_nowhere() -> None:
    outcome, out = rendered("jwt-conflict")
    loser = report(outcome, "ratings-jwt-2")
    assert loser.state == State.FAILED
    assert [d.message for d in loser.diagnostics if d.reason == Reason.PolicyConflict] == [
        "JWTPolicy conflicts existing policy applied to route. Skipping applying "
        "ratings-jwt-2.bookinfo-backends"
    ]
    assert report(outcome, "ratings-jwt").state == State.ACCEPTED
    everything = json.dumps(out)
    assert "ratings-jwt-2" not in everything and "static.example.com" not in everything


def test_conflict_sidecar_namespaces_get_client_side_filters_with_the_older_policy() -> None:
    _, out = rendered("jwt-conflict")
    for cluster in ("cluster1", "cluster2"):
        for ns in ("bookinfo-backends", "bookinfo-frontends"):
            found = filters(out[cluster], ns)
            assert found and all("workloadSelector" not in f["spec"] for f in found)
            (insert,) = patches(found, "HTTP_FILTER", "INSERT_BEFORE")
            assert insert["match"]["context"] == "SIDECAR_OUTBOUND"
            assert "portNumber" not in insert["match"]["listener"]  # every outbound listener
            typed = insert["patch"]["value"]["typed_config"]
            keycloak = typed["providers"]["ratings-jwt.bookinfo-backends/keycloak"]
            assert keycloak["remote_jwks"]["http_uri"]["cluster"] == (
                "outbound|8080||keycloak.gloo-mesh-addons.svc.cluster.local"
            )
            assert keycloak["forward"] is True
            assert typed["requirement_map"]["ratings-jwt.bookinfo-backends"] == {
                "requires_any": {
                    "requirements": [
                        {"provider_name": "ratings-jwt.bookinfo-backends/keycloak"},
                        {"provider_name": "ratings-jwt.bookinfo-backends/partner"},
                        {"allow_missing": {}},
                    ]
                }
            }
            routes = patches(found, "HTTP_ROUTE")
            assert [r["match"]["routeConfiguration"]["vhost"]["route"]["name"] for r in routes] == [
                "ratings-ratings"
            ]
            assert requirements_named(routes) == {"ratings-jwt.bookinfo-backends"}
    # Gateways are untouched: the table is for sidecars only.
    assert filters(out["cluster1"], "istio-gateways") == []


# -- jwt-chunking -----------------------------------------------------------------------------


def test_chunking_keeps_every_object_under_1mib_and_every_entry_exactly_once() -> None:
    outcome, out = rendered("jwt-chunking")
    found = filters(out["cluster1"])
    assert all(segments.size(o) < MAX_OBJECT_BYTES for objects in out.values() for o in objects)
    merges = [f for f in found if f["metadata"]["name"].startswith("8080-http-filter-merge-")]
    # The spill-over is one matcher group, too big for one EnvoyFilter: numbered chunks.
    assert sorted(f["metadata"]["name"][-2:] for f in merges) == ["-0", "-1"]
    assert len({f["metadata"]["name"][:-2] for f in merges}) == 1
    every = [json.dumps(p, sort_keys=True) for f in found for p in f["spec"]["configPatches"]]
    assert len(every) == len(set(every)), "a patch is emitted twice"
    providers: Counter[str] = Counter()
    requirements: Counter[str] = Counter()
    for p in patches(found, "HTTP_FILTER"):
        typed = p["patch"]["value"]["typed_config"]
        providers.update(list(typed.get("providers", {})))
        requirements.update(list(typed.get("requirement_map", {})))
    expected = {f"partners-jwt.bookinfo-frontends/partner-{i:02d}" for i in range(19)}
    assert set(providers) == expected and set(providers.values()) == {1}
    assert requirements == {"partners-jwt.bookinfo-frontends": 1}
    spilled = patches(found, "HTTP_FILTER", "MERGE")
    assert spilled and all(
        p["match"]["listener"]["filterChain"]["filter"]["subFilter"]["name"] == JWT for p in spilled
    )
    insert = next(
        f
        for f in found
        if f not in merges and f["spec"]["configPatches"][0]["applyTo"] == "HTTP_FILTER"
    )
    routes = [f for f in found if f["spec"]["configPatches"][0]["applyTo"] == "HTTP_ROUTE"]
    assert len(routes) == 2
    assert (
        insert["spec"]["priority"] < merges[0]["spec"]["priority"] < routes[0]["spec"]["priority"]
    )
    assert report(outcome, "partners-jwt").state == State.ACCEPTED


# -- jwt-unsegmented --------------------------------------------------------------------------


def test_unsegmented_one_envoyfilter_per_proxy_with_the_patches_in_order() -> None:
    _, out = rendered("jwt-unsegmented")
    (gateway,) = filters(out["cluster1"], "istio-gateways")
    ops = [(p["applyTo"], p["patch"]["operation"]) for p in gateway["spec"]["configPatches"]]
    assert ops == [
        ("HTTP_FILTER", "INSERT_BEFORE"),
        ("HTTP_ROUTE", "MERGE"),
        ("HTTP_ROUTE", "MERGE"),
    ]


def test_unsegmented_oversize_envoyfilter_is_not_emitted_and_its_policy_is_told() -> None:
    outcome, out = rendered("jwt-unsegmented")
    for cluster in ("cluster1", "cluster2"):
        for ns in ("bookinfo-backends", "bookinfo-frontends"):
            assert filters(out[cluster], ns) == []
    partners = report(outcome, "partners-jwt")
    too_large = [d for d in partners.diagnostics if d.reason == Reason.ObjectTooLarge]
    assert {(d.cluster, d.message.split()[1].split("/")[0]) for d in too_large} == {
        (c, ns)
        for c in ("cluster1", "cluster2")
        for ns in ("bookinfo-backends", "bookinfo-frontends")
    }
    assert partners.state == State.INVALID
    assert report(outcome, "productpage-jwt").state == State.ACCEPTED


# -- fail closed --------------------------------------------------------------------------------

_CLAIMS_POLICY = """\
apiVersion: security.policy.gloo.solo.io/v2
kind: JWTPolicy
metadata: {name: productpage-jwt, namespace: bookinfo-frontends}
spec:
  applyToRoutes: [{route: {labels: {jwt: "true"}}}]
  config:
    providers:
      idp: {issuer: https://idp.example.com, remote: {url: https://idp.example.com/jwks}}
    claims: [{key: role, values: [admin]}]
"""


def test_a_claim_check_that_cannot_be_enforced_closes_the_routes_instead() -> None:
    outcome, out = run_with("jwt-gateway", {"jwt-policy.yaml": _CLAIMS_POLICY})
    policy = report(outcome, "productpage-jwt")
    assert policy.state == State.FAILED
    assert [d.reason for d in policy.diagnostics] == [Reason.UnenforceablePolicy]
    found = filters(out["cluster1"])
    (insert,) = patches(found, "HTTP_FILTER", "INSERT_BEFORE")
    defined = set(insert["patch"]["value"]["typed_config"].get("requirement_map", {}))
    named = requirements_named(patches(found, "HTTP_ROUTE"))
    # The routes still name the policy's requirement; it is not defined, so Envoy answers 403.
    assert named == {"productpage-jwt.bookinfo-frontends"} and not named & defined


# -- pieces -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("helm", "segmented"),
    [
        (SimpleNamespace(mgmt_plane={}), True),
        (
            SimpleNamespace(
                mgmt_plane={
                    "glooMgmtServer": {"extraEnvs": {segments.SEGMENT_ENV: {"value": "false"}}}
                }
            ),
            False,
        ),
        (
            SimpleNamespace(
                mgmt_plane={
                    "glooMgmtServer": {"extraEnvs": {segments.SEGMENT_ENV: {"value": "true"}}}
                }
            ),
            True,
        ),
        (
            SimpleNamespace(
                mgmt_plane={"glooMgmtServer": {"extraEnvs": {segments.SEGMENT_ENV: "False"}}}
            ),
            False,
        ),
        (SimpleNamespace(mgmt=None, mgmt_plane={}), True),
        (
            SimpleNamespace(
                mgmt=SimpleNamespace(
                    gloo_mgmt_server=SimpleNamespace(
                        extra_envs={segments.SEGMENT_ENV: SimpleNamespace(value="0")}
                    )
                )
            ),
            False,
        ),
        (
            SimpleNamespace(
                mgmt=SimpleNamespace(
                    gloo_mgmt_server=SimpleNamespace(
                        extra_envs={segments.SEGMENT_ENV: SimpleNamespace(value=None)}
                    )
                )
            ),
            True,
        ),
    ],
)
def test_segmentation_flag_reads_typed_or_raw_helm_values(helm: object, segmented: bool) -> None:
    assert segments.segment_by_matcher(helm) is segmented


def _patch(match: str, operation: str, size: int) -> segments.Patch:
    apply_to = "HTTP_ROUTE" if operation == "MERGE" else "HTTP_FILTER"
    value = {"name": "f", "blob": "x" * size}
    config = {
        "applyTo": apply_to,
        "match": {"k": match},
        "patch": {"operation": operation, "value": value},
    }
    return segments.Patch(config, (), (), "8080", match)


def test_split_groups_by_matcher_numbers_chunks_and_orders_priorities() -> None:
    room = 2500  # what each EnvoyFilter may hold besides its envelope, in this test

    def envelope(_: object) -> int:
        return MAX_OBJECT_BYTES - segments.MARGIN - room

    plan = [_patch("a", "INSERT_BEFORE", 100), *(_patch("r", "MERGE", 1000) for _ in range(5))]
    found = segments.split("proxy", plan, True, envelope)
    insert, *chunks = found
    assert insert.patches == (plan[0],) and insert.priority == segments.INSERT_PRIORITY
    assert [len(c.patches) for c in chunks] == [2, 2, 1]
    assert [c.name[-2:] for c in chunks] == ["-0", "-1", "-2"]
    assert [p for c in chunks for p in c.patches] == plan[1:]
    assert {c.priority for c in chunks} == {segments.ROUTE_PRIORITY}
    # Off: one segment with everything, in order, at the lowest priority.
    (single,) = segments.split("proxy", plan, False, envelope)
    assert single.patches == tuple(plan) and single.priority == segments.INSERT_PRIORITY
    # Another proxy never gets the same names.
    other = segments.split("other", plan, True, envelope)
    assert not {s.name for s in found} & {s.name for s in other}


@pytest.mark.parametrize("case", CASES)
def test_route_names_used_for_jwt_are_the_virtualservice_route_names(case: str) -> None:
    repo, snapshot = case_paths(case)
    bundle = loading.load(read_directory(repo))
    translation = translate(bundle, pipeline.load_inputs(read_snapshot_dir(snapshot)))
    for cluster in translation.clusters:
        objects = translation.render(cluster).objects
        for table, flat in translation.virtual_services.roots:
            for vs in objects:
                labels = vs["metadata"]["labels"]
                if vs["kind"] != "VirtualService" or (
                    labels["gloo.solo.io/parent_name"],
                    labels["gloo.solo.io/parent_namespace"],
                ) != (table.name, table.namespace):
                    continue
                assert [r["name"] for r in vs["spec"]["http"]] == [
                    name for _, name in jwt.vs_route_names(flat)
                ]


def test_proxy_producers_depend_on_policies_tables_gateways_and_inputs() -> None:
    repo, snapshot = case_paths("jwt-gateway")
    bundle = loading.load(read_directory(repo))
    translation = translate(bundle, pipeline.load_inputs(read_snapshot_dir(snapshot)))
    (producer,) = [p for p in translation.producers() if p.key[0] == "EnvoyFilter"]
    assert producer.key == (
        "EnvoyFilter",
        "istio-gateways",
        "gateway:app=istio-ingressgateway,istio=ingressgateway",
    )
    assert {
        ("ref", "JWTPolicy", "bookinfo-frontends", "productpage-jwt"),
        ("kind", "JWTPolicy", "bookinfo"),
        ("ref", "RouteTable", "bookinfo-frontends", "productpage"),
        ("kind", "RouteTable", "bookinfo"),
        ("ref", "VirtualGateway", "istio-gateways", "north-south-gw"),
        ("kind", "VirtualGateway", "gateways"),
        ("inputs",),
    } <= producer.deps


_DELEGATING_TABLES = """\
apiVersion: networking.gloo.solo.io/v2
kind: RouteTable
metadata: {name: productpage, namespace: bookinfo-frontends, labels: {expose: "true"}}
spec:
  hosts: ['*']
  virtualGateways: [{name: north-south-gw, namespace: istio-gateways, cluster: cluster1}]
  http:
  - name: v1
    matchers: [{uri: {prefix: /v1}}]
    delegate: {routeTables: [{name: api, namespace: bookinfo-frontends}]}
  - name: v2
    matchers: [{uri: {prefix: /v2}}]
    delegate: {routeTables: [{name: api, namespace: bookinfo-frontends}]}
---
apiVersion: networking.gloo.solo.io/v2
kind: RouteTable
metadata: {name: api, namespace: bookinfo-frontends}
spec:
  http:
  - name: products
    labels: {jwt: "true"}
    matchers: [{uri: {prefix: /}}]
    forwardTo:
      destinations:
      - {ref: {name: productpage, namespace: bookinfo-frontends}, port: {number: 9080}}
"""


def test_a_child_delegated_twice_is_guarded_under_both_of_its_names() -> None:
    outcome, out = run_with("jwt-gateway", {"route-table.yaml": _DELEGATING_TABLES})
    vs = next(o for o in out["cluster1"] if o["kind"] == "VirtualService")
    served = [r["name"] for r in vs["spec"]["http"]]
    assert served == ["products-api", "products-api-2"]
    routes = patches(filters(out["cluster1"]), "HTTP_ROUTE")
    assert (
        sorted(r["match"]["routeConfiguration"]["vhost"]["route"]["name"] for r in routes) == served
    )
    # One route of the child table, delegated twice: one selected route.
    assert report(outcome, "productpage-jwt").selected == 1


_EDGE_POLICY = """\
apiVersion: security.policy.gloo.solo.io/v2
kind: JWTPolicy
metadata: {name: productpage-jwt, namespace: bookinfo-frontends}
spec:
  applyToRoutes: [{route: {labels: {jwt: "true"}}}]
  applyToDestinations: [{selector: {labels: {app: productpage}}}]
  config:
    phase: {preAuthz: {priority: 1}}
    providers:
      by-service:
        remote:
          url: http://keycloak.gloo-mesh-addons:8080/certs
          destinationRef: {ref: {name: keycloak, namespace: gloo-mesh-addons}, port: {number: 8080}}
      by-vd:
        remote:
          url: https://idp.example.com/certs
          destinationRef: {kind: VIRTUAL_DESTINATION, ref: {name: idp}}
        claimsToHeaders: [{claim: sub, header: x-sub, append: true}]
      from-secret:
        local: {secretRef: {objectRef: {name: jwks}, key: jwks.json}}
"""


def test_what_cannot_be_translated_is_reported_and_jwks_clusters_fall_back_to_the_url() -> None:
    outcome, out = run_with("jwt-gateway", {"jwt-policy.yaml": _EDGE_POLICY})
    found = {(d.reason, d.field) for d in report(outcome, "productpage-jwt").diagnostics}
    base = "spec.config.providers"
    assert found == {
        (Reason.UnsupportedField, "spec.applyToDestinations"),
        (Reason.UnsupportedField, "spec.config.phase"),
        (Reason.UnsupportedField, f"{base}.by-vd.claimsToHeaders[0].append"),
        (Reason.UnenforceablePolicy, f"{base}.from-secret.local.secretRef"),
        # ex1's clusters run no Keycloak, and there is no VirtualDestination idp.
        (Reason.DestinationNotInCluster, f"{base}.by-service.remote.destinationRef"),
        (Reason.DestinationNotFound, f"{base}.by-vd.remote.destinationRef"),
    }
    (insert,) = patches(filters(out["cluster1"]), "HTTP_FILTER", "INSERT_BEFORE")
    providers = insert["patch"]["value"]["typed_config"]["providers"]
    clusters = {
        k.split("/")[1]: v["remote_jwks"]["http_uri"]["cluster"] for k, v in providers.items()
    }
    # The Service is named even where it is missing (the fetch fails: tokens are refused);
    # the unknown VirtualDestination falls back to the URL's host and port.
    assert clusters == {
        "by-service": "outbound|8080||keycloak.gloo-mesh-addons.svc.cluster.local",
        "by-vd": "outbound|443||idp.example.com",
    }
    # applyToRoutes is set, so routes are still selected next to applyToDestinations.
    assert report(outcome, "productpage-jwt").selected == 2

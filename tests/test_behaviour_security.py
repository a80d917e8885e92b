"""What the security golden cases mean (AccessPolicy, service isolation), asserted directly,
plus the edge cases that would make goldens unreadable: selectors matching nothing, named
target ports, Services without selectors, workload policies taking over isolation, size
limits, trust domains and incremental re-rendering.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from controller.sources.directory import read_directory
from controller.sources.snapshots import read_snapshot_dir
from gitops import loading, pipeline
from gitops.discovery import load_cluster
from gitops.reasons import Reason, State
from gitops.translate import ClusterOutput, translate
from gitops.translate.authz import MAX_ISTIO_ITEMS, Principals, oversize
from gitops.translate.incremental import Session
from gitops.tree import Tree
from tests.test_golden import GOLDEN, run_case

Objects = list[dict[str, Any]]
SECURITY_CASES = (
    "ex7-service-isolation",
    "ex8-access-policy-destinations",
    "access-policy-workloads",
    "isolation-with-access-policy",
)
BOOKINFO_ACCOUNTS = [
    f"{c}/ns/{ns}/sa/{sa}"
    for c in ("cluster1", "cluster2")
    for ns, sa in (
        ("bookinfo-backends", "bookinfo-ratings"),
        ("bookinfo-backends", "bookinfo-reviews"),
        ("bookinfo-backends", "default"),
        ("bookinfo-frontends", "bookinfo-productpage"),
        ("bookinfo-frontends", "default"),
    )
]
GATEWAYS_ACCOUNTS = [
    f"{c}/ns/{ns}/sa/{sa}"
    for c in ("cluster1", "cluster2")
    for ns, sa in (
        ("gloo-mesh-addons", "default"),
        ("istio-gateways", "default"),
        ("istio-gateways", "istio-eastwestgateway"),
        ("istio-gateways", "istio-ingressgateway"),
    )
]
PRODUCTPAGE = [
    f"{c}/ns/bookinfo-frontends/sa/bookinfo-productpage" for c in ("cluster1", "cluster2")
]


@cache
def rendered(case: str) -> tuple[pipeline.Outcome, dict[str, Objects]]:
    return run_case(case)


def named(objects: Objects, kind: str, name: str) -> dict[str, Any] | None:
    return next((o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name), None)


def of_kind(objects: Objects, kind: str) -> Objects:
    return [o for o in objects if o["kind"] == kind]


def principals(policy: dict[str, Any]) -> list[list[str]]:
    return [s["source"].get("principals", []) for s in policy["spec"]["rules"][0]["from"]]


def render(
    case: str, extra: dict[str, str], snapshot_extra: dict[str, dict[str, str]] | None = None
) -> tuple[pipeline.Outcome, dict[str, Objects]]:
    """Render a golden case with extra (or replaced) repository and snapshot files."""
    folder = GOLDEN / case
    base = read_directory(folder / "repo")
    tree = Tree({**base.entries, **{k: v.encode() for k, v in extra.items()}})
    snapshots = read_snapshot_dir(folder / "snapshot")
    for cluster, files in (snapshot_extra or {}).items():
        entries = {**snapshots[cluster].entries, **{k: v.encode() for k, v in files.items()}}
        snapshots[cluster] = Tree(entries)
    outputs: dict[str, Objects] = {}

    def sink(output: ClusterOutput) -> None:
        outputs[output.cluster] = output.objects

    return pipeline.run(tree, snapshots, sink), outputs


def reasons_of(outcome: pipeline.Outcome, kind: str, name: str) -> list[Reason]:
    found = next(r for r in outcome.reports if r.ref.kind == kind and r.ref.name == name)
    return [d.reason for d in found.diagnostics]


# -- the worked examples ------------------------------------------------------------------


def test_ex8_reviews_in_each_cluster_admits_only_productpages_account_with_get() -> None:
    _, out = rendered("ex8-access-policy-destinations")
    for cluster in ("cluster1", "cluster2"):
        (policy,) = of_kind(out[cluster], "AuthorizationPolicy")
        meta = policy["metadata"]
        assert meta["name"].startswith("accesspolicy-reviews-9080-allow-")
        assert meta["namespace"] == "bookinfo-backends"
        assert meta["labels"]["gloo.solo.io/parent_kind"] == "Service"
        assert meta["labels"]["gloo.solo.io/parent_name"] == "reviews"
        assert meta["labels"]["gloo.solo.io/parent_cluster"] == cluster
        spec = policy["spec"]
        assert spec["action"] == "ALLOW"
        assert spec["selector"] == {"matchLabels": {"app": "reviews"}}
        (rule,) = spec["rules"]
        assert principals(policy) == [PRODUCTPAGE]
        assert rule["to"] == [{"operation": {"methods": ["GET"], "ports": ["9080"]}}]
        assert of_kind(out[cluster], "PeerAuthentication") == []


def test_ex7_isolation_admits_the_workspace_and_the_workspaces_importing_the_service() -> None:
    outcome, out = rendered("ex7-service-isolation")
    assert not outcome.failed
    for cluster in ("cluster1", "cluster2"):
        objects = out[cluster]
        productpage = named(objects, "AuthorizationPolicy", "settings-productpage-9080-bookinfo")
        assert productpage is not None
        assert productpage["spec"]["selector"] == {"matchLabels": {"app": "productpage"}}
        assert principals(productpage) == [BOOKINFO_ACCOUNTS, GATEWAYS_ACCOUNTS]
        assert productpage["spec"]["rules"][0]["to"] == [{"operation": {"ports": ["9080"]}}]
        reviews = named(objects, "AuthorizationPolicy", "settings-reviews-9080-bookinfo")
        assert reviews is not None and principals(reviews) == [BOOKINFO_ACCOUNTS, GATEWAYS_ACCOUNTS]
        # ratings is not exported to gateways: the workspace's own accounts only.
        ratings = named(objects, "AuthorizationPolicy", "settings-ratings-9080-bookinfo")
        assert ratings is not None and principals(ratings) == [BOOKINFO_ACCOUNTS]
        assert len(of_kind(objects, "AuthorizationPolicy")) == 3


def test_isolation_peer_authentication_is_strict_on_the_target_port() -> None:
    for case in ("ex7-service-isolation", "isolation-with-access-policy"):
        _, out = rendered(case)
        for objects in out.values():
            settings = [
                o
                for o in of_kind(objects, "PeerAuthentication")
                if o["metadata"]["name"].startswith("settings-")
            ]
            assert len(settings) == 3
            for pa in settings:
                assert pa["spec"]["portLevelMtls"] == {"9080": {"mode": "STRICT"}}
                assert pa["spec"]["selector"]["matchLabels"]


def test_no_source_is_empty_and_only_an_explicit_lockdown_has_no_rules() -> None:
    without_rules = []
    for case in SECURITY_CASES:
        _, out = rendered(case)
        for objects in out.values():
            for policy in of_kind(objects, "AuthorizationPolicy"):
                assert policy["spec"]["action"] == "ALLOW"
                rules = policy["spec"].get("rules", [])
                if not rules:
                    without_rules.append(policy["metadata"]["labels"])
                for rule in rules:
                    assert rule, "an empty rule allows every request"
                    for item in rule.get("from", []):
                        assert item["source"], "an empty source allows every client"
    # ratings-lockdown's `authzList: [{}]` asks for "allow nothing", in both clusters.
    assert [(labels["relay.solo.io/cluster"]) for labels in without_rules] == [
        "cluster1",
        "cluster2",
    ]


def test_an_access_policy_takes_over_the_isolation_allow_list_of_its_port() -> None:
    _, out = rendered("isolation-with-access-policy")
    for objects in out.values():
        assert named(objects, "AuthorizationPolicy", "settings-reviews-9080-bookinfo") is None
        assert named(objects, "PeerAuthentication", "settings-reviews-9080-bookinfo") is not None
        productpage = named(objects, "AuthorizationPolicy", "settings-productpage-9080-bookinfo")
        assert productpage is not None
        assert principals(productpage) == [BOOKINFO_ACCOUNTS, GATEWAYS_ACCOUNTS]
        (taken,) = [
            o
            for o in of_kind(objects, "AuthorizationPolicy")
            if o["metadata"]["name"].startswith("accesspolicy-reviews-9080-")
        ]
        assert principals(taken) == [PRODUCTPAGE]
        # The policy asks for PERMISSIVE; service isolation makes it STRICT.
        pa = named(objects, "PeerAuthentication", taken["metadata"]["name"])
        assert pa is not None and pa["spec"]["portLevelMtls"] == {"9080": {"mode": "STRICT"}}


def test_workload_policies_group_by_namespace_and_split_off_dry_run_entries() -> None:
    outcome, out = rendered("access-policy-workloads")
    assert reasons_of(outcome, "AccessPolicy", "reviews-callers") == [
        Reason.NothingSelected,
        Reason.NothingSelected,
    ]
    for objects in out.values():
        policies = [
            o
            for o in of_kind(objects, "AuthorizationPolicy")
            if o["metadata"]["name"].startswith("accesspolicy-reviews-callers-")
        ]
        assert all(
            p["metadata"]["labels"]["gloo.solo.io/parent_kind"] == "Namespace" for p in policies
        )
        dry = [
            p for p in policies if p["metadata"]["annotations"].get("istio.io/dry-run") == "true"
        ]
        enforced = [p for p in policies if p not in dry]
        assert len(dry) == len(enforced) == 2
        for p in dry:
            assert p["spec"]["rules"] == [
                {
                    "from": [{"source": {"remoteIpBlocks": ["203.0.113.0/24"]}}],
                    "to": [{"operation": {"methods": ["POST"]}}],
                }
            ]
        for p in enforced:
            (rule,) = p["spec"]["rules"]  # the DELETE entry matched nobody: dropped
            assert [s["source"] for s in rule["from"]] == [
                {"ipBlocks": ["10.0.0.0/8"], "principals": PRODUCTPAGE},
                {"ipBlocks": ["10.0.0.0/8"], "requestPrincipals": ["https://idp.example.com/*"]},
                {
                    "ipBlocks": ["10.0.0.0/8"],
                    "principals": ["cluster2/ns/bookinfo-backends/sa/reviews-canary"],
                },
            ]
            assert "ports" not in rule["to"][0]["operation"]
            assert [w["key"] for w in rule["when"]] == [
                "request.headers[user-agent]",
                "request.headers[x-canary]",
            ]
        by_ns = {p["metadata"]["namespace"]: p["spec"] for p in enforced}
        assert by_ns["bookinfo-backends"]["selector"] == {"matchLabels": {"app": "reviews"}}
        assert "selector" not in by_ns["bookinfo-frontends"]  # namespace-wide
        for pa in of_kind(objects, "PeerAuthentication"):
            assert pa["spec"]["mtls"] == {"mode": "PERMISSIVE"}
            assert named(objects, "AuthorizationPolicy", pa["metadata"]["name"]) in enforced


# -- edge cases ----------------------------------------------------------------------------

_ONLY_GHOSTS = """
apiVersion: security.policy.gloo.solo.io/v2
kind: AccessPolicy
metadata: {name: ghosts, namespace: bookinfo-backends}
spec:
  applyToDestinations: [{selector: {name: ratings}}]
  config:
    authzList:
    - allowedClients: [{serviceAccountSelector: {name: ghost}}]
    - allowedClients: [{serviceAccountSelector: {labels: {account: ratings}}}]
    - allowedClients: [{externalWorkloadSelector: {name: vm}}]
"""


def test_a_policy_whose_clients_all_match_nothing_writes_no_authorization_policy() -> None:
    outcome, out = render("ex8-access-policy-destinations", {"ghosts.yaml": _ONLY_GHOSTS})
    for objects in out.values():
        names = [o["metadata"]["name"] for o in of_kind(objects, "AuthorizationPolicy")]
        assert not any(n.startswith("accesspolicy-ratings-") for n in names)
    found = reasons_of(outcome, "AccessPolicy", "ghosts")
    # Three dropped entries; labels and external workloads are also named as unsupported.
    assert found.count(Reason.NothingSelected) == 3
    assert found.count(Reason.UnsupportedField) == 2


def test_a_named_target_port_falls_back_to_the_service_port_with_a_warning() -> None:
    svc = """
apiVersion: v1
kind: Service
metadata: {name: details, namespace: bookinfo-backends, labels: {app: details}}
spec:
  selector: {app: details}
  ports: [{name: http, port: 9080, targetPort: http-web}]
"""
    policy = """
apiVersion: security.policy.gloo.solo.io/v2
kind: AccessPolicy
metadata: {name: details, namespace: bookinfo-backends}
spec:
  applyToDestinations: [{selector: {name: details}}]
  config: {authzList: [{allowedMethods: [GET]}]}
"""
    outcome, out = render(
        "ex8-access-policy-destinations",
        {"details.yaml": policy},
        {"cluster1": {"bookinfo-backends/details.yaml": svc}},
    )
    (ap,) = [
        o
        for o in of_kind(out["cluster1"], "AuthorizationPolicy")
        if o["metadata"]["name"].startswith("accesspolicy-details-")
    ]
    assert ap["spec"]["rules"] == [{"to": [{"operation": {"methods": ["GET"], "ports": ["9080"]}}]}]
    diagnostics = [d for d in outcome.diagnostics if d.obj is not None and d.obj.name == "details"]
    assert [(d.reason, d.cluster) for d in diagnostics] == [
        (Reason.UnresolvedTargetPort, "cluster1")
    ]
    # details exists in cluster1 only.
    assert not any(o["metadata"]["name"] == ap["metadata"]["name"] for o in out["cluster2"])


def test_a_service_without_pod_selector_is_never_covered_namespace_wide() -> None:
    svc = """
apiVersion: v1
kind: Service
metadata: {name: legacy, namespace: bookinfo-backends}
spec:
  ports: [{name: http, port: 8080}]
"""
    outcome, out = render(
        "ex7-service-isolation", {}, {"cluster2": {"bookinfo-backends/legacy.yaml": svc}}
    )
    for objects in out.values():
        assert all("legacy" not in o["metadata"]["name"] for o in objects)
        assert all(o["spec"].get("selector") for o in objects)
    settings = next(r for r in outcome.reports if r.ref.kind == "WorkspaceSettings")
    assert [(d.reason, d.cluster) for d in settings.diagnostics] == [
        (Reason.NoPodSelector, "cluster2")
    ]
    assert settings.state is State.WARNING


def _workload_policy(name: str, labels: str) -> str:
    return f"""
apiVersion: security.policy.gloo.solo.io/v2
kind: AccessPolicy
metadata: {{name: {name}, namespace: bookinfo-backends}}
spec:
  applyToWorkloads: [{{selector: {{labels: {labels}}}}}]
  config:
    authzList: [{{allowedClients: [{{serviceAccountSelector: {{name: bookinfo-reviews}}}}]}}]
"""


def test_a_workload_policy_takes_over_isolation_only_where_it_covers_every_workload() -> None:
    extra = {
        "ratings.yaml": _workload_policy("ratings-all", "{app: ratings}"),
        "reviews.yaml": _workload_policy("reviews-v1", "{app: reviews, version: v1}"),
    }
    _, out = render("ex7-service-isolation", extra)
    for objects in out.values():
        # ratings-v1 is every ratings workload: the AccessPolicy is the allow-list.
        assert named(objects, "AuthorizationPolicy", "settings-ratings-9080-bookinfo") is None
        # reviews-v2 (and v3) are not selected: isolation keeps guarding them.
        assert named(objects, "AuthorizationPolicy", "settings-reviews-9080-bookinfo") is not None
        assert named(objects, "PeerAuthentication", "settings-ratings-9080-bookinfo") is not None


def test_virtual_destinations_cannot_be_selected() -> None:
    policy = """
apiVersion: security.policy.gloo.solo.io/v2
kind: AccessPolicy
metadata: {name: vd, namespace: bookinfo-backends}
spec:
  applyToDestinations: [{kind: VIRTUAL_DESTINATION, selector: {labels: {app: reviews}}}]
  config: {authzList: [{allowedMethods: [GET]}]}
"""
    outcome, out = render("ex8-access-policy-destinations", {"vd.yaml": policy})
    assert sorted(r.name for r in reasons_of(outcome, "AccessPolicy", "vd")) == [
        "NothingSelected",
        "UnsupportedField",
    ]
    _, base = rendered("ex8-access-policy-destinations")
    assert out == base


def test_principals_use_the_trust_domain_of_the_accounts_cluster() -> None:
    values = "gitops:\n  mesh:\n    trustDomain: cluster2.example.org\n"
    _, out = render("ex8-access-policy-destinations", {"helm/data-plane/cluster2.yaml": values})
    for objects in out.values():
        (policy,) = of_kind(objects, "AuthorizationPolicy")
        assert principals(policy) == [
            [
                "cluster1/ns/bookinfo-frontends/sa/bookinfo-productpage",
                "cluster2.example.org/ns/bookinfo-frontends/sa/bookinfo-productpage",
            ]
        ]


def test_istio_limits_on_rules_sources_and_size() -> None:
    rule = {"from": [{"source": {"principals": ["a"]}}]}
    assert oversize([rule] * MAX_ISTIO_ITEMS, 0) is None
    assert oversize([rule] * (MAX_ISTIO_ITEMS + 1), 0) is not None
    wide = {"from": [{"source": {"principals": ["a"]}}] * (MAX_ISTIO_ITEMS + 1)}
    assert oversize([wide], 0) is not None
    assert oversize([rule], 2 * 1024 * 1024) is not None


def test_long_principal_lists_covering_whole_namespaces_are_written_per_namespace() -> None:
    accounts = [f"cluster1/ns/team-{i % 3}/sa/account-{i:05d}" for i in range(3000)]
    namespaces = [f"cluster1/ns/team-{n}" for n in range(3)]
    compact = Principals.of(accounts, namespaces)
    assert compact.values == [f"cluster1/ns/team-{n}/sa/*" for n in range(3)]
    # Without whole namespaces (accounts picked by name) the list stays as it is.
    assert Principals.of(accounts).values == sorted(accounts)
    # Short lists stay account by account (worked example 7).
    assert Principals.of(accounts[:10], namespaces).values == sorted(accounts[:10])


def test_removing_the_access_policy_brings_the_isolation_allow_list_back() -> None:
    folder = GOLDEN / "isolation-with-access-policy"
    snapshots = read_snapshot_dir(folder / "snapshot")
    inputs = {c: load_cluster(c, t) for c, t in snapshots.items()}
    tree = read_directory(folder / "repo")
    session = Session(loading.load(tree), inputs)
    without = Tree({k: v for k, v in tree.entries.items() if k != "access-policy.yaml"})
    delta = session.update(loading.load(without))
    assert not delta.full
    key = ("AuthorizationPolicy", "bookinfo-backends", "settings-reviews-9080-bookinfo")
    for cluster in ("cluster1", "cluster2"):
        assert delta.changes[cluster][key] is not None
    fresh = translate(loading.load(without), inputs)
    assert session.objects("cluster1") == fresh.render("cluster1").objects

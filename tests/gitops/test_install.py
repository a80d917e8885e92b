"""Install manifests (`gitops.install`): what is rendered from values, least-privilege RBAC,
Secrets referenced and never created, overrides, determinism, and the committed samples in
deploy/manifests/ staying current."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops import install, rendering
from gitops.diagnostics import Source
from gitops.reasons import Reason

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
OPTIONS = install.Options(namespace="gloo-mesh", version="9.9.9")

MGMT = "glooMgmtServer:\n  enabled: true\n"
AGENT = (
    "common:\n  cluster: east\n"
    "glooAgent:\n  enabled: true\n  relay:\n    serverAddress: mgmt.example.com:9900\n"
)


def render(*texts: str, options: install.Options = OPTIONS) -> install.Rendered:
    files = [(f"v{i}.yaml", text.encode()) for i, text in enumerate(texts, 1)]
    return install.render_files(files, options)


def objects(*texts: str, options: install.Options = OPTIONS) -> list[dict[str, Any]]:
    result = render(*texts, options=options)
    assert not result.failed, [d.format() for d in result.diagnostics]
    return list(result.objects)


def one(objs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [found] = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    [c] = deployment["spec"]["template"]["spec"]["containers"]
    return c


def secret_volumes(deployment: dict[str, Any]) -> dict[str, bool]:
    return {
        v["secret"]["secretName"]: v["secret"]["optional"]
        for v in deployment["spec"]["template"]["spec"]["volumes"]
        if "secret" in v
    }


def kinds(objs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(o["kind"], o["metadata"]["name"]) for o in objs]


# -- the management plane ---------------------------------------------------------------------


def test_management_plane_objects_in_apply_order() -> None:
    assert kinds(objects(MGMT)) == [
        ("ServiceAccount", "gloo-mesh-mgmt-server"),
        ("ConfigMap", "gloo-mesh-mgmt-server-values"),
        ("Role", "gloo-mesh-mgmt-server"),
        ("RoleBinding", "gloo-mesh-mgmt-server"),
        ("Service", "gloo-mesh-mgmt-server"),
        ("Service", "gloo-mesh-redis"),
        ("Deployment", "gloo-mesh-mgmt-server"),
        ("Deployment", "gloo-mesh-redis"),
    ]


def test_the_server_runs_gitops_serve_with_the_four_ports() -> None:
    objs = objects(MGMT)
    server = container(one(objs, "Deployment", "gloo-mesh-mgmt-server"))
    assert server["command"] == ["gitops"] and server["args"][0] == "serve"
    assert {p["name"]: p["containerPort"] for p in server["ports"]} == {
        "grpc": 9900,
        "registration": 9901,
        "healthcheck": 8090,
        "stats": 9091,
        "http": 8080,
    }
    assert server["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthcheck"}
    assert server["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "healthcheck"}
    assert server["image"] == "ghcr.io/mesh-gitops/mesh-gitops:9.9.9"
    service = one(objs, "Service", "gloo-mesh-mgmt-server")
    assert service["spec"]["type"] == "LoadBalancer"
    assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        ("grpc", 9900, "grpc"),
        ("registration", 9901, "registration"),
        ("healthcheck", 8090, "healthcheck"),
        ("stats", 9091, "stats"),
        ("http", 8080, "http"),
    ]
    assert service["spec"]["selector"] == {"app": "gloo-mesh-mgmt-server"}


def test_secrets_are_referenced_by_name_and_never_created() -> None:
    values = (
        MGMT
        + "  relay:\n    tlsSecret: {name: my-server-tls}\n"
        + "redis:\n  address: redis.example.com:6379\n  deployment: {enabled: false}\n"
        + "  auth: {enabled: true, secretName: redis-auth}\n"
        + "  certs: {enabled: true, secretName: redis-ca}\n"
        + "gitops:\n  repo: {authSecret: git-auth, verify: head, allowedKeysSecret: signers}\n"
        + "  status: {provider: github, tokenSecret: gh-token}\n"
        + "  api: {tokenSecret: api-token}\n"
        + "  webhooks: {secretName: hook-secrets}\n"
    )
    objs = objects(values)
    assert not [o for o in objs if o["kind"] == "Secret"]
    deployment = one(objs, "Deployment", "gloo-mesh-mgmt-server")
    assert secret_volumes(deployment) == {
        "relay-root-tls-secret": False,
        "my-server-tls": False,
        "relay-tls-signing-secret": False,
        "relay-identity-token-secret": False,
        "redis-auth": False,
        "redis-ca": False,
        "git-auth": False,
        "signers": False,
        "gh-token": False,
        "api-token": False,
        "hook-secrets": False,
    }
    mounts = {m["mountPath"] for m in container(deployment)["volumeMounts"]}
    assert "/etc/mesh-gitops/secrets/redis-auth" in mounts
    assert "gloo-mesh-redis" not in {o["metadata"]["name"] for o in objs}


def test_insecure_or_caless_relays_mount_fewer_secrets() -> None:
    caless = one(
        objects(MGMT + "  relay: {disableCa: true}\n"), "Deployment", "gloo-mesh-mgmt-server"
    )
    assert set(secret_volumes(caless)) == {"relay-root-tls-secret", "relay-server-tls-secret"}
    insecure = objects("common: {insecure: true}\n" + MGMT)
    assert secret_volumes(one(insecure, "Deployment", "gloo-mesh-mgmt-server")) == {}
    assert "Role" not in {o["kind"] for o in insecure}  # nothing to read, nothing granted
    pod = one(insecure, "Deployment", "gloo-mesh-mgmt-server")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False


def test_the_server_has_no_cluster_wide_rights_and_reads_only_secrets() -> None:
    objs = objects(MGMT)
    assert not [o for o in objs if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    role = one(objs, "Role", "gloo-mesh-mgmt-server")
    assert role["metadata"]["namespace"] == "gloo-mesh"
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}
    ]
    binding = one(objs, "RoleBinding", "gloo-mesh-mgmt-server")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "gloo-mesh-mgmt-server", "namespace": "gloo-mesh"}
    ]


def test_bundled_redis_runs_without_eviction_and_with_io_threads() -> None:
    threads = (
        "redis:\n  deployment:\n    ioThreads: 4\n"
        "    resources: {requests: {cpu: 5}, limits: {cpu: 5}}\n"
    )
    redis = container(one(objects(MGMT + threads), "Deployment", "gloo-mesh-redis"))
    args = redis["args"]
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    assert args[args.index("--io-threads") + 1] == "4"
    assert args[args.index("--io-threads-do-reads") + 1] == "yes"
    assert redis["command"] == ["redis-server"]
    assert redis["resources"] == {"limits": {"cpu": "5"}, "requests": {"cpu": "5"}}
    plain = container(one(objects(MGMT), "Deployment", "gloo-mesh-redis"))
    assert "--io-threads" not in plain["args"] and "--maxmemory-policy" in plain["args"]
    service = one(objects(MGMT), "Service", "gloo-mesh-redis")
    assert [(p["name"], p["port"]) for p in service["spec"]["ports"]] == [("redis", 6379)]


def test_the_effective_values_resolve_install_defaults_and_drop_the_license() -> None:
    objs = objects(MGMT + "licensing: {glooMeshLicenseKey: s3cr3t}\n")
    [config] = [o for o in objs if o["kind"] == "ConfigMap"]
    text = config["data"]["values.yaml"]
    effective = yaml.safe_load(text)
    assert effective["redis"]["address"] == "gloo-mesh-redis.gloo-mesh.svc:6379"
    assert "licensing" not in effective and "s3cr3t" not in rendering.dump_all(objs)
    annotations = one(objs, "Deployment", "gloo-mesh-mgmt-server")["spec"]["template"]["metadata"][
        "annotations"
    ]
    assert len(annotations["mesh-gitops.io/values-checksum"]) == 64
    changed = objects(MGMT + "glooUi: {enabled: true}\n")
    other = one(changed, "Deployment", "gloo-mesh-mgmt-server")["spec"]["template"]["metadata"]
    assert (
        other["annotations"]["mesh-gitops.io/values-checksum"]
        != annotations["mesh-gitops.io/values-checksum"]
    )


def test_extra_envs_image_and_prometheus_settings() -> None:
    values = (
        MGMT
        + "  extraEnvs:\n    LOG_LEVEL: {value: debug}\n"
        + "    POD_NAMESPACE: {value: fixed}\n"
        + "  image: {registry: registry.example.com/mesh, repository: gitops, tag: 1.0.0-fips, "
        + "pullPolicy: Always}\n"
        + "prometheus: {enabled: false}\n"
    )
    deployment = one(objects(values), "Deployment", "gloo-mesh-mgmt-server")
    server = container(deployment)
    env = {e["name"]: e for e in server["env"]}
    assert env["LOG_LEVEL"] == {"name": "LOG_LEVEL", "value": "debug"}
    assert env["POD_NAMESPACE"] == {"name": "POD_NAMESPACE", "value": "fixed"}
    assert [e["name"] for e in server["env"]].count("POD_NAMESPACE") == 1
    assert server["image"] == "registry.example.com/mesh/gitops:1.0.0-fips"
    assert server["imagePullPolicy"] == "Always"
    assert deployment["metadata"]["labels"]["mesh-gitops.io/fips"] == "true"
    assert deployment["spec"]["template"]["metadata"]["labels"]["mesh-gitops.io/fips"] == "true"
    assert "prometheus.io/scrape" not in deployment["spec"]["template"]["metadata"]["annotations"]
    plain = one(objects(MGMT), "Deployment", "gloo-mesh-mgmt-server")
    assert "mesh-gitops.io/fips" not in plain["metadata"]["labels"]
    annotations = plain["spec"]["template"]["metadata"]["annotations"]
    assert (
        annotations["prometheus.io/scrape"] == "true"
        and annotations["prometheus.io/port"] == "9091"
    )


# -- overrides ----------------------------------------------------------------------------------


def test_deployment_and_service_overrides_merge_into_the_templates() -> None:
    values = MGMT + (
        "  deploymentOverrides:\n"
        "    metadata:\n      annotations: {team: mesh}\n"
        "    spec:\n"
        "      replicas: 3\n"
        "      template:\n"
        "        spec:\n"
        "          tolerations: [{key: dedicated, operator: Exists}]\n"
        "          securityContext:\n            seccompProfile: null\n"
        "  serviceOverrides:\n"
        "    spec:\n      type: NodePort\n"
        "      ports: [{name: grpc, port: 9900, nodePort: 30990}]\n"
    )
    objs = objects(values)
    deployment = one(objs, "Deployment", "gloo-mesh-mgmt-server")
    assert deployment["metadata"]["annotations"] == {"team": "mesh"}
    assert deployment["metadata"]["labels"]["app"] == "gloo-mesh-mgmt-server"  # kept
    assert deployment["spec"]["replicas"] == 3
    pod = deployment["spec"]["template"]["spec"]
    assert pod["tolerations"] == [{"key": "dedicated", "operator": "Exists"}]
    assert "seccompProfile" not in pod["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    service = one(objs, "Service", "gloo-mesh-mgmt-server")
    assert service["spec"]["type"] == "NodePort"
    assert service["spec"]["ports"] == [{"name": "grpc", "port": 9900, "nodePort": 30990}]
    assert service["spec"]["selector"] == {"app": "gloo-mesh-mgmt-server"}


def test_several_values_files_merge_in_order_with_helm_semantics() -> None:
    first = MGMT + "  replicas: 2\n  deploymentOverrides:\n    spec: {paused: true}\n"
    second = "glooMgmtServer:\n  replicas: 4\n  deploymentOverrides:\n    spec: {paused: null}\n"
    third = (
        "glooMgmtServer:\n  deploymentOverrides:\n    spec:\n      template:\n"
        "        spec:\n          securityContext: null\n"
    )
    deployment = one(objects(first, second, third), "Deployment", "gloo-mesh-mgmt-server")
    assert deployment["spec"]["replicas"] == 4
    assert "paused" not in deployment["spec"]
    assert "securityContext" not in deployment["spec"]["template"]["spec"]
    reordered = one(objects(second, first), "Deployment", "gloo-mesh-mgmt-server")
    assert reordered["spec"]["replicas"] == 2 and reordered["spec"]["paused"] is True


def test_an_error_in_one_of_several_files_points_into_that_file() -> None:
    result = render(MGMT, "glooMgmtServer:\n  replica: 2\n")
    assert [(d.reason, d.source) for d in result.diagnostics] == [
        (Reason.InvalidHelmValues, Source("v2.yaml", 2))
    ]
    assert result.objects == ()


def test_rule_findings_point_at_the_last_file_that_sets_the_key() -> None:
    result = render(MGMT + "  safeStartWindow: 5\n", "glooMgmtServer:\n  safeStartWindow: 10\n")
    [d] = result.diagnostics
    assert (d.reason, d.source) == (Reason.HelmValueIgnored, Source("v2.yaml", 2))
    assert result.objects  # a warning renders anyway


# -- the agent ------------------------------------------------------------------------------------

AGENT_RULES = [
    {
        "apiGroups": [""],
        "resources": ["namespaces", "nodes", "pods", "serviceaccounts", "services"],
        "verbs": ["get", "list", "watch"],
    },
    {
        "apiGroups": ["apps"],
        "resources": ["daemonsets", "deployments", "statefulsets"],
        "verbs": ["get", "list", "watch"],
    },
    {
        "apiGroups": ["networking.istio.io"],
        "resources": [
            "destinationrules",
            "envoyfilters",
            "gateways",
            "serviceentries",
            "sidecars",
            "virtualservices",
            "workloadentries",
        ],
        "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
    },
    {
        "apiGroups": ["security.istio.io"],
        "resources": ["authorizationpolicies", "peerauthentications"],
        "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
    },
]


def test_agent_rbac_is_exactly_what_it_needs() -> None:
    objs = objects(AGENT)
    cluster_role = one(objs, "ClusterRole", "gloo-mesh-agent-gloo-mesh")
    assert cluster_role["rules"] == AGENT_RULES
    assert "namespace" not in cluster_role["metadata"]
    binding = one(objs, "ClusterRoleBinding", "gloo-mesh-agent-gloo-mesh")
    assert binding["roleRef"]["name"] == "gloo-mesh-agent-gloo-mesh"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "gloo-mesh-agent", "namespace": "gloo-mesh"}
    ]
    role = one(objs, "Role", "gloo-mesh-agent")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["relay-client-tls-secret"],
            "verbs": ["get", "patch", "update"],
        },
    ]
    for obj in objs:
        for rule in obj.get("rules", []):
            assert "*" not in [item for values in rule.values() for item in values], rule


def test_the_agent_runs_gitops_agent_with_its_relay_secrets() -> None:
    objs = objects(AGENT)
    deployment = one(objs, "Deployment", "gloo-mesh-agent")
    agent = container(deployment)
    assert agent["command"] == ["gitops"] and agent["args"][0] == "agent"
    assert secret_volumes(deployment) == {
        "relay-root-tls-secret": False,
        "relay-identity-token-secret": True,
        "relay-client-tls-secret": True,
    }
    effective = yaml.safe_load(
        one(objs, "ConfigMap", "gloo-mesh-agent-values")["data"]["values.yaml"]
    )
    assert effective["glooAgent"]["relay"]["serverAddress"] == "mgmt.example.com:9900"
    assert effective["glooAgent"]["relay"]["authority"] == "gloo-mesh-mgmt-server.gloo-mesh"
    assert effective["common"]["cluster"] == "east"
    assert "gloo-mesh-mgmt-server" not in {o["metadata"]["name"] for o in objs}


def test_an_insecure_agent_gets_no_secrets_and_the_in_cluster_relay() -> None:
    objs = objects("common: {cluster: east, insecure: true}\nglooAgent: {enabled: true}\n")
    assert "Role" not in {o["kind"] for o in objs}
    assert secret_volumes(one(objs, "Deployment", "gloo-mesh-agent")) == {}
    effective = yaml.safe_load(
        one(objs, "ConfigMap", "gloo-mesh-agent-values")["data"]["values.yaml"]
    )
    assert (
        effective["glooAgent"]["relay"]["serverAddress"]
        == "gloo-mesh-mgmt-server.gloo-mesh.svc:9900"
    )


def test_the_agent_needs_a_cluster_name_from_the_values_or_the_option() -> None:
    anonymous = AGENT.replace("common:\n  cluster: east\n", "")
    result = render(anonymous)
    assert [d.reason for d in result.diagnostics] == [Reason.MissingHelmValue]
    assert "common.cluster is required" in result.diagnostics[0].message
    assert result.objects == ()
    named = objects(anonymous, options=install.Options(version="1", cluster="west"))
    effective = yaml.safe_load(
        one(named, "ConfigMap", "gloo-mesh-agent-values")["data"]["values.yaml"]
    )
    assert effective["common"]["cluster"] == "west"
    mismatch = render(AGENT, options=install.Options(version="1", cluster="west"))
    assert [d.reason for d in mismatch.diagnostics] == [Reason.InvalidHelmValues]


@pytest.mark.parametrize(
    ("values", "key"),
    [
        (MGMT + "  relay:\n    tokenSecret: {namespace: elsewhere}\n", "glooMgmtServer"),
        (AGENT + "    tokenSecret: {namespace: elsewhere}\n", "glooAgent"),
    ],
)
def test_token_secrets_must_live_in_the_install_namespace(values: str, key: str) -> None:
    result = render(values)
    [d] = result.diagnostics
    assert d.reason is Reason.InvalidHelmValues and d.source is not None and d.source.line > 0
    assert f"{key}.relay.tokenSecret.namespace is 'elsewhere'" in d.message
    assert result.objects == ()
    assert not render(values.replace("elsewhere", "gloo-mesh")).failed


def test_nothing_enabled_is_an_error() -> None:
    result = render("common: {cluster: east}\n")
    assert [d.reason for d in result.diagnostics] == [Reason.MissingHelmValue]
    assert "nothing to render" in result.diagnostics[0].message


# -- every object, determinism, committed samples ------------------------------------------


def test_every_object_is_valid_yaml_with_api_version_kind_and_metadata() -> None:
    objs = objects(MGMT, AGENT, options=install.Options(namespace="mesh", version="1"))
    text = rendering.dump_all(objs)
    reloaded = list(yaml.safe_load_all(text))
    assert reloaded == objs
    for obj in reloaded:
        assert obj["apiVersion"] and obj["kind"] and obj["metadata"]["name"]
        cluster_scoped = obj["kind"] in ("ClusterRole", "ClusterRoleBinding")
        assert obj["metadata"].get("namespace") == (None if cluster_scoped else "mesh")
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "mesh-gitops"


def test_rendering_is_deterministic() -> None:
    values = (DEPLOY / "values" / "mgmt-plane.yaml").read_bytes()
    first = install.render_files([("a.yaml", values)], OPTIONS)
    second = install.render_files([("a.yaml", values)], OPTIONS)
    assert rendering.dump_all(first.objects) == rendering.dump_all(second.objects)


@pytest.mark.parametrize("plane", ["mgmt-plane", "data-plane"])
def test_committed_manifests_are_current(plane: str) -> None:
    values = DEPLOY / "values" / f"{plane}.yaml"
    committed = DEPLOY / "manifests" / f"{plane}.yaml"
    options = install.Options(version=importlib.metadata.version("mesh-gitops"))
    result = install.render_files([(str(values), values.read_bytes())], options)
    assert result.diagnostics == ()
    assert committed.read_text() == rendering.dump_all(result.objects), (
        f"deploy/manifests/{plane}.yaml is stale: run `gitops install render --values "
        f"deploy/values/{plane}.yaml -o deploy/manifests/{plane}.yaml`"
    )

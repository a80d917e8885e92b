"""A workload cluster's manifests: `gloo-mesh-agent` running `gitops agent`.

Called by `gitops.install.render` when `glooAgent.enabled`. Renders a ServiceAccount, the
ClusterRole and ClusterRoleBinding the agent works with, a Role for its client certificate,
the effective values (ConfigMap), the Deployment and a Service for health and metrics;
`deploymentOverrides`/`serviceOverrides` are laid over the last two.

Least privilege, from what the agent does (DESIGN.md section 7):
- discovery reads Namespaces, Services, ServiceAccounts, Nodes (locality), Pods (endpoints)
  and Deployments/StatefulSets/DaemonSets: `get`/`list`/`watch`, nothing more;
- apply and prune write exactly the Istio kinds translation emits: full verbs on those, and
  on no other kind. No wildcards anywhere;
- the relay: the root CA and the bootstrap token are mounted; the certificate the server
  issues is stored in `relay-client-tls-secret` by the agent itself, so a namespaced Role
  allows `create` on Secrets (Kubernetes cannot narrow `create` by name) and
  `get`/`update`/`patch` on that one Secret only. Insecure agents get no Role.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gitops.helm import merge
from gitops.helm.rules import Finding
from gitops.install import context, pods
from gitops.install.context import AGENT_NAME, Context

COMPONENT = "agent"
VALUES_CONFIG_MAP = f"{AGENT_NAME}-values"  # pods.values_config_map

_READ = ["get", "list", "watch"]
_WRITE = ["create", "delete", "get", "list", "patch", "update", "watch"]

#: The agent's ClusterRole rules: (API group, resources, verbs).
RULES: tuple[tuple[str, tuple[str, ...], list[str]], ...] = (
    ("", ("namespaces", "nodes", "pods", "serviceaccounts", "services"), _READ),
    ("apps", ("daemonsets", "deployments", "statefulsets"), _READ),
    (
        "networking.istio.io",
        (
            "destinationrules",
            "envoyfilters",
            "gateways",
            "serviceentries",
            "sidecars",
            "virtualservices",
            "workloadentries",
        ),
        _WRITE,
    ),
    ("security.istio.io", ("authorizationpolicies", "peerauthentications"), _WRITE),
)


def cluster_role_name(namespace: str) -> str:
    """Cluster-scoped names carry the install namespace, so two installs do not collide."""
    return f"{AGENT_NAME}-{namespace}"


def secrets(ctx: Context, findings: list[Finding]) -> list[pods.SecretMount]:
    if ctx.values.agent_insecure:
        return []
    relay = ctx.values.gloo_agent.relay
    out = [
        pods.SecretMount(relay.root_tls_secret.name),
        # Written by the agent after it registers: absent on the first start.
        pods.SecretMount(relay.client_tls_secret.name, optional=True),
    ]
    # The bootstrap token may be deleted once the agent holds a certificate.
    if context.mountable(
        ctx, "glooAgent.relay.tokenSecret", relay.token_secret.namespace, findings
    ):
        out.append(pods.SecretMount(relay.token_secret.name, optional=True))
    return out


def render(ctx: Context, findings: list[Finding]) -> Iterator[dict[str, Any]]:
    agent = ctx.values.gloo_agent
    ns = ctx.namespace
    mounts = secrets(ctx, findings)
    cluster_role = cluster_role_name(ns)
    yield pods.service_account(AGENT_NAME, COMPONENT, ns)
    yield {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": pods.metadata(cluster_role, COMPONENT, None, AGENT_NAME),
        "rules": [
            {"apiGroups": [group], "resources": list(resources), "verbs": list(verbs)}
            for group, resources, verbs in RULES
        ],
    }
    yield pods.binding("ClusterRoleBinding", cluster_role, COMPONENT, None, AGENT_NAME, ns)
    if mounts:
        client_secret = agent.relay.client_tls_secret.name
        yield {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": pods.metadata(AGENT_NAME, COMPONENT, ns),
            "rules": [
                {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
                {
                    "apiGroups": [""],
                    "resources": ["secrets"],
                    "resourceNames": [client_secret],
                    "verbs": ["get", "patch", "update"],
                },
            ],
        }
        yield pods.binding("RoleBinding", AGENT_NAME, COMPONENT, ns, AGENT_NAME, ns)
    yield pods.values_config_map(AGENT_NAME, COMPONENT, ns, ctx.config_text)
    yield merge.overlay(_deployment(ctx, mounts), agent.deployment_overrides)
    service = pods.service(
        AGENT_NAME,
        COMPONENT,
        ns,
        "ClusterIP",
        [pods.port("healthcheck", pods.HEALTH_PORT), pods.port("stats", pods.METRICS_PORT)],
    )
    yield merge.overlay(service, agent.service_overrides)


def _deployment(ctx: Context, mounts: list[pods.SecretMount]) -> dict[str, Any]:
    agent = ctx.values.gloo_agent
    secret_volumes, secret_mounts = pods.secret_mounts(mounts)
    container = {
        "name": "agent",
        **pods.image_fields(agent.image, ctx.options.version),
        "command": ["gitops"],
        "args": ["agent", "--values", pods.VALUES_FILE, "--secrets-dir", pods.SECRETS_DIR],
        "env": pods.env(agent.extra_envs),
        "ports": [
            pods.container_port("healthcheck", pods.HEALTH_PORT),
            pods.container_port("stats", pods.METRICS_PORT),
        ],
        **pods.http_probes(),
        "resources": pods.resources(agent.resources),
        "securityContext": pods.container_security(),
        "volumeMounts": [
            {"name": "values", "mountPath": pods.VALUES_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
            *secret_mounts,
        ],
    }
    pod_spec = {
        "serviceAccountName": AGENT_NAME,
        "securityContext": pods.pod_security(pods.UID),
        "containers": [container],
        "volumes": [
            {"name": "values", "configMap": {"name": VALUES_CONFIG_MAP}},
            {"name": "tmp", "emptyDir": {}},
            *secret_volumes,
        ],
    }
    annotations = pods.pod_annotations(ctx.config_text, ctx.values.prometheus.enabled)
    return pods.deployment(
        AGENT_NAME, COMPONENT, ctx.namespace, 1, pod_spec, annotations, agent.image.fips
    )

"""The management plane's manifests: `gloo-mesh-mgmt-server` running `gitops serve`.

Called by `gitops.install.render` when `glooMgmtServer.enabled`. Renders a ServiceAccount,
a Role and RoleBinding for reading Secrets in the install namespace, the effective values
(ConfigMap), the Deployment and the Service; `deploymentOverrides`/`serviceOverrides` are
laid over the last two (`gitops.helm.merge.overlay`). The bundled Redis is in
`gitops.install.redis`.

Least privilege: the server needs nothing cluster-wide. It reads the config (Workspaces,
KubernetesClusters, policies) from Git, not from CRDs; it learns about workload clusters
through the relay; its leader lock is in Redis. So there is no ClusterRole. What it does need
is its Secrets: they are mounted as volumes (`<SECRETS_DIR>/<name>/<key>`), and the Role lets
it read them through the API as well (DESIGN.md section 10), `get`/`list` in its own
namespace only. Secrets are referenced, never created: `gitops pki init`, or you, create them.

Two gRPC ports: `grpc` (9900, the relay, mutual TLS) and `registration` (9901, server-only
TLS, where agents without a certificate yet register with the token; docs/relay.md). Both
are on the one Service, so agents reach them through the same address.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gitops.helm import merge
from gitops.helm.rules import Finding
from gitops.install import context, pods
from gitops.install.context import MGMT_NAME, Context

COMPONENT = "mgmt-server"
VALUES_CONFIG_MAP = f"{MGMT_NAME}-values"  # pods.values_config_map
#: The root CA of the relay. The Gloo chart has no key for its name on the server side.
ROOT_TLS_SECRET = "relay-root-tls-secret"


def secrets(ctx: Context, findings: list[Finding]) -> list[pods.SecretMount]:
    """Every Secret the server reads, given the values."""
    values = ctx.values
    relay = values.gloo_mgmt_server.relay
    out: list[pods.SecretMount] = []
    if not values.common.insecure:
        out += [pods.SecretMount(ROOT_TLS_SECRET), pods.SecretMount(relay.tls_secret.name)]
        if not relay.disable_ca:
            # Without our CA, agents bring their own certificates: no signing key, no token.
            out.append(pods.SecretMount(relay.signing_tls_secret.name))
            if context.mountable(
                ctx, "glooMgmtServer.relay.tokenSecret", relay.token_secret.namespace, findings
            ):
                out.append(pods.SecretMount(relay.token_secret.name))
    redis = values.redis
    if not ctx.bundled_redis:  # the bundled Redis has neither (gitops.helm.rules warns)
        for section in (redis.auth, redis.certs):
            if section.enabled and section.secret_name:
                out.append(pods.SecretMount(section.secret_name))
    repo, status = values.gitops.repo, values.gitops.status
    api, hooks = values.gitops.api, values.gitops.webhooks
    for name in (
        repo.auth_secret,
        repo.allowed_keys_secret,
        status.token_secret,
        api.token_secret,
        hooks.secret_name,
    ):
        if name:
            out.append(pods.SecretMount(name))
    oidc = values.gloo_ui.auth.oidc
    if values.gloo_ui.auth.enabled and oidc.client_secret_name:
        out.append(pods.SecretMount(oidc.client_secret_name))
    return out


def render(ctx: Context, findings: list[Finding]) -> Iterator[dict[str, Any]]:
    server = ctx.values.gloo_mgmt_server
    ns = ctx.namespace
    mounts = secrets(ctx, findings)
    yield pods.service_account(MGMT_NAME, COMPONENT, ns)
    if mounts:
        yield {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": pods.metadata(MGMT_NAME, COMPONENT, ns),
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}],
        }
        yield pods.binding("RoleBinding", MGMT_NAME, COMPONENT, ns, MGMT_NAME, ns)
    yield pods.values_config_map(MGMT_NAME, COMPONENT, ns, ctx.config_text)
    yield merge.overlay(_deployment(ctx, mounts), server.deployment_overrides)
    service = pods.service(
        MGMT_NAME,
        COMPONENT,
        ns,
        server.service_type,
        [
            pods.port("grpc", pods.RELAY_PORT, "grpc"),
            pods.port("registration", pods.REGISTRATION_PORT, "grpc"),
            pods.port("healthcheck", pods.HEALTH_PORT),
            pods.port("stats", pods.METRICS_PORT),
            pods.port("http", pods.HTTP_PORT),
        ],
    )
    yield merge.overlay(service, server.service_overrides)


def _deployment(ctx: Context, mounts: list[pods.SecretMount]) -> dict[str, Any]:
    server = ctx.values.gloo_mgmt_server
    secret_volumes, secret_mounts = pods.secret_mounts(mounts)
    container = {
        "name": "mgmt-server",
        **pods.image_fields(server.image, ctx.options.version),
        "command": ["gitops"],
        "args": ["serve", "--values", pods.VALUES_FILE, "--secrets-dir", pods.SECRETS_DIR],
        "env": pods.env(server.extra_envs, {"XDG_CACHE_HOME": f"{pods.DATA_DIR}/cache"}),
        "ports": [
            pods.container_port("grpc", pods.RELAY_PORT),
            pods.container_port("registration", pods.REGISTRATION_PORT),
            pods.container_port("healthcheck", pods.HEALTH_PORT),
            pods.container_port("stats", pods.METRICS_PORT),
            pods.container_port("http", pods.HTTP_PORT),
        ],
        **pods.http_probes(),
        "resources": pods.resources(server.resources),
        "securityContext": pods.container_security(),
        "volumeMounts": [
            {"name": "values", "mountPath": pods.VALUES_DIR, "readOnly": True},
            {"name": "data", "mountPath": pods.DATA_DIR},
            {"name": "tmp", "mountPath": "/tmp"},
            *secret_mounts,
        ],
    }
    pod_spec = {
        "serviceAccountName": MGMT_NAME,
        # The API token is only needed to read Secrets through the API.
        "automountServiceAccountToken": bool(mounts),
        "securityContext": pods.pod_security(pods.UID),
        "containers": [container],
        "volumes": [
            {"name": "values", "configMap": {"name": VALUES_CONFIG_MAP}},
            {"name": "data", "emptyDir": {}},
            {"name": "tmp", "emptyDir": {}},
            *secret_volumes,
        ],
    }
    annotations = pods.pod_annotations(ctx.config_text, ctx.values.prometheus.enabled)
    return pods.deployment(
        MGMT_NAME,
        COMPONENT,
        ctx.namespace,
        server.replicas,
        pod_spec,
        annotations,
        server.image.fips,
    )

"""What every install renderer needs: the options, the checked values, the effective values.

Built once by `gitops.install.render` and handed to `mgmt`, `redis` and `agent`. The
*effective values* are what the components read at start-up (`--values`, from a ConfigMap):
the merged values files with Helm's null markers applied, `licensing` dropped (a license key
is a credential and mesh-gitops does not use it), and the defaults that depend on the
install resolved, so the file says exactly what the pods will do:

- `common.cluster` from `--cluster` when the files leave it unset;
- `redis.address` of the bundled Redis Service when the server uses it;
- the agent's relay: `glooAgent.relay.serverAddress` (for insecure agents that set none,
  the in-cluster management server; with TLS the address is required, `gitops.helm.rules`
  says so) and `glooAgent.relay.authority`, so the two facts an agent lives by are spelled
  out in its ConfigMap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gitops import rendering
from gitops.helm import merge
from gitops.helm.models import Values
from gitops.helm.rules import Finding
from gitops.install import pods
from gitops.reasons import Reason

REDIS_NAME = "gloo-mesh-redis"
REDIS_PORT = 6379
MGMT_NAME = "gloo-mesh-mgmt-server"
AGENT_NAME = "gloo-mesh-agent"


@dataclass(frozen=True, slots=True)
class Options:
    """What `gitops install render` takes besides the values files."""

    #: Namespace of every namespaced object (Secrets are expected there too).
    namespace: str = "gloo-mesh"
    #: Image tag of our components when the values set none: the renderer's own version.
    version: str = "latest"
    #: The cluster the values are for, when `common.cluster` is not set in them.
    cluster: str | None = None


@dataclass(frozen=True, slots=True)
class Context:
    values: Values
    options: Options
    #: `common.cluster`, else `--cluster`; None when neither is given.
    cluster: str | None
    #: The effective values, as YAML.
    config_text: str

    @property
    def namespace(self) -> str:
        return self.options.namespace

    @property
    def bundled_redis(self) -> bool:
        """The server uses the Redis rendered with it (no external `redis.address`)."""
        redis = self.values.redis
        return redis.deployment.enabled and redis.address is None


def build(values: Values, merged: Mapping[str, Any], options: Options) -> Context:
    cluster = values.common.cluster or options.cluster
    effective: dict[str, Any] = merge.prune(merged)
    effective.pop("licensing", None)
    ns = options.namespace
    if cluster is not None:
        _set(effective, ("common", "cluster"), cluster)
    redis = values.redis
    if values.gloo_mgmt_server.enabled and redis.deployment.enabled and redis.address is None:
        _set(effective, ("redis", "address"), f"{REDIS_NAME}.{ns}.svc:{REDIS_PORT}")
    if values.gloo_agent.enabled:
        relay = values.gloo_agent.relay
        address = relay.server_address or f"{MGMT_NAME}.{ns}.svc:{pods.RELAY_PORT}"
        _set(effective, ("glooAgent", "relay", "serverAddress"), address)
        _set(effective, ("glooAgent", "relay", "authority"), relay.authority)
    return Context(values, options, cluster, rendering.dump(effective))


def mountable(ctx: Context, key: str, namespace: str | None, findings: list[Finding]) -> bool:
    """Whether a Secret said to live in `namespace` can be mounted (pods mount Secrets of
    their own namespace only); an error finding when it cannot."""
    if namespace is None or namespace == ctx.namespace:
        return True
    findings.append(
        Finding(
            Reason.InvalidHelmValues,
            f"{key}.namespace is {namespace!r}: pods can only mount Secrets of their own "
            f"namespace; create the Secret in {ctx.namespace!r} (the install namespace)",
            (f"{key}.namespace",),
        )
    )
    return False


def _set(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        child = tree.get(key)
        if not isinstance(child, dict):
            child = tree[key] = {}
        tree = child
    tree[path[-1]] = value

"""Cross-field rules of the Helm values: what the schema alone cannot say.

`check(values)` runs after the schema accepted a file (`gitops.helm.validation`), for the
loader's `helm/` files and for `gitops install render` alike. Each rule returns a `Finding`
with a reason from the one vocabulary (`gitops.reasons`) and the key paths it is about; the
validation step turns findings into diagnostics at the line of the first key. Errors
(`MissingHelmValue`) fail `gitops validate` and `install render`; warnings
(`HelmValueIgnored`, `InsufficientResources`) are printed and change nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from gitops.helm.fields import cpu_cores
from gitops.helm.models import Values
from gitops.reasons import Reason


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule broken. `keys` are dotted key paths; the first one locates the finding."""

    reason: Reason
    message: str
    keys: tuple[str, ...]


Rule = Callable[[Values], Iterator[Finding]]


def _safe_start_window(values: Values) -> Iterator[Finding]:
    server = values.gloo_mgmt_server
    if server.safe_mode and server.safe_start_window > 0:
        yield Finding(
            Reason.HelmValueIgnored,
            f"glooMgmtServer.safeStartWindow: {server.safe_start_window} is ignored while "
            "glooMgmtServer.safeMode is true (safe mode waits for every cluster, however long)",
            ("glooMgmtServer.safeStartWindow", "glooMgmtServer.safeMode"),
        )


def _redis_io_threads(values: Values) -> Iterator[Finding]:
    deployment = values.redis.deployment
    threads = deployment.io_threads
    if not deployment.enabled or threads is None or threads <= 1:
        return
    # Redis' I/O threads each keep a core busy, next to the main thread (redis.conf: "it is
    # not useful to have more threads than cores"), so N threads want N+1 cores: requested,
    # so the scheduler finds them, and as the limit, so CFS throttling does not eat them.
    needed = threads + 1
    requests, limits = deployment.resources.requests, deployment.resources.limits
    request = requests.cpu if requests else None
    limit = limits.cpu if limits else None
    short = [
        (key, value)
        for key, value in (("requests", request), ("limits", limit))
        if (cores := cpu_cores(value)) is None or cores < needed
    ]
    if short:
        found = " and ".join(
            f"redis.deployment.resources.{key}.cpu is {value if value is not None else 'unset'}"
            for key, value in short
        )
        yield Finding(
            Reason.InsufficientResources,
            f"redis.deployment.ioThreads: {threads} needs CPU requests and limits of at least "
            f"{needed} cores, but {found}",
            ("redis.deployment.ioThreads", *(f"redis.deployment.resources.{k}" for k, _ in short)),
        )


def _redis_secrets(values: Values) -> Iterator[Finding]:
    redis = values.redis
    if not redis.deployment.enabled and redis.address is None:
        yield Finding(
            Reason.MissingHelmValue,
            "redis.address is required when redis.deployment.enabled is false (the server "
            "needs a Redis to store snapshots in)",
            ("redis.address", "redis.deployment.enabled"),
        )
    for section, what in (("auth", "username and password"), ("certs", "CA certificate")):
        settings = redis.auth if section == "auth" else redis.certs
        if settings.enabled and settings.secret_name is None:
            yield Finding(
                Reason.MissingHelmValue,
                f"redis.{section}.secretName is required when redis.{section}.enabled is true "
                f"(the Secret holding the {what})",
                (f"redis.{section}.secretName", f"redis.{section}.enabled"),
            )
    bundled = redis.deployment.enabled and redis.address is None
    for section in ("auth", "certs"):
        settings = redis.auth if section == "auth" else redis.certs
        if bundled and settings.enabled:
            yield Finding(
                Reason.HelmValueIgnored,
                f"redis.{section}.enabled is ignored: the bundled Redis (redis.deployment) "
                f"runs without it; set redis.address to use redis.{section} with your own Redis",
                (f"redis.{section}.enabled",),
            )


def _agent_relay(values: Values) -> Iterator[Finding]:
    agent = values.gloo_agent
    if agent.enabled and not values.agent_insecure and agent.relay.server_address is None:
        yield Finding(
            Reason.MissingHelmValue,
            "glooAgent.relay.serverAddress is required when glooAgent.enabled is true and "
            "common.insecure is false (the management server's relay, host:9900)",
            ("glooAgent.relay.serverAddress", "glooAgent.enabled"),
        )


def _gitops(values: Values) -> Iterator[Finding]:
    repo, status = values.gitops.repo, values.gitops.status
    if repo.verify == "head" and repo.allowed_keys_secret is None:
        yield Finding(
            Reason.MissingHelmValue,
            "gitops.repo.allowedKeysSecret is required when gitops.repo.verify is head "
            "(the Secret listing the keys allowed to sign)",
            ("gitops.repo.allowedKeysSecret", "gitops.repo.verify"),
        )
    if status.provider != "notes" and status.token_secret is None:
        yield Finding(
            Reason.MissingHelmValue,
            f"gitops.status.tokenSecret is required when gitops.status.provider is "
            f"{status.provider} (the Secret holding the API token)",
            ("gitops.status.tokenSecret", "gitops.status.provider"),
        )


def _ui_auth(values: Values) -> Iterator[Finding]:
    auth = values.gloo_ui.auth
    if not auth.enabled:
        return
    oidc = auth.oidc
    missing = [
        key
        for key, value in (
            ("appUrl", oidc.app_url),
            ("clientId", oidc.client_id),
            ("clientSecretName", oidc.client_secret_name),
            ("issuerUrl", oidc.issuer_url),
        )
        if value is None
    ]
    if missing:
        keys = tuple(f"glooUi.auth.oidc.{key}" for key in missing)
        yield Finding(
            Reason.MissingHelmValue,
            f"{', '.join(keys)} required when glooUi.auth.enabled is true",
            (*keys, "glooUi.auth.enabled"),
        )


def _gloo_only(values: Values) -> Iterator[Finding]:
    if values.licensing:
        yield Finding(
            Reason.HelmValueIgnored,
            "licensing is not needed by mesh-gitops; the key is ignored and never copied "
            "into rendered manifests",
            ("licensing",),
        )
    server = values.gloo_mgmt_server
    if server.create_global_workspace:
        yield Finding(
            Reason.HelmValueIgnored,
            "glooMgmtServer.createGlobalWorkspace is ignored: mesh-gitops reads Workspaces "
            "from the config repository only; commit a Workspace there",
            ("glooMgmtServer.createGlobalWorkspace",),
        )
    if server.register_cluster:
        yield Finding(
            Reason.HelmValueIgnored,
            "glooMgmtServer.registerCluster is ignored: mesh-gitops reads KubernetesClusters "
            "from the config repository only; commit one there",
            ("glooMgmtServer.registerCluster",),
        )


RULES: tuple[Rule, ...] = (
    _safe_start_window,
    _redis_io_threads,
    _redis_secrets,
    _agent_relay,
    _gitops,
    _ui_auth,
    _gloo_only,
)


def check(values: Values) -> list[Finding]:
    """Every rule the values break, in a fixed order."""
    return [finding for rule in RULES for finding in rule(values)]

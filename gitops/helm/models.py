"""The typed Helm values: `Values`, the Gloo Platform chart's shape plus our `gitops.*` block.

One schema serves `helm/mgmt-plane.yaml`, every `helm/data-plane/<cluster>.yaml` (read by
`gitops.loading` through `gitops.helm.validation`) and the files given to
`gitops install render` (DESIGN.md section 10). Only the keys mesh-gitops understands are
accepted; any other key is an error with its path, so a typo never silently means a default.

Defaults are the Gloo chart's where it has one and the component is the same
(`safeMode`, relay secret names, `serviceType`); where mesh-gitops differs, the field says so.
Durations are Go strings (`5s`, `512ms`) held as nanoseconds; sizes are Kubernetes
quantities. Secrets are referenced by name only: values never hold secret data.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from gitops.helm.fields import (
    ExtraEnvs,
    Image,
    RedisImage,
    Resources,
    SecretName,
    ValuesModel,
    resources,
)
from gitops.helm.gitops_block import Gitops
from gitops.models.base import Duration

_MS = 1_000_000
_S = 1_000 * _MS


def _host_port(address: str) -> str:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{address!r} is not a host:port address (e.g. 'redis.example.com:6379')")
    return address


#: `host:port`.
Address = Annotated[str, AfterValidator(_host_port)]
#: A free-form mapping merged into a rendered object (`deploymentOverrides`); nulls kept.
Overrides = dict[str, Any]
NonNegative = Annotated[int, Field(ge=0)]


class Common(ValuesModel):
    """`common`: settings shared by every component."""

    #: Name of this cluster. Management plane: the config cluster (default `mgmt`). Data
    #: plane: must equal the file's `<cluster>` name (or `--cluster` for install render).
    cluster: str | None = None
    #: Plain-text relay, no certificates. Demos only.
    insecure: bool = False


# -- relay secrets (names as in the Gloo chart) ---------------------------------------------


class ServerTlsSecret(ValuesModel):
    """The relay server's certificate and key."""

    name: SecretName = "relay-server-tls-secret"


class SigningTlsSecret(ValuesModel):
    """The intermediate CA that signs agent certificates."""

    name: SecretName = "relay-tls-signing-secret"


class RootTlsSecret(ValuesModel):
    """The relay root CA (`ca.crt`)."""

    name: SecretName = "relay-root-tls-secret"


class ClientTlsSecret(ValuesModel):
    """Where the agent keeps the certificate the server issued it (written by the agent)."""

    name: SecretName = "relay-client-tls-secret"


class TokenSecret(ValuesModel):
    """The bootstrap token an agent presents when it first registers."""

    name: SecretName = "relay-identity-token-secret"
    #: Namespace of the Secret; default (and only supported value): the install namespace.
    namespace: str | None = None
    key: Annotated[str, Field(min_length=1)] = "token"


class MgmtRelay(ValuesModel):
    """`glooMgmtServer.relay`: the gRPC relay (port 9900) agents dial."""

    #: Agents bring their own client certificates; no signing CA, no token.
    disable_ca: bool = False
    #: Accepted for Gloo compatibility: mesh-gitops never generates certificates in the
    #: cluster (`gitops pki init` writes them), whatever this says.
    disable_ca_cert_generation: bool = False
    #: Accepted for Gloo compatibility, as `disableCaCertGeneration`.
    disable_token_generation: bool = False
    tls_secret: ServerTlsSecret = ServerTlsSecret()
    signing_tls_secret: SigningTlsSecret = SigningTlsSecret()
    token_secret: TokenSecret = TokenSecret()
    #: Accepted for Gloo compatibility; mesh-gitops has no Gloo RBAC API to push.
    push_rbac: bool = True


class GlooMgmtServer(ValuesModel):
    """`glooMgmtServer`: the management server (`gitops serve`)."""

    enabled: bool = False
    #: Pods; one leader translates (Redis lock), all serve relay streams and HTTP.
    replicas: Annotated[int, Field(ge=1)] = 1
    #: After a start with an empty cache, translate nothing until every registered cluster
    #: has pushed a complete snapshot (DESIGN.md section 4). Default on.
    safe_mode: bool = True
    #: Seconds to wait for clusters with safe mode off, then translate; 0 = do not wait.
    safe_start_window: NonNegative = 0
    relay: MgmtRelay = MgmtRelay()
    extra_envs: ExtraEnvs = Field(default_factory=dict)
    #: Type of the `gloo-mesh-mgmt-server` Service; LoadBalancer so agents can reach 9900.
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "LoadBalancer"
    image: Image = Image()
    #: Default: requests of 125m CPU and 256Mi memory, no limits.
    resources: Resources = resources("125m", "256Mi")
    #: Merged into the rendered Deployment (maps merge, lists replace, null removes).
    deployment_overrides: Overrides | None = None
    #: Merged into the rendered Service, like `deploymentOverrides`.
    service_overrides: Overrides | None = None
    #: Gloo creates a `global` Workspace; mesh-gitops reads Workspaces from Git only.
    create_global_workspace: bool = False
    #: Gloo registers the management cluster as a workload cluster; mesh-gitops takes
    #: KubernetesClusters from Git only.
    register_cluster: bool = False


class AgentRelay(ValuesModel):
    """`glooAgent.relay`: how the agent reaches the management server."""

    #: The management server's relay, `host:9900`. Required unless insecure.
    server_address: Address | None = None
    #: TLS server name expected on the relay certificate.
    authority: Annotated[str, Field(min_length=1)] = "gloo-mesh-mgmt-server.gloo-mesh"
    client_tls_secret: ClientTlsSecret = ClientTlsSecret()
    root_tls_secret: RootTlsSecret = RootTlsSecret()
    token_secret: TokenSecret = TokenSecret()


class GlooAgent(ValuesModel):
    """`glooAgent`: the per-cluster agent (`gitops agent`)."""

    enabled: bool = False
    #: Plain-text relay for this agent (also implied by `common.insecure`).
    insecure: bool = False
    relay: AgentRelay = AgentRelay()
    extra_envs: ExtraEnvs = Field(default_factory=dict)
    image: Image = Image()
    #: Default: requests of 50m CPU and 128Mi memory, no limits.
    resources: Resources = resources("50m", "128Mi")
    deployment_overrides: Overrides | None = None
    service_overrides: Overrides | None = None


# -- redis ----------------------------------------------------------------------------------


class RedisDeployment(ValuesModel):
    """`redis.deployment`: the bundled Redis (`gloo-mesh-redis`), a disposable cache."""

    enabled: bool = True
    #: Redis I/O threads (`--io-threads`); 1 or unset = the main thread only. Each thread
    #: wants a core of its own besides the main thread's.
    io_threads: Annotated[int, Field(ge=1, le=128)] | None = None
    #: Default: requests of 125m CPU and 256Mi memory, no limits.
    resources: Resources = resources("125m", "256Mi")
    image: RedisImage = RedisImage()


class RedisAuth(ValuesModel):
    """`redis.auth`: username and password, from a Secret."""

    enabled: bool = False
    secret_name: SecretName | None = None
    username_key: Annotated[str, Field(min_length=1)] = "username"
    password_key: Annotated[str, Field(min_length=1)] = "password"


class RedisCerts(ValuesModel):
    """`redis.certs`: TLS to Redis, verified with the CA in a Secret."""

    enabled: bool = False
    secret_name: SecretName | None = None
    ca_cert_key: Annotated[str, Field(min_length=1)] = "ca.crt"


class RedisConnection(ValuesModel):
    """`redis.connection`: client timeouts, pool and retries.

    The Gloo chart leaves these unset, so its server runs with the go-redis v8 `Options`
    defaults (github.com/go-redis/redis/v8 options.go); these defaults are the same numbers.
    """

    #: Connect timeout. go-redis: 5s.
    dial_timeout: Duration = 5 * _S
    #: Socket read timeout. go-redis: 3s.
    read_timeout: Duration = 3 * _S
    #: Socket write timeout. go-redis: unset = `readTimeout`.
    write_timeout: Duration | None = None
    #: Connections in the pool. go-redis: unset = 10 per CPU of the server.
    pool_size: Annotated[int, Field(ge=1)] | None = None
    #: Idle connections kept open. go-redis: 0.
    min_idle_conns: NonNegative = 0
    #: Retries of a failed command; -1 = none. go-redis: 3.
    max_retries: Annotated[int, Field(ge=-1)] = 3
    #: Backoff before the first retry. go-redis: 8ms.
    min_retry_backoff: Duration = 8 * _MS
    #: Longest backoff between retries. go-redis: 512ms.
    max_retry_backoff: Duration = 512 * _MS
    #: Close connections idle this long; 0 = never. go-redis: 5m.
    idle_timeout: Duration = 300 * _S
    #: How often idle connections are reaped. go-redis: 1m.
    idle_check_frequency: Duration = 60 * _S
    #: Close connections older than this; 0 = never. go-redis: 0.
    max_conn_age: Duration = 0
    #: Reuse the oldest idle connection first (FIFO) instead of the newest. go-redis: false.
    pool_fifo: bool = False
    #: Wait for a free connection this long. go-redis: unset = `readTimeout` + 1s.
    pool_timeout: Duration | None = None

    @property
    def effective_write_timeout(self) -> int:
        return self.read_timeout if self.write_timeout is None else self.write_timeout

    @property
    def effective_pool_timeout(self) -> int:
        return self.read_timeout + _S if self.pool_timeout is None else self.pool_timeout


class Redis(ValuesModel):
    """`redis`: the management server's snapshot store (DESIGN.md section 4)."""

    deployment: RedisDeployment = RedisDeployment()
    #: External Redis, `host:port`. Unset with the bundled Redis: `gloo-mesh-redis:6379`.
    address: Address | None = None
    auth: RedisAuth = RedisAuth()
    certs: RedisCerts = RedisCerts()
    connection: RedisConnection = RedisConnection()


# -- observability and UI ---------------------------------------------------------------------


class Prometheus(ValuesModel):
    """`prometheus`: mesh-gitops installs no Prometheus; this annotates pods for scraping."""

    #: Add `prometheus.io/scrape` annotations (port 9091, `/metrics`) to our pods.
    enabled: bool = True


class Oidc(ValuesModel):
    """`glooUi.auth.oidc`: the identity provider for the UI."""

    app_url: str | None = None
    client_id: str | None = None
    client_secret_name: SecretName | None = None
    issuer_url: str | None = None


class UiAuth(ValuesModel):
    """`glooUi.auth`: log users in before showing the UI."""

    enabled: bool = False
    backend: Literal["oidc"] = "oidc"
    oidc: Oidc = Oidc()


class GlooUi(ValuesModel):
    """`glooUi`: the read-only UI the management server serves on port 8080."""

    enabled: bool = False
    auth: UiAuth = UiAuth()


# -- the whole file -----------------------------------------------------------------------------


class Values(ValuesModel):
    """One Helm values file (or several merged): management plane, data plane, or both."""

    common: Common = Common()
    gloo_mgmt_server: GlooMgmtServer = GlooMgmtServer()
    gloo_agent: GlooAgent = GlooAgent()
    redis: Redis = Redis()
    prometheus: Prometheus = Prometheus()
    gloo_ui: GlooUi = GlooUi()
    #: Any keys; mesh-gitops needs no license (a warning says so). Never copied anywhere.
    licensing: dict[str, Any] | None = None
    gitops: Gitops = Gitops()

    @property
    def agent_insecure(self) -> bool:
        """Whether the agent dials the relay without TLS."""
        return self.common.insecure or self.gloo_agent.insecure

    @property
    def fips(self) -> bool:
        """Every enabled mesh-gitops component runs a FIPS build (tag `*-fips`), and at
        least one is enabled. Redis, a third-party image, does not count."""
        images = [c.image for c in (self.gloo_mgmt_server, self.gloo_agent) if c.enabled]
        return bool(images) and all(image.fips for image in images)

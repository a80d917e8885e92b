"""The `gitops.*` block of the Helm values: what mesh-gitops adds to the Gloo chart's keys.

Part of `gitops.helm.models.Values` (DESIGN.md section 10): where the config repository is
and how it is read (`repo`), the Argo-style sync policy (`sync`), where commit statuses go
(`status`), which refs get pull-request previews (`previews`), and, in data-plane values, the
cluster's Istio trust domain (`mesh`). The management server reads it at start-up; the
install renderer mounts the Secrets it names; the loader validates it in `helm/` files.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from gitops import layout
from gitops.helm.fields import SecretName, ValuesModel
from gitops.models.base import Duration

_S = 1_000_000_000
_MS = 1_000_000

#: Istio trust domains are DNS-like names (`cluster.local`, `cluster1.example.com`).
_TRUST_DOMAIN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._")


def _glob(pattern: str) -> str:
    if problem := layout.glob_problem(pattern):
        raise ValueError(problem)
    return pattern


def _interval(nanos: int) -> int:
    # Below a second the poll would be a busy loop against the Git host.
    if nanos < _S:
        raise ValueError("interval must be at least 1s")
    return nanos


def _trust_domain(domain: str) -> str:
    if not domain or len(domain) > 255 or set(domain) - _TRUST_DOMAIN_CHARS:
        raise ValueError(f"{domain!r} is not a trust domain (letters, digits, '-', '.', '_')")
    return domain


class Repo(ValuesModel):
    """`gitops.repo`: the config repository the server follows."""

    #: Clone URL (`https://`, `ssh://`, `file://`).
    url: str | None = None
    #: Branch, tag or commit to sync. Default `main`.
    ref: Annotated[str, Field(min_length=1)] = "main"
    #: Repository-relative globs to read (as `gitops.yaml` `paths`); empty = everything.
    paths: list[Annotated[str, AfterValidator(_glob)]] = Field(default_factory=list)
    #: Poll interval, a Go duration of at least 1s. Default 30s.
    interval: Annotated[Duration, AfterValidator(_interval)] = 30 * _S
    #: Secret with the Git credentials.
    auth_secret: SecretName | None = None
    #: `head`: sync only commits whose head is signed by an allowed key. Default `none`.
    verify: Literal["none", "head"] = "none"
    #: Secret with the allowed signing keys (needed by `verify: head`).
    allowed_keys_secret: SecretName | None = None


class Sync(ValuesModel):
    """`gitops.sync`: Argo CD's sync policy switches."""

    #: Apply new commits without being asked. Default true.
    automated: bool = True
    #: Delete outputs that are no longer rendered. Default true.
    prune: bool = True
    #: Put back outputs changed in the cluster (drift). Default true.
    self_heal: bool = True
    #: Allow a sync to prune a cluster down to zero objects. Default false.
    allow_empty: bool = False
    #: Sync nothing while any resource is INVALID (instead of syncing the rest). Default false.
    fail_on_invalid: bool = False


class Status(ValuesModel):
    """`gitops.status`: where commit statuses are written (DESIGN.md section 9)."""

    #: `notes` (git notes, needs no Git host), `github`, `gitlab` or `gitea`. Default `notes`.
    provider: Literal["notes", "github", "gitlab", "gitea"] = "notes"
    #: Status context prefix. Default `mesh-gitops`.
    prefix: Annotated[str, Field(min_length=1)] = "mesh-gitops"
    #: API base URL for self-hosted hosts; default the provider's public API.
    api_url: str | None = None
    #: `owner/name` (GitHub, Gitea) or project path/id (GitLab); default from `repo.url`.
    repository: str | None = None
    #: Secret with the Git host's API token; needed by every provider but `notes`.
    token_secret: SecretName | None = None
    #: External base URL of the API listener (`https://mesh-gitops.example.com`): statuses
    #: link to `<reportsUrl>/reports/<sha>`. Default `http://<host>:<port>` of
    #: `gitops.listen.api` (this machine's host name for a 0.0.0.0 address).
    reports_url: Annotated[str, Field(pattern=r"^https?://[^/?#\s]+(/[^?#\s]*)?$")] | None = None


_DEFAULT_PREVIEW_REFS = ("refs/pull/*/head", "refs/merge-requests/*/head")


class Previews(ValuesModel):
    """`gitops.previews`: pull-request previews."""

    #: Ref patterns to preview. Default: GitHub/Gitea pull requests and GitLab merge requests.
    refs: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=lambda: list(_DEFAULT_PREVIEW_REFS)
    )


class Mesh(ValuesModel):
    """`gitops.mesh`: facts about this cluster's Istio (data-plane values)."""

    #: The cluster's Istio trust domain (workload identities `spiffe://<trustDomain>/...`).
    #: Default: the cluster name.
    trust_domain: Annotated[str, AfterValidator(_trust_domain)] | None = None


def _listen(address: str) -> str:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{address!r} is not a host:port address (port 0 picks a free one)")
    return address


#: `host:port` to listen on; port 0 picks a free port (the chosen one is logged and
#: written to `<dataDir>/ports.json`).
ListenAddress = Annotated[str, AfterValidator(_listen)]


class Listen(ValuesModel):
    """`gitops.listen`: where the management server listens (DESIGN.md section 11)."""

    #: The relay (gRPC, mutual TLS): Push, Pull, Renew.
    relay: ListenAddress = "0.0.0.0:9900"
    #: Agent registration (gRPC, server-only TLS): Register with the bootstrap token.
    registration: ListenAddress = "0.0.0.0:9901"
    #: `/healthz`, `/readyz`.
    health: ListenAddress = "0.0.0.0:8090"
    #: `/metrics` (Prometheus).
    metrics: ListenAddress = "0.0.0.0:9091"
    #: JSON API (`/api/clusters`), later webhooks and reports.
    api: ListenAddress = "0.0.0.0:8080"


def _ratio(value: float) -> float:
    if not 0 < value < 1:
        raise ValueError("must be between 0 and 1 (exclusive)")
    return value


class Relay(ValuesModel):
    """`gitops.relay`: certificates and registration (both sides of the relay)."""

    #: Lifetime of the client certificates the server issues. Default one year.
    cert_lifetime: Annotated[Duration, AfterValidator(_interval)] = 365 * 24 * 3600 * _S
    #: Agents renew when this fraction of the lifetime is left (with jitter). Default 0.1.
    renew_grace_ratio: Annotated[float, AfterValidator(_ratio)] = 0.1
    #: Agent side: the server's registration listener. Default: the host of
    #: `glooAgent.relay.serverAddress`, port 9901.
    registration_address: str | None = None


def _coalesce(nanos: int) -> int:
    # Zero would run one reconcile per delivery of a burst; a minute would make a
    # webhook no faster than the poll it is meant to beat.
    if not _MS * 10 <= nanos <= 60 * _S:
        raise ValueError("coalesce must be between 10ms and 1m")
    return nanos


class Webhooks(ValuesModel):
    """`gitops.webhooks`: push webhooks on the API listener (`POST /hooks/<provider>`)."""

    #: Secret holding one key per enabled provider: `github`, `gitea` (HMAC secrets),
    #: `gitlab`, `generic` (tokens). A provider without its key is not served (404).
    secret_name: SecretName | None = None
    #: Larger bodies are refused with 413 before they are read. Default 1 MiB.
    max_body_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 1024 * 1024
    #: Triggers arriving within this window start one reconcile. Default 250ms: it is
    #: waited on every push, and one push's deliveries and ref writes land well within it.
    coalesce: Annotated[Duration, AfterValidator(_coalesce)] = 250 * _MS


class Api(ValuesModel):
    """`gitops.api`: the JSON API on `gitops.listen.api` (`docs/endpoints.md`)."""

    #: Secret whose key `token` the API's write endpoints (`POST /api/sync`) require as
    #: `Authorization: Bearer <token>`. Unset: they are open (keep the listener private).
    token_secret: SecretName | None = None


def _lease(nanos: int) -> int:
    # Renewed every third of it: under a second would be a busy loop against Redis, and
    # over five minutes a crashed leader would leave the fleet unpublished that long.
    if not _S <= nanos <= 300 * _S:
        raise ValueError("lease must be between 1s and 5m")
    return nanos


class Leader(ValuesModel):
    """`gitops.leader`: leader election when several server replicas share one Redis."""

    #: How long the leader lock lasts unless renewed (every third of it). A replica that
    #: cannot renew in time stops publishing; another takes over within about this long.
    #: Default 15s.
    lease: Annotated[Duration, AfterValidator(_lease)] = 15 * _S


class Gitops(ValuesModel):
    """`gitops`: mesh-gitops' own settings."""

    #: Where the server and agents keep state (built-in Redis socket, ports.json, the
    #: agent's inventory). Default: `./.mesh-gitops` (`--data-dir` overrides).
    data_dir: str | None = None
    listen: Listen = Listen()
    relay: Relay = Relay()

    repo: Repo = Repo()
    sync: Sync = Sync()
    status: Status = Status()
    previews: Previews = Previews()
    mesh: Mesh = Mesh()
    webhooks: Webhooks = Webhooks()
    api: Api = Api()
    leader: Leader = Leader()

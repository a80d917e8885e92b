"""`gitops serve`: the management server, composed from its parts.

Called by the CLI (`controller/cli_runtime.py`), tests and `bench/relay.py`. `Server.start`
connects the snapshot store (an external Redis from `redis.*`, or a private
`redis-server` on a unix socket in the data dir), refuses a Redis that would evict keys,
loads the config repository named by `gitops.repo` (again on `reload`, which SIGHUP
calls; the continuous loop is issue 5's), starts the relay's two gRPC listeners, the HTTP
listeners (health, metrics, API), writes the chosen ports to `<dataDir>/ports.json`, and
runs the reconcile worker; it takes the leader lock if no other replica holds it
(`controller/server/replicas.py`). `stop` undoes all of it in reverse order.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc

from controller.pki import Authority
from controller.relay import credentials
from controller.relay.registration import Registrar
from controller.relay.service import RelayService
from controller.secrets import SecretsDir
from controller.server import http, listeners
from controller.server.fleet import Fleet
from controller.server.fleet_view import FleetView
from controller.server.git_loop import GitLoop
from controller.server.metrics import Metrics
from controller.server.replicas import Renewer
from controller.server.streams import pull_handler, push_handler
from controller.server.verification import Verification
from controller.sources import SourceError, open_source
from controller.sources.signatures import SignatureError
from controller.store import Lease, LocalRedis, Store, connect, retrying_for
from controller.store.leader import replica_id
from gitops import loading
from gitops.bundle import Bundle
from gitops.helm.models import Values
from gitops.statuses import Status

log = logging.getLogger(__name__)

_S = 1_000_000_000


#: gRPC worker threads: two per connected agent (Push, Pull), plus registrations.
RELAY_WORKERS = 1024


class ServeError(Exception):
    """The server cannot start; the message says what to fix."""


class Server:
    """A running management server (see the module docstring)."""

    def __init__(
        self, values: Values, secrets: SecretsDir | None, data_dir: Path, cache_dir: Path
    ) -> None:
        self.values, self.secrets, self.data_dir, self.cache_dir = (
            values,
            secrets,
            data_dir,
            cache_dir,
        )
        self.insecure = values.common.insecure
        self.stop_event = threading.Event()
        self.local_redis: LocalRedis | None = None
        self.grpc_server: grpc.Server | None = None
        self.http = listeners.HttpListeners()
        self.worker: threading.Thread | None = None
        self.ports: dict[str, int] = {}
        self.bundle: Bundle | None = None
        self.reload_lock = threading.Lock()
        self.loop: GitLoop | None = None
        self.renewer: Renewer | None = None
        #: `gitops.repo.verify: head`: built by the first `reload` (at start).
        self.verification: Verification | None = None
        #: The commit the last successful read of the repository found (loaded or refused).
        self.read_revision: str | None = None

    # -- start --------------------------------------------------------------------------------

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        store = self._store()
        self.metrics = Metrics()
        mgmt = self.values.gloo_mgmt_server
        # One try at start: a single replica leads from its first reconcile.
        lease = Lease(store.client, replica_id(), self.values.gitops.leader.lease / _S)
        lease.acquire()
        self.fleet = Fleet(
            store,
            self.metrics,
            safe_mode=mgmt.safe_mode,
            safe_start_window=mgmt.safe_start_window,
            sync=self.values.gitops.sync,
            lease=lease,
        )
        self.renewer = Renewer(lease, self.fleet)
        self.reload()
        service = RelayService(
            None if self.insecure else self._registrar(),
            push_handler(self.fleet),  # type: ignore[arg-type]
            pull_handler(self.fleet),  # type: ignore[arg-type]
            insecure=self.insecure,
        )
        listen = self.values.gitops.listen
        if self.insecure:
            log.warning("relay is INSECURE: plaintext, agents are not authenticated; demos only")
        creds = None if self.insecure else self._server_credentials()
        self.grpc_server, relay_port, registration_port = credentials.start_server(
            service,
            relay_address=listen.relay,
            registration_address=listen.registration,
            credentials=creds,
            # Each connected agent holds two streams (a worker each) for as long as it is
            # connected: size the pool for a large fleet, not for request throughput.
            max_workers=RELAY_WORKERS,
        )
        self.ports = {"relay": relay_port, "registration": registration_port}
        view = FleetView(self.fleet)
        self.ports["health"] = self.http.start("health", http.health_app(view), listen.health)
        self.ports["metrics"] = self.http.start(
            "metrics", http.metrics_app(self.metrics), listen.metrics
        )
        self.loop = GitLoop(self)
        api = http.api_app(view, extra_routes=self.loop.routes())
        self.ports["api"] = self.http.start("api", api, listen.api)
        listeners.write_ports(self.data_dir, self.ports)
        log.info("listening: %s", ", ".join(f"{k} {v}" for k, v in sorted(self.ports.items())))
        self.worker = threading.Thread(
            target=self.fleet.run, args=(self.stop_event,), name="reconcile", daemon=True
        )
        self.worker.start()
        self.renewer.start(self.stop_event)
        self.loop.start_statuses()

    def _store(self) -> Store:
        redis_values = self.values.redis
        if redis_values.address is None:
            self.local_redis = LocalRedis(self.data_dir / "redis")
            self.local_redis.start()
            client = connect(redis_values, None, unix_socket=self.local_redis.socket_path)
        else:
            client = connect(redis_values, self.secrets)
        store = Store(client, retrying=retrying_for(redis_values.connection))
        store.check_eviction_policy()
        return store

    def _need_secrets(self) -> SecretsDir:
        if self.secrets is None:
            raise ServeError("--secrets DIR is required unless common.insecure is true")
        return self.secrets

    def _registrar(self) -> Registrar:
        secrets = self._need_secrets()
        relay = self.values.gloo_mgmt_server.relay
        signing = relay.signing_tls_secret.name
        signer = Authority(
            key_pem=secrets.read(signing, "tls.key"),
            cert_pem=secrets.read(signing, "tls.crt"),
            chain_pem=secrets.read(signing, "tls.crt"),
        )
        token = secrets.read_text(relay.token_secret.name, relay.token_secret.key)
        root = secrets.read(signing, "ca.crt")
        lifetime = timedelta(microseconds=self.values.gitops.relay.cert_lifetime // 1000)
        return Registrar(
            token=token,
            signer=signer,
            root_pem=root,
            lifetime=lifetime,
            known_clusters=self._known_clusters,
            clock=lambda: datetime.now(UTC),
        )

    def _server_credentials(self) -> Any:
        return credentials.server_credentials(
            self._need_secrets(), self.values.gloo_mgmt_server.relay
        )

    def _known_clusters(self) -> set[str]:
        bundle = self.fleet.bundle
        return {o.name for o in bundle.of_kind("KubernetesCluster")} if bundle else set()

    # -- config -------------------------------------------------------------------------------

    def reload(self) -> str | None:
        """Read the config repository again (start, SIGHUP, and the Git loop's triggers);
        returns the commit in effect. A failure keeps the last config, so nothing is deleted
        because the repository could not be read; an unchanged commit changes nothing. With
        `gitops.repo.verify: head` a commit not signed by an allowed key is not loaded
        either (`controller/server/verification.py`); `read_revision` still names it."""
        repo = self.values.gitops.repo
        if repo.url is None:
            raise ServeError("gitops.repo.url is not set: the server has no config repository")
        with self.reload_lock:
            if repo.verify == "head" and self.verification is None:
                self.verification = self._verification()
            try:
                started = time.monotonic()
                tree = open_source(repo.url, repo.ref, self.cache_dir)
                self.metrics.reconcile_stage("fetch", time.monotonic() - started)
            except SourceError as exc:
                if self.bundle is None:
                    raise ServeError(str(exc)) from None
                log.error("config repository not read (keeping the last config): %s", exc)
                return self.bundle.revision
            self.read_revision = tree.revision
            if self.bundle is not None and tree.revision and tree.revision == self.bundle.revision:
                return tree.revision
            if self.verification is not None and self.verification.refusal(tree.revision):
                return self.bundle.revision if self.bundle is not None else None
            started = time.monotonic()
            self.bundle = loading.load(tree, previous=self.bundle)
            self.metrics.reconcile_stage("load", time.monotonic() - started)
            shown = tree.revision or tree.origin
            log.info("config %s: %d objects", shown, len(self.bundle.objects))
            self.fleet.set_config(self.bundle)
            return tree.revision

    def _verification(self) -> Verification:
        status = self.values.gitops.status
        try:
            return Verification.from_values(
                self.values.gitops.repo, status.prefix, self.secrets, self.cache_dir
            )
        except SignatureError as exc:
            raise ServeError(f"commit signature verification: {exc}") from None

    def refused_statuses(self) -> dict[tuple[str, str], Status]:
        """The Git loop's status source for commits verification refused."""
        return self.verification.statuses() if self.verification is not None else {}

    # -- stop ---------------------------------------------------------------------------------

    def stop(self) -> None:
        self.stop_event.set()
        if self.loop is not None:
            self.loop.stop()
        if self.grpc_server is not None:
            self.grpc_server.stop(grace=1).wait()
        self.http.stop()
        if self.worker is not None:
            self.worker.join(timeout=10)
        if self.renewer is not None:
            self.renewer.stop()
        if self.local_redis is not None:
            self.local_redis.stop()

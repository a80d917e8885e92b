"""`gitops agent`: one workload cluster's agent, from enrolment to streaming.

Called by the CLI (`controller/cli_runtime.py`) and by tests and benches that run agents
in-process. It gets its settings from the data-plane Helm values (`glooAgent.relay.*`,
`gitops.relay.*`), its secrets from the secrets directory, and a cluster backend
(`controller.backends`: a Kubernetes API or a directory).

Start: unless `insecure`, make sure it holds a valid client certificate
(`relay-client-tls-secret`); with none, or an expired one, register with the bootstrap
token over the registration listener. Then three threads: Push (inputs), Pull (outputs,
apply, drift) and renewal, which renews the certificate at the grace ratio (with jitter)
and swaps the channel, so the streams reconnect with the new certificate.
Nothing the agent does on a disconnect touches the cluster.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

import grpc

from controller.agent.streams import AppliedVersion, PullLoop, PushLoop
from controller.backends import ClusterBackend
from controller.relay import credentials, enroll
from controller.secrets import SecretsDir
from gitops.helm.models import Values

log = logging.getLogger(__name__)

#: Default registration port (`gitops.listen.registration` on the server).
REGISTRATION_PORT = 9901
#: Renewal jitter: up to this fraction of the lifetime earlier than the grace point.
RENEW_JITTER = 0.02
#: Seconds between two renewals at the least.
MIN_RENEW_INTERVAL = 1.0


class AgentError(Exception):
    """The agent cannot start (missing address or secrets); the message says what to fix."""


def registration_address(values: Values) -> str:
    configured = values.gitops.relay.registration_address
    if configured:
        return configured
    server = values.gloo_agent.relay.server_address
    if server is None:
        raise AgentError("glooAgent.relay.serverAddress is not set")
    host = server.rpartition(":")[0]
    return f"{host}:{REGISTRATION_PORT}"


class Agent:
    """A running agent (see the module docstring)."""

    def __init__(
        self,
        cluster: str,
        values: Values,
        secrets: SecretsDir,
        backend: ClusterBackend,
        data_dir: Path,
    ) -> None:
        self.cluster, self.values, self.secrets, self.backend = cluster, values, secrets, backend
        self.relay = values.gloo_agent.relay
        if self.relay.server_address is None:
            raise AgentError("glooAgent.relay.serverAddress is not set")
        self.address: str = self.relay.server_address
        self.insecure = values.agent_insecure
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self._channel: grpc.Channel | None = None
        self._chain = b""
        self.push = PushLoop(cluster, backend, self.channel, self.stop_event)
        applied = AppliedVersion(data_dir / f"agent-{cluster}.json")
        self.pull = PullLoop(cluster, backend, self.channel, self.stop_event, applied)
        self.threads: list[threading.Thread] = []

    # -- channels -----------------------------------------------------------------------------

    def _root(self) -> bytes:
        return self.secrets.read(self.relay.root_tls_secret.name, "ca.crt")

    def enrol(self) -> None:
        """Hold a valid client certificate (register with the token if there is none)."""
        if self.insecure:
            log.warning(
                "agent %s: relay is INSECURE (plaintext, no identity); demos only", self.cluster
            )
            with self.lock:
                self._channel = credentials.plaintext_channel(self.address)
            return
        identity = enroll.client_identity(self.secrets, self.relay)
        if identity is None:
            address = registration_address(self.values)
            log.info("agent %s: registering at %s", self.cluster, address)
            channel = credentials.registration_channel(address, self._root(), self.relay.authority)
            try:
                identity = enroll.register(channel, self.secrets, self.relay, self.cluster)
            finally:
                channel.close()
        self._use(identity)

    def _use(self, identity: tuple[bytes, bytes]) -> None:
        key, chain = identity
        channel = credentials.relay_channel(
            self.address, self._root(), key, chain, self.relay.authority
        )
        with self.lock:
            old, self._channel, self._chain = self._channel, channel, chain
        if old is not None:
            old.close()  # live streams end and reconnect with the new certificate

    def channel(self) -> grpc.Channel:
        with self.lock:
            if self._channel is None:
                raise AgentError("agent not enrolled")
            return self._channel

    # -- running --------------------------------------------------------------------------------

    def start(self) -> None:
        self.enrol()
        self.backend.watch_inputs(self.push.on_inputs)
        self.backend.watch_drift(self.pull.on_drift)
        targets = [("push", self.push.run), ("pull", self.pull.run)]
        if not self.insecure:
            targets.append(("renew", self._renew_loop))
        for name, target in targets:
            thread = threading.Thread(target=target, name=f"{name}-{self.cluster}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def stop(self) -> None:
        self.stop_event.set()
        self.push.close()
        self.pull.close()
        with self.lock:
            channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()
        for thread in self.threads:
            thread.join(timeout=10)
        self.backend.close()

    def _renew_loop(self) -> None:
        ratio = self.values.gitops.relay.renew_grace_ratio
        while not self.stop_event.is_set():
            at = enroll.renew_at(self._chain, ratio, jitter=RENEW_JITTER, now=datetime.now(UTC))
            # At least a second apart, whatever a certificate says: never a renewal storm.
            delay = max(MIN_RENEW_INTERVAL, (at - datetime.now(UTC)).total_seconds())
            if self.stop_event.wait(delay):
                return
            try:
                self._use(enroll.renew(self.channel(), self.secrets, self.relay, self.cluster))
                log.info("agent %s: certificate renewed", self.cluster)
            except grpc.RpcError as exc:
                log.warning(
                    "agent %s: renewal failed (%s); registering again",
                    self.cluster,
                    exc.code() if hasattr(exc, "code") else exc,
                )
                try:
                    self._reregister()
                except Exception as again:  # keep the old certificate; retry shortly
                    log.warning("agent %s: registration failed: %s", self.cluster, again)
                    self.stop_event.wait(5.0)

    def _reregister(self) -> None:
        address = registration_address(self.values)
        channel = credentials.registration_channel(address, self._root(), self.relay.authority)
        try:
            self._use(enroll.register(channel, self.secrets, self.relay, self.cluster))
        finally:
            channel.close()

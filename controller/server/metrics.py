"""Prometheus metrics of the management server, and the app that serves them.

DESIGN.md section 11: `/metrics` on `gitops.listen.metrics` (9091). The serve command makes
one `Metrics` per server and passes it to the parts that observe something: the relay
(agent streams, push and output ACK latencies, NACKs, snapshot sizes), the loop
(translation time and outcome) and the safe-mode gate. `metrics_app` serves its registry.

Each `Metrics` owns a private `CollectorRegistry`, never prometheus_client's global one:
tests, and several servers in one process (the demo runs two), would otherwise collide on
metric names. For the same reason nothing here registers process or platform collectors;
the serve command may add them to its own instance.

Label values are the cluster names and the reason vocabulary (`gitops.reasons`), so the
cardinality is bounded by the fleet size.
"""

from __future__ import annotations

from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = ["Metrics", "Stage", "metrics_app"]

_PREFIX = "mesh_gitops"

#: Input delta received -> stored in Redis and ACKed: a Redis round trip or a few, so
#: milliseconds; the top buckets catch a slow or failing-over store.
_PUSH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Output published -> agent ACK: includes the agent's server-side apply of every object,
#: so seconds, up to minutes on a slow API server.
_ACK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
#: One translation: milliseconds incrementally, seconds for a full fleet.
_TRANSLATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: One stage of a reconcile (fetch, load, translate, publish): a millisecond to a minute.
_STAGE_BUCKETS = (0.001, 0.0025, *_TRANSLATION_BUCKETS)
#: The stages `reconcile_stage` observes: `Server.reload` (fetch, load), `Fleet.reconcile`.
Stage = Literal["fetch", "load", "translate", "publish"]


class Metrics:
    """The server's metric families, on a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._connected = Gauge(
            f"{_PREFIX}_relay_clients_connected",
            "Agent relay streams open, per cluster and stream (push: inputs, pull: outputs).",
            ["cluster", "stream"],
            registry=r,
        )
        self._snapshot_objects = Gauge(
            f"{_PREFIX}_snapshot_objects",
            "Objects in the cluster's latest stored snapshot (inputs pushed, outputs published).",
            ["cluster", "kind"],
            registry=r,
        )
        self._snapshot_bytes = Gauge(
            f"{_PREFIX}_snapshot_bytes",
            "Serialized size in bytes of the cluster's latest stored snapshot.",
            ["cluster", "kind"],
            registry=r,
        )
        self._safe_mode = Gauge(
            f"{_PREFIX}_safe_mode",
            "1 while safe mode (or the start window) holds translation back.",
            registry=r,
        )
        self._leader = Gauge(
            f"{_PREFIX}_leader",
            "1 while this replica holds the leader lock and publishes (gitops.leader).",
            registry=r,
        )
        self._awaited = Gauge(
            f"{_PREFIX}_safe_mode_awaited_clusters",
            "Registered clusters that have not pushed a complete snapshot since warming began.",
            registry=r,
        )
        self._push_latency = Histogram(
            f"{_PREFIX}_push_ack_seconds",
            "Input delta received from an agent -> stored and ACKed.",
            ["cluster"],
            buckets=_PUSH_BUCKETS,
            registry=r,
        )
        self._ack_latency = Histogram(
            f"{_PREFIX}_output_ack_seconds",
            "Output version published -> the agent ACKed it as applied.",
            ["cluster"],
            buckets=_ACK_BUCKETS,
            registry=r,
        )
        self._nacks = Counter(
            f"{_PREFIX}_output_nacks",
            "Output versions an agent refused (NACK) or failed to apply.",
            ["cluster"],
            registry=r,
        )
        # As controller-runtime does for reconciles: the duration histogram is not split by
        # outcome (one latency picture, fewer series), the counter is.
        self._translation_seconds = Histogram(
            f"{_PREFIX}_translation_seconds",
            "Duration of one translation (incremental or full), whatever its outcome.",
            buckets=_TRANSLATION_BUCKETS,
            registry=r,
        )
        self._translations = Counter(
            f"{_PREFIX}_translations",
            "Translations run, by outcome.",
            ["outcome"],
            registry=r,
        )
        self._stage_seconds = Histogram(
            f"{_PREFIX}_reconcile_stage_seconds",
            "Duration of one reconcile stage: fetch and load (a config reload), translate "
            "and publish (the fleet's reconcile; publish only when a cluster changed).",
            ["stage"],
            buckets=_STAGE_BUCKETS,
            registry=r,
        )

    def agent_connected(
        self, cluster: str, stream: Literal["push", "pull"], connected: bool
    ) -> None:
        """An agent's relay stream opened (`connected`) or closed."""
        self._connected.labels(cluster=cluster, stream=stream).set(1 if connected else 0)

    def snapshot_size(
        self, cluster: str, kind: Literal["inputs", "outputs"], objects: int, size_bytes: int
    ) -> None:
        """The cluster's latest stored input or output snapshot has this size."""
        self._snapshot_objects.labels(cluster=cluster, kind=kind).set(objects)
        self._snapshot_bytes.labels(cluster=cluster, kind=kind).set(size_bytes)

    def safe_mode(self, active: bool, awaited: int) -> None:
        """The safe-mode gate after the latest decision."""
        self._safe_mode.set(1 if active else 0)
        self._awaited.set(awaited)

    def push_latency(self, cluster: str, seconds: float) -> None:
        """One input delta from `cluster` took `seconds` from receipt to stored and ACKed."""
        self._push_latency.labels(cluster=cluster).observe(seconds)

    def ack_latency(self, cluster: str, seconds: float) -> None:
        """`cluster`'s agent ACKed an output version `seconds` after it was published."""
        self._ack_latency.labels(cluster=cluster).observe(seconds)

    def nack(self, cluster: str) -> None:
        """`cluster`'s agent NACKed an output version."""
        self._nacks.labels(cluster=cluster).inc()

    def translation(self, seconds: float, outcome: str) -> None:
        """A translation finished after `seconds`; `outcome` is a CamelCase reason word."""
        self._translation_seconds.observe(seconds)
        self._translations.labels(outcome=outcome).inc()

    def reconcile_stage(self, stage: Stage, seconds: float) -> None:
        """One stage of a reconcile took `seconds` (`bench/e2e.py` splits its latency so)."""
        self._stage_seconds.labels(stage=stage).observe(seconds)

    def leader(self, leading: bool) -> None:
        self._leader.set(1 if leading else 0)

    def forget_cluster(self, cluster: str) -> None:
        """Drop `cluster`'s series: it was deregistered (its KubernetesCluster removed).

        A gone cluster would otherwise be exported at its last values forever.
        """
        for family in (
            self._connected,
            self._snapshot_objects,
            self._snapshot_bytes,
            self._push_latency,
            self._ack_latency,
            self._nacks,
        ):
            family.remove_by_labels({"cluster": cluster})


def metrics_app(metrics: Metrics) -> Starlette:
    """`GET /metrics`: `metrics.registry` in the text format the scraper asks for."""

    def scrape(request: Request) -> Response:
        # Prometheus text by default; OpenMetrics when the scraper's Accept asks for it
        # (Prometheus does, and only OpenMetrics carries exemplars and `_created`).
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(metrics.registry), headers={"Content-Type": content_type})

    return Starlette(routes=[Route("/metrics", scrape, methods=["GET"])])

"""The server's Prometheus metrics: every family is exported after its call, per instance."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from controller.server.listeners import HttpListeners
from controller.server.metrics import Metrics, metrics_app


@pytest.fixture
def scrape() -> Iterator[tuple[Metrics, httpx.Client]]:
    metrics = Metrics()
    with HttpListeners() as listeners:
        port = listeners.start("metrics", metrics_app(metrics), "127.0.0.1:0")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            yield metrics, client


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value, from Prometheus text."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def observe_everything(metrics: Metrics) -> None:
    metrics.agent_connected("cluster1", "push", True)
    metrics.agent_connected("cluster1", "pull", True)
    metrics.agent_connected("cluster1", "pull", False)
    metrics.snapshot_size("cluster1", "inputs", 42, 9000)
    metrics.snapshot_size("cluster1", "outputs", 7, 3000)
    metrics.safe_mode(True, 2)
    metrics.push_latency("cluster1", 0.004)
    metrics.ack_latency("cluster1", 1.5)
    metrics.nack("cluster1")
    metrics.nack("cluster1")
    metrics.translation(0.2, "Published")
    metrics.translation(0.02, "LoadFailed")
    metrics.translation(0.3, "Published")


def test_metrics_exports_every_family_after_its_call(
    scrape: tuple[Metrics, httpx.Client],
) -> None:
    metrics, client = scrape
    observe_everything(metrics)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    got = samples(response.text)
    c1 = ("cluster", "cluster1")
    assert got["mesh_gitops_relay_clients_connected", (c1, ("stream", "push"))] == 1
    assert got["mesh_gitops_relay_clients_connected", (c1, ("stream", "pull"))] == 0
    assert got["mesh_gitops_snapshot_objects", (c1, ("kind", "inputs"))] == 42
    assert got["mesh_gitops_snapshot_bytes", (c1, ("kind", "inputs"))] == 9000
    assert got["mesh_gitops_snapshot_objects", (c1, ("kind", "outputs"))] == 7
    assert got["mesh_gitops_snapshot_bytes", (c1, ("kind", "outputs"))] == 3000
    assert got["mesh_gitops_safe_mode", ()] == 1
    assert got["mesh_gitops_safe_mode_awaited_clusters", ()] == 2
    assert got["mesh_gitops_push_ack_seconds_count", (c1,)] == 1
    assert got["mesh_gitops_push_ack_seconds_bucket", (c1, ("le", "0.005"))] == 1
    assert got["mesh_gitops_push_ack_seconds_bucket", (c1, ("le", "0.0025"))] == 0
    assert got["mesh_gitops_output_ack_seconds_sum", (c1,)] == 1.5
    assert got["mesh_gitops_output_nacks_total", (c1,)] == 2
    assert got["mesh_gitops_translation_seconds_count", ()] == 3
    assert got["mesh_gitops_translations_total", (("outcome", "Published"),)] == 2
    assert got["mesh_gitops_translations_total", (("outcome", "LoadFailed"),)] == 1


def test_leaving_safe_mode_resets_its_gauges(scrape: tuple[Metrics, httpx.Client]) -> None:
    metrics, client = scrape
    metrics.safe_mode(True, 3)
    metrics.safe_mode(False, 0)
    got = samples(client.get("/metrics").text)
    assert got["mesh_gitops_safe_mode", ()] == 0
    assert got["mesh_gitops_safe_mode_awaited_clusters", ()] == 0


def test_a_fresh_server_exports_no_per_cluster_series(scrape: tuple[Metrics, httpx.Client]) -> None:
    _, client = scrape
    text = client.get("/metrics").text
    assert "# TYPE mesh_gitops_relay_clients_connected gauge" in text
    assert 'cluster="' not in text


def test_openmetrics_is_served_when_the_scraper_asks_for_it(
    scrape: tuple[Metrics, httpx.Client],
) -> None:
    metrics, client = scrape
    metrics.nack("cluster1")
    response = client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")
    assert 'mesh_gitops_output_nacks_total{cluster="cluster1"} 1.0' in response.text


def test_forgetting_a_cluster_drops_only_its_series() -> None:
    metrics = Metrics()
    for name in ("cluster1", "cluster2"):
        metrics.agent_connected(name, "push", True)
        metrics.snapshot_size(name, "inputs", 1, 10)
        metrics.push_latency(name, 0.01)
        metrics.ack_latency(name, 0.5)
        metrics.nack(name)
    metrics.forget_cluster("cluster1")
    metrics.forget_cluster("never-seen")
    registry = metrics.registry
    labels = {"cluster": "cluster1", "stream": "push"}
    assert registry.get_sample_value("mesh_gitops_relay_clients_connected", labels) is None
    assert (
        registry.get_sample_value("mesh_gitops_output_nacks_total", {"cluster": "cluster1"}) is None
    )
    assert (
        registry.get_sample_value("mesh_gitops_push_ack_seconds_count", {"cluster": "cluster1"})
        is None
    )
    labels2 = {"cluster": "cluster2", "stream": "push"}
    assert registry.get_sample_value("mesh_gitops_relay_clients_connected", labels2) == 1
    assert registry.get_sample_value("mesh_gitops_output_nacks_total", {"cluster": "cluster2"}) == 1


def test_two_instances_in_one_process_do_not_clash() -> None:
    # Registering the same names twice on one registry raises; each instance has its own.
    first, second = Metrics(), Metrics()
    first.nack("cluster1")
    second.nack("cluster1")
    second.nack("cluster1")
    labels = {"cluster": "cluster1"}
    assert first.registry is not second.registry
    assert first.registry.get_sample_value("mesh_gitops_output_nacks_total", labels) == 1
    assert second.registry.get_sample_value("mesh_gitops_output_nacks_total", labels) == 2


def test_two_metrics_apps_serve_their_own_registries() -> None:
    first, second = Metrics(), Metrics()
    first.safe_mode(True, 1)
    second.safe_mode(False, 0)
    with HttpListeners() as listeners:
        one = listeners.start("metrics-1", metrics_app(first), "127.0.0.1:0")
        two = listeners.start("metrics-2", metrics_app(second), "127.0.0.1:0")
        with httpx.Client() as client:
            a = samples(client.get(f"http://127.0.0.1:{one}/metrics").text)
            b = samples(client.get(f"http://127.0.0.1:{two}/metrics").text)
    assert a["mesh_gitops_safe_mode", ()] == 1
    assert b["mesh_gitops_safe_mode", ()] == 0


def test_metrics_leave_the_global_registry_alone() -> None:
    Metrics().nack("cluster1")
    assert (
        REGISTRY.get_sample_value("mesh_gitops_output_nacks_total", {"cluster": "cluster1"}) is None
    )


def test_only_get_metrics_is_served(scrape: tuple[Metrics, httpx.Client]) -> None:
    _, client = scrape
    assert client.get("/").status_code == 404
    assert client.post("/metrics").status_code == 405

"""End to end: safe mode and the start window with a cluster missing, and certificate
renewal under live streams."""

from __future__ import annotations

from typing import Any

from controller import pki
from controller.server.fleet_view import FleetView
from tests.support.runtime import Installation, commit, wait_until

RETRIES = "bookinfo/policies/retry-timeout.yaml"


def _pushed(install: Installation, cluster: str) -> bool:
    c = install.running.fleet.clusters.get(cluster)
    return bool(c and c.complete)


def test_safe_mode_publishes_nothing_until_every_registered_cluster_pushed(
    install: Installation,
) -> None:
    server = install.start_server()
    install.start_agent("cluster1")
    wait_until(lambda: _pushed(install, "cluster1"), what="cluster1's snapshot")
    view = FleetView(server.fleet)
    wait_until(lambda: view.safe_mode().awaited == ("cluster2",), what="the gate to name cluster2")
    assert view.safe_mode().active
    assert server.fleet.clusters["cluster1"].version == 0  # nothing translated from half a fleet
    install.start_agent("cluster2")
    install.wait_synced()
    assert not view.safe_mode().active


def test_a_start_window_translates_without_a_missing_cluster_and_freezes_it(
    install: Installation,
) -> None:
    install.server_overrides = {"glooMgmtServer": {"safeMode": False, "safeStartWindow": 1}}
    server = install.start_server()
    install.start_agent("cluster1")
    install.wait_synced("cluster1")  # published once the one-second window was over
    view = FleetView(server.fleet)
    states = {s.name: s for s in view.clusters()}
    assert not view.safe_mode().active
    assert states["cluster2"].pushes_frozen and states["cluster2"].output_version is None
    # cluster2 joins later: it gets its outputs then.
    install.start_agent("cluster2")
    install.wait_synced("cluster2")


def _serial(install: Installation, cluster: str) -> int:
    chain = install.agent_secrets(cluster).read("relay-client-tls-secret", "tls.crt")
    return int(pki.certificates(chain)[0].serial_number)


def test_agents_renew_short_lived_certificates_and_keep_syncing(install: Installation) -> None:
    install.server_overrides = {"gitops": {"relay": {"certLifetime": "4s"}}}
    server = install.start_server()
    raw: dict[str, Any] = install.agent_values_raw("cluster1")
    raw["gitops"]["relay"]["renewGraceRatio"] = 0.5
    install.start_agent("cluster1", raw)
    install.start_agent("cluster2")
    install.wait_synced()
    first = _serial(install, "cluster1")
    wait_until(lambda: _serial(install, "cluster1") != first, what="a renewed certificate")
    second = _serial(install, "cluster1")
    wait_until(lambda: _serial(install, "cluster1") != second, what="a second renewal")
    # The streams came back on the new certificates: a config change still arrives.
    text = (install.repo / RETRIES).read_text()
    commit(install.repo, "more retries", {RETRIES: text.replace("attempts: 3", "attempts: 4")})
    before = server.fleet.clusters["cluster1"].version
    server.reload()
    wait_until(
        lambda: server.fleet.clusters["cluster1"].version > before and install.synced("cluster1"),
        what="the change applied after renewals",
    )

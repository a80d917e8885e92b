"""`Registrar` on its own: the token, the naming rules, the config's clusters, and the token
kept out of every message and log line."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from controller import pki
from controller.relay.registration import (
    Registrar,
    RegistrationRefused,
    check_cluster_name,
    registrar_from_secrets,
)
from controller.secrets import SecretError, SecretsDir
from gitops.helm.models import MgmtRelay
from tests.support.pki import Pki, make_pki


@pytest.fixture
def mgmt(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


def refusal(call: object) -> RegistrationRefused:
    assert callable(call)
    with pytest.raises(RegistrationRefused) as info:
        call()
    return info.value


def test_check_cluster_name() -> None:
    assert check_cluster_name("cluster-1") is None
    reason = check_cluster_name("Cluster_1")
    assert reason is not None
    assert reason.startswith("cluster 'Cluster_1' breaks the naming rules: ")
    assert "'_'" in reason
    long = check_cluster_name("a" * 5000)
    assert long is not None and "5000 characters" in long and len(long) < 400
    assert check_cluster_name("1cluster") is not None
    assert check_cluster_name("") is not None


def test_register_issues_for_a_known_cluster(mgmt: Pki) -> None:
    _, csr = pki.new_key_and_csr("cluster1")
    chain, root = mgmt.registrar().register("cluster1", mgmt.token, csr)
    assert root == mgmt.root_pem
    assert pki.cluster_of(chain) == "cluster1"


def test_wrong_token_is_unauthenticated_and_never_echoed(
    mgmt: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _, csr = pki.new_key_and_csr("cluster1")
    wrong = mgmt.token[:-1] + ("A" if mgmt.token[-1] != "A" else "B")
    refused = refusal(lambda: mgmt.registrar().register("cluster1", wrong, csr))
    assert refused.code == grpc.StatusCode.UNAUTHENTICATED
    assert refused.reason == "wrong token"
    assert "wrong token" in caplog.text
    for text in (str(refused), caplog.text):
        assert wrong not in text and mgmt.token not in text
    # A non-ASCII token is just wrong, not a crash in compare_digest.
    assert refusal(lambda: mgmt.registrar().register("cluster1", "tökén", csr)).code == (
        grpc.StatusCode.UNAUTHENTICATED
    )


def test_token_is_checked_before_anything_about_the_cluster(mgmt: Pki) -> None:
    _, csr = pki.new_key_and_csr("cluster9")
    refused = refusal(lambda: mgmt.registrar().register("cluster9", "nope", csr))
    assert refused.code == grpc.StatusCode.UNAUTHENTICATED


def test_unknown_cluster_is_permission_denied(mgmt: Pki) -> None:
    _, csr = pki.new_key_and_csr("cluster9")
    refused = refusal(lambda: mgmt.registrar().register("cluster9", mgmt.token, csr))
    assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    assert refused.reason == "no KubernetesCluster named 'cluster9' in the config"


def test_bad_name_is_invalid_argument(mgmt: Pki) -> None:
    _, csr = pki.new_key_and_csr("cluster1")
    registrar = mgmt.registrar(frozenset({"Cluster_1"}))  # even if the config had it
    refused = refusal(lambda: registrar.register("Cluster_1", mgmt.token, csr))
    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.reason.startswith("cluster 'Cluster_1' breaks the naming rules")


def test_bad_csr_is_invalid_argument(mgmt: Pki) -> None:
    refused = refusal(lambda: mgmt.registrar().register("cluster1", mgmt.token, b"not a csr"))
    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "CSR" in refused.reason


def test_renew_follows_the_config(mgmt: Pki) -> None:
    _, csr = pki.new_key_and_csr("cluster2")
    chain, _ = mgmt.registrar().renew("cluster2", csr)
    assert pki.cluster_of(chain) == "cluster2"
    removed = mgmt.registrar(frozenset({"cluster1"}))
    assert refusal(lambda: removed.renew("cluster2", csr)).code == (
        grpc.StatusCode.PERMISSION_DENIED
    )


def test_registrar_from_secrets(mgmt: Pki, tmp_path: Path) -> None:
    def build(secrets: SecretsDir, relay: MgmtRelay) -> Registrar | None:
        return registrar_from_secrets(
            secrets,
            relay,
            lifetime=timedelta(days=1),
            known_clusters=lambda: {"cluster1"},
            clock=lambda: datetime.now(UTC),
        )

    registrar = build(mgmt.secrets, MgmtRelay())
    assert registrar is not None
    _, csr = pki.new_key_and_csr("cluster1")
    assert pki.cluster_of(registrar.register("cluster1", mgmt.token, csr)[0]) == "cluster1"
    assert build(mgmt.secrets, MgmtRelay.model_validate({"disableCa": True})) is None

    other = make_pki(tmp_path / "other")
    (tmp_path / "other" / pki.TOKEN_SECRET / "token").unlink()
    with pytest.raises(SecretError, match=f"Secret {pki.TOKEN_SECRET} has no key token"):
        build(other.secrets, MgmtRelay())

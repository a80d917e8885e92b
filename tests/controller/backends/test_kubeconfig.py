"""kubeconfig.load: plugin users refused in foreign files, allowed in the machine's own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.backends.kubeconfig import KubeconfigError, load, local_kubeconfigs
from tests.support.kube_api import KubeApiStandIn


def kubeconfig(path: Path, server: str, user: dict[str, Any]) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "agent-user", "user": user}],
                "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "agent-user"}}],
                "current-context": "ctx",
            }
        )
    )
    return path


CREDENTIAL = {
    "apiVersion": "client.authentication.k8s.io/v1",
    "kind": "ExecCredential",
    "status": {"token": "from-exec"},
}
EXEC = {
    "exec": {
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": "sh",
        "args": ["-c", f"echo '{json.dumps(CREDENTIAL)}'"],
        "interactiveMode": "Never",
    }
}


@pytest.mark.parametrize(
    "user", [EXEC, {"auth-provider": {"name": "oidc", "config": {}}}], ids=["exec", "provider"]
)
def test_a_foreign_kubeconfig_with_plugins_is_refused(tmp_path: Path, user: dict[str, Any]) -> None:
    path = kubeconfig(tmp_path / "from-git.yaml", "http://127.0.0.1:1", user)
    with pytest.raises(KubeconfigError) as err:
        load(path, None, trusted=[tmp_path / "home" / ".kube" / "config"])
    assert str(path) in str(err.value) and "agent-user" in str(err.value)


def test_a_token_kubeconfig_reaches_the_api(tmp_path: Path) -> None:
    with KubeApiStandIn() as api:
        path = kubeconfig(tmp_path / "agent.yaml", api.url, {"token": "t0ken"})
        client = load(path, "ctx", trusted=[])
        try:
            assert client.configuration.host == api.url
            assert client.configuration.api_key == {"BearerToken": "Bearer t0ken"}
        finally:
            client.close()


def test_the_machines_own_kubeconfig_may_use_exec(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config", "http://127.0.0.1:1", EXEC)
    client = load(None, "ctx", trusted=[path])
    try:
        assert client.configuration.api_key == {"BearerToken": "Bearer from-exec"}
    finally:
        client.close()


def test_missing_kubeconfig_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(KubeconfigError, match=r"nope\.yaml"):
        load(tmp_path / "nope.yaml", None, trusted=[])


def test_local_kubeconfigs_follow_the_environment(tmp_path: Path) -> None:
    env = {"KUBECONFIG": f"{tmp_path / 'a'}:{tmp_path / 'b'}"}
    assert local_kubeconfigs(env, tmp_path) == [tmp_path / "a", tmp_path / "b"]
    assert local_kubeconfigs({}, tmp_path) == [tmp_path / ".kube" / "config"]

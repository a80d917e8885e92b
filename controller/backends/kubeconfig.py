"""Connecting to a cluster: a kubeconfig (file, context) or the pod's own service account.

Called by the agent command (`gitops agent --kubeconfig/--context`) to build the `ApiClient`
a `KubernetesBackend` uses. A kubeconfig user with an `exec` or `auth-provider` plugin runs a
program of the file author's choosing with the agent's privileges (Flux CVE-2022-24817), so
such a file is refused unless it is the local machine's own configuration (`$KUBECONFIG`
or `~/.kube/config`), which its owner wrote for themselves. The refusal names the file and
the user so the fix is obvious: use a token or client-certificate user, or run in the cluster.

With neither a file nor a context, inside a pod (the service-account token is mounted and
`KUBERNETES_SERVICE_HOST` is set) the in-cluster configuration is used; elsewhere the
local machine's default kubeconfig.

`local_kubeconfigs` is the one place that reads the environment; the CLI may pass its own
list as `trusted` instead.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import kubernetes.client
import kubernetes.config
import yaml

from controller.backends import BackendError

__all__ = ["KubeconfigError", "load", "local_kubeconfigs"]

_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
_PLUGINS = ("exec", "auth-provider")


class KubeconfigError(BackendError):
    """The kubeconfig cannot be used (missing, malformed, or refused for its plugins)."""


def local_kubeconfigs(
    environ: Mapping[str, str] | None = None, home: Path | None = None
) -> list[Path]:
    """The local machine's own kubeconfig files: `$KUBECONFIG`'s entries, else ~/.kube/config."""
    env = os.environ if environ is None else environ
    listed = [Path(p) for p in env.get("KUBECONFIG", "").split(os.pathsep) if p]
    return listed or [(home or Path.home()) / ".kube" / "config"]


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _check_plugins(path: Path, doc: Any) -> None:
    users = doc.get("users") if isinstance(doc, dict) else None
    for entry in users or []:
        user = entry.get("user") if isinstance(entry, dict) else None
        if not isinstance(user, dict):
            continue
        for plugin in _PLUGINS:
            if user.get(plugin):
                raise KubeconfigError(
                    f"kubeconfig '{path}': user '{entry.get('name', '?')}' uses an {plugin} "
                    f"plugin, which would run a program; only the local machine's own "
                    f"kubeconfig may do that. Use a token or client-certificate user."
                )


def _in_pod(environ: Mapping[str, str]) -> bool:
    return bool(environ.get("KUBERNETES_SERVICE_HOST")) and _TOKEN.exists()


def load(
    kubeconfig: Path | None,
    context: str | None,
    *,
    trusted: Collection[Path] | None = None,
) -> kubernetes.client.ApiClient:
    """An `ApiClient` for the cluster (see the module docstring); raises `KubeconfigError`."""
    if kubeconfig is None and context is None and _in_pod(os.environ):
        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration
        )
        return kubernetes.client.ApiClient(configuration)
    local = local_kubeconfigs() if trusted is None else list(trusted)
    path = kubeconfig if kubeconfig is not None else local[0]
    try:
        doc = yaml.safe_load(path.read_bytes())
    except OSError as err:
        raise KubeconfigError(f"cannot read kubeconfig '{path}': {err.strerror}") from None
    except yaml.YAMLError as err:
        raise KubeconfigError(f"kubeconfig '{path}' is not valid YAML: {err}") from None
    if not any(_same_file(path, p) for p in local):
        _check_plugins(path, doc)
    try:
        client: kubernetes.client.ApiClient = kubernetes.config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(path), context=context, persist_config=False
        )
        return client
    except kubernetes.config.ConfigException as err:
        raise KubeconfigError(f"kubeconfig '{path}': {err}") from None

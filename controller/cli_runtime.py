"""`gitops serve` and `gitops agent`: the long-running commands.

Thin, like the rest of the CLI (`controller/cli.py` registers them): parse options, load
the Helm values (the same validation as `helm/` files and `install render`: unknown keys
and wrong types are errors with the key path), build a `Server` or an `Agent`, run until
SIGINT/SIGTERM (SIGHUP re-reads the config repository), stop cleanly.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click

from controller.secrets import SecretError, SecretsDir
from gitops import names
from gitops.helm import validation
from gitops.helm.models import Values
from gitops.reasons import Severity

_DEFAULT_DATA_DIR = ".mesh-gitops"
#: Where `gitops sync` finds the API token when `--token-file` is not given.
_TOKEN_ENV = "MESH_GITOPS_API_TOKEN"


def _fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(2)


def load_values(files: tuple[Path, ...], cluster: str | None = None) -> Values:
    """Parse, merge and validate values files; warnings to stderr; errors exit 2."""
    layers = []
    problems = []
    for path in files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            _fail(f"{path}: {exc.strerror}")
        layer, found = validation.parse(str(path), data)
        problems += found
        if layer is not None:
            layers.append(layer)
    checked = validation.check(layers, cluster) if not problems else None
    if checked is not None:
        problems += checked.diagnostics
    for d in problems:
        where = f"{d.source.file}:{d.source.line}" if d.source else ""
        click.echo(f"{where}: {d.severity.value}: {d.reason.name}: {d.message}", err=True)
    if (
        checked is None
        or checked.values is None
        or any(d.severity is Severity.ERROR for d in problems)
    ):
        _fail("the values files are not usable (see above)")
        raise AssertionError  # unreachable
    return checked.values


def _logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _data_dir(option: Path | None, values: Values) -> Path:
    return option or Path(values.gitops.data_dir or _DEFAULT_DATA_DIR)


def _wait_for_signal(on_hup: Any = None) -> None:
    done = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: done.set())
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    if on_hup is not None:
        signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=on_hup).start())
    done.wait()


values_option = click.option(
    "--values",
    "values_files",
    multiple=True,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Helm values file; repeat to merge several (later files win).",
)
_secrets_option = click.option(
    "--secrets",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Secrets directory (<dir>/<secretName>/<key>).",
)
_data_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="State directory (default gitops.dataDir, else ./.mesh-gitops).",
)
_log_option = click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)


@click.command()
@values_option
@_secrets_option
@_data_option
@_log_option
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the config repository is cloned (default <data dir>/repos).",
)
def serve(
    values_files: tuple[Path, ...],
    secrets: Path | None,
    data_dir: Path | None,
    log_level: str,
    cache_dir: Path | None,
) -> None:
    """Run the management server: relay, snapshot cache, translation, endpoints."""
    # Imported here: the server's stack (gRPC, Redis, uvicorn) is not needed by the other
    # commands, and an agent process should not carry it (about 30 MB each).
    from controller.server.app import ServeError, Server
    from controller.store import StoreError

    _logging(log_level)
    values = load_values(values_files)
    directory = _data_dir(data_dir, values)
    server = Server(
        values,
        SecretsDir(secrets) if secrets else None,
        directory,
        cache_dir or directory / "repos",
    )
    try:
        server.start()
    except (ServeError, StoreError, SecretError) as exc:
        server.stop()
        _fail(str(exc))
    try:
        _wait_for_signal(server.reload)
    finally:
        server.stop()


@click.command()
@values_option
@_secrets_option
@_data_option
@_log_option
@click.option("--cluster", required=True, help="This workload cluster's name.")
@click.option("--kubeconfig", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--context", "kube_context", default=None, help="Kubeconfig context.")
@click.option(
    "--directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A directory-backed cluster (demo and tests) instead of a Kubernetes API.",
)
def agent(
    values_files: tuple[Path, ...],
    secrets: Path | None,
    data_dir: Path | None,
    log_level: str,
    cluster: str,
    kubeconfig: Path | None,
    kube_context: str | None,
    directory: Path | None,
) -> None:
    """Run a workload cluster's agent: discover, push, pull, apply, prune, report drift."""
    from controller.agent.runner import Agent, AgentError

    _logging(log_level)
    if problem := names.cluster_name_problem(cluster):
        raise click.BadParameter(problem, param_hint="--cluster")
    if directory is not None and (kubeconfig is not None or kube_context is not None):
        raise click.UsageError("--directory cannot be combined with --kubeconfig/--context")
    values = load_values(values_files, cluster)
    state = _data_dir(data_dir, values)
    backend = _backend(cluster, directory, kubeconfig, kube_context, state)
    try:
        runner = Agent(cluster, values, SecretsDir(secrets or Path(os.devnull)), backend, state)
        runner.start()
    except (AgentError, SecretError) as exc:
        backend.close()
        _fail(str(exc))
        return
    try:
        _wait_for_signal()
    finally:
        runner.stop()


def _backend(
    cluster: str,
    directory: Path | None,
    kubeconfig: Path | None,
    kube_context: str | None,
    state: Path,
) -> Any:
    if directory is not None:
        from controller.backends.directory import DirectoryBackend

        return DirectoryBackend(cluster, directory, state)
    from controller.backends import kubeconfig as kubeconfigs
    from controller.backends.kubernetes import KubernetesBackend

    try:
        client = kubeconfigs.load(kubeconfig, kube_context)
    except kubeconfigs.KubeconfigError as exc:
        _fail(str(exc))
        raise
    return KubernetesBackend(cluster, client, state)


#: `--api` of the commands that call the server's API (`sync`, `status`).
api_option = click.option(
    "--api",
    default="http://127.0.0.1:8080",
    show_default=True,
    help="The management server's API address (gitops.listen.api).",
)
#: `--token-file`, read by `api_token`.
token_file_option = click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"File holding the API token (gitops.api.tokenSecret); default ${_TOKEN_ENV}.",
)


@click.command()
@api_option
@token_file_option
def sync(api: str, token_file: Path | None) -> None:
    """Ask the server to sync the config branch now (needed with gitops.sync.automated off)."""
    import httpx

    from controller.commands.status import shown_url

    token = api_token(token_file)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    where = shown_url(api)  # never a password from the URL in a message
    try:
        response = httpx.post(f"{api.rstrip('/')}/api/sync", headers=headers, timeout=60)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        _fail(f"cannot reach {where}: {exc}")
        return
    if response.status_code != 202:
        _fail(f"{where} answered {response.status_code}: {response.text[:200]}")
    click.echo(f"sync requested: {response.json().get('revision')}")


def api_token(token_file: Path | None) -> str | None:
    """The token `gitops sync` and `gitops status` send: the file's content, else the
    environment's, else None (an open API). Neither is ever echoed, in errors included."""
    if token_file is None:
        token = os.environ.get(_TOKEN_ENV, "").strip()
        return _header_safe(token, f"${_TOKEN_ENV}") if token else None
    try:
        token = token_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        _fail(f"cannot read --token-file {token_file}: {exc.strerror}")
        raise AssertionError from None  # unreachable
    except UnicodeDecodeError:
        # Not the decoder's message: it quotes the offending byte of the token.
        _fail(f"--token-file {token_file} is not UTF-8 text")
        raise AssertionError from None
    if not token:
        _fail(f"--token-file {token_file} is empty")
    return _header_safe(token, f"--token-file {token_file}")


def _header_safe(token: str, origin: str) -> str:
    # HTTP libraries quote an illegal header value in their error: refuse it first.
    if not token.isascii() or not token.isprintable() or " " in token:
        _fail(f"{origin}: the token must be printable ASCII without spaces")
    return token


@click.command()
@click.option("--once", is_flag=True, help="One full cycle: sync, print the table, stop.")
@click.option(
    "--dir",
    "base",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".mesh-gitops-demo"),
    show_default=True,
    help="Where the demo lives (replaced on every run).",
)
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait for a sync.")
@_log_option
def demo(once: bool, base: Path, timeout: float, log_level: str) -> None:
    """Run the whole thing locally: a Git repo, a server, two agents on folder clusters."""
    from controller.demo import Demo, DemoError

    _logging("warning" if log_level == "info" else log_level)
    run = Demo(base.resolve(), click.echo)
    try:
        run.prepare()
        run.start()
        click.echo(f"demo in {run.base}; waiting for the first sync ...")
        synced = run.wait_synced(timeout)
        click.echo(run.table())
        if once:
            if not synced:
                _fail(f"not every cluster synced within {timeout:.0f}s")
            return
        click.echo(run.next_steps())
        done = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: done.set())
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        shown = ""
        while not done.wait(2.0):
            # A live table: printed again only when something in it changed.
            if (table := run.table()) != shown:
                click.echo(table)
                shown = table
    except DemoError as exc:
        _fail(str(exc))
    finally:
        run.stop()

"""The `gitops` command line: thin wrappers that parse, call one core function, print.

`validate` and `render` call `gitops.pipeline.run`, exactly what the server will
call. Exit codes (DESIGN.md section 12): 0 clean; 1 invalid config (any error, or
a resource INVALID/FAILED); 2 usage or internal error. Errors go to stderr as
`Error: ...`; user mistakes never print a traceback.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from controller import batch
from controller.cli_runtime import values_option
from controller.sources import SourceError, open_source
from controller.sources.snapshots import read_snapshot_dir
from gitops import install as install_manifests
from gitops import names, pipeline, rendering
from gitops.translate import ClusterOutput
from gitops.tree import Tree

F = TypeVar("F", bound=Callable[..., Any])


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mesh-gitops"


def _source_options(func: F) -> F:
    func = click.option(
        "--cache-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Where remote repositories are cloned (default ~/.cache/mesh-gitops).",
    )(func)
    func = click.option(
        "--ref", default=None, help="Branch, tag or commit to read (Git sources; default HEAD)."
    )(func)
    return click.argument("path")(func)


def _fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(2)


def _read(path: str, ref: str | None, cache_dir: Path | None) -> Tree:
    try:
        return open_source(path, ref, cache_dir or _default_cache())
    except SourceError as exc:
        _fail(str(exc))
        raise  # unreachable: _fail exits


def _snapshots(snapshot: Path | None) -> dict[str, Tree] | None:
    if snapshot is None:
        return None
    try:
        return read_snapshot_dir(snapshot)
    except SourceError as exc:
        _fail(str(exc))
        raise


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mesh-gitops")
def main() -> None:
    """mesh-gitops: GitOps for multicluster Istio meshes, from Gloo Platform config."""


@main.command()
@_source_options
@click.option(
    "--snapshot",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Discovery snapshots (DIR/<cluster>/**/*.yaml); with it, translation is checked too.",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def validate(
    path: str, ref: str | None, cache_dir: Path | None, snapshot: Path | None, fmt: str
) -> None:
    """Check a config repository: one line per problem, then a summary of resource states.

    `--format json` prints the full per-resource reports too."""
    with batch.collector_tuned() as freeze:
        outcome = pipeline.run(
            _read(path, ref, cache_dir), _snapshots(snapshot), None, _progress(freeze)
        )
    _clear_progress()
    if fmt == "json":
        click.echo(json.dumps(_json(outcome), indent=2, sort_keys=True))
    else:
        for d in outcome.diagnostics:
            click.echo(d.format())
        click.echo(_summary(outcome))
    sys.exit(1 if outcome.failed else 0)


@main.command()
@_source_options
@click.option(
    "--snapshot",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Discovery snapshots: DIR/<cluster>/**/*.yaml.",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write <cluster>.yaml files into.",
)
@click.option(
    "--since",
    default=None,
    metavar="REV",
    help="Render only the clusters whose output can differ from REV's (Git sources).",
)
def render(
    path: str,
    ref: str | None,
    cache_dir: Path | None,
    snapshot: Path,
    output: Path,
    since: str | None,
) -> None:
    """Translate a config repository into OUT/<cluster>.yaml, one file per cluster."""
    tree = _read(path, ref, cache_dir)
    base = _read(path, since, cache_dir) if since else None
    if base is not None and base.revision is None:
        _fail("--since needs a Git repository (a plain directory has no history)")
    snapshots = _snapshots(snapshot)
    output.mkdir(parents=True, exist_ok=True)

    def write(cluster_output: ClusterOutput) -> None:
        target = output / f"{cluster_output.cluster}.yaml"
        with target.open("w", encoding="utf-8") as fh:
            rendering.write_all(cluster_output.objects, fh.write)

    with batch.collector_tuned() as freeze:
        outcome = pipeline.run(tree, snapshots, write, _progress(freeze), base)
    _clear_progress()
    for d in outcome.diagnostics:
        click.echo(d.format(), err=True)
    for summary in outcome.clusters:
        click.echo(summary.line())
    if since:
        unchanged = ", ".join(outcome.skipped) or "none"
        click.echo(f"unchanged since {since} (not rendered): {unchanged}")
    click.echo(_summary(outcome))
    sys.exit(1 if outcome.failed else 0)


@main.group("install")
def install_group() -> None:
    """Kubernetes manifests for the management server and the agents."""


@install_group.command("render")
@values_option
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the manifests to this file instead of stdout.",
)
@click.option("--cluster", help="Cluster name, for data-plane values without common.cluster.")
@click.option(
    "-n",
    "--namespace",
    default="gloo-mesh",
    show_default=True,
    help="Namespace to install into (the referenced Secrets must be there).",
)
def install_render(
    values_files: tuple[Path, ...], output: Path | None, cluster: str | None, namespace: str
) -> None:
    """Render install manifests from Helm values: problems on stderr, YAML on stdout."""
    if not names.is_dns_label(namespace):
        raise click.BadParameter(f"{namespace!r} is not a namespace name", param_hint="--namespace")
    if cluster is not None and (problem := names.cluster_name_problem(cluster)):
        raise click.BadParameter(problem, param_hint="--cluster")
    try:
        files = [(str(path), path.read_bytes()) for path in values_files]
    except OSError as exc:
        _fail(f"cannot read {exc.filename}: {exc.strerror}")
        raise
    options = install_manifests.Options(namespace, _version(), cluster)
    result = install_manifests.render_files(files, options)
    for d in result.diagnostics:
        click.echo(d.format(), err=True)
    if result.failed:
        sys.exit(1)
    text = rendering.dump_all(result.objects)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


def _version() -> str:
    """This CLI's version: the default tag of our images in rendered manifests."""
    return importlib.metadata.version("mesh-gitops")


def _progress(freeze: Callable[[str], None]) -> Callable[[str], None]:
    """Stage callback: memory management, plus a one-line progress note on a terminal
    (pipes and CI logs stay quiet)."""
    show = sys.stderr.isatty()

    def stage_done(stage: str) -> None:
        freeze(stage)
        if show:
            click.echo(f"\r\033[K{stage}", nl=False, err=True)

    return stage_done


def _clear_progress() -> None:
    if sys.stderr.isatty():
        click.echo("\r\033[K", nl=False, err=True)


def _summary(outcome: pipeline.Outcome) -> str:
    from gitops import reports

    return (
        f"{len(outcome.reports)} resources: {reports.summary(outcome.reports)}; "
        f"{outcome.errors} errors, {outcome.warnings} warnings"
    )


def _json(outcome: pipeline.Outcome) -> dict[str, Any]:
    return {
        "revision": outcome.bundle.revision,
        "diagnostics": [d.to_json() for d in outcome.diagnostics],
        "reports": [r.to_json() for r in outcome.reports],
        "clusters": [
            {"cluster": c.cluster, "objects": c.objects, "kinds": dict(c.kinds)}
            for c in outcome.clusters
        ],
        "failed": outcome.failed,
    }


def _register_runtime_commands() -> None:
    # The long-running commands live in their own modules (they pull in gRPC, Redis and
    # the cluster clients, which validate/render never need).
    from controller.cli_runtime import agent, demo, serve, sync
    from controller.commands.diff import diff
    from controller.commands.pki import pki_group
    from controller.commands.snapshot import snapshot_group
    from controller.commands.status import status

    main.add_command(serve)
    main.add_command(agent)
    main.add_command(sync)
    main.add_command(demo)
    main.add_command(pki_group)
    main.add_command(diff)
    main.add_command(snapshot_group)
    main.add_command(status)


_register_runtime_commands()


if __name__ == "__main__":  # pragma: no cover
    main()

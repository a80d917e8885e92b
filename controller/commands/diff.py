"""`gitops diff PATH --base R1 --head R2 --snapshot DIR`: a pull-request preview in the terminal.

Registered on the `gitops` command line by `controller.cli` (`main.add_command(diff)`). Thin,
like every command: parse, call `controller.preview.preview` (what the server's preview step
calls), print with `gitops.preview` in the chosen format.

`--snapshot` is required: a preview is about the Istio objects each cluster would get, and
those need the clusters' discovery inputs. (Config-level problems alone are what
`gitops validate` is for.) Exit codes (DESIGN section 12): 0 no change, 1 changes, 2 usage
or error (bad ref, merge conflict, unreadable snapshot), printed as `Error: ...` on stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from controller.preview import PreviewError, preview
from controller.sources.directory import SourceError
from controller.sources.snapshots import read_snapshot_dir
from gitops.preview import Change, Preview, markdown, one_line, to_json

__all__ = ["diff", "render_text"]

_COLOURS = {Change.ADDED: "green", Change.CHANGED: "yellow", Change.REMOVED: "red"}


@click.command("diff")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--base", "base_ref", required=True, help="The ref the change is merged onto.")
@click.option("--head", "head_ref", required=True, help="The ref with the change.")
@click.option(
    "--snapshot",
    type=click.Path(path_type=Path),
    required=True,
    help="Discovery snapshots: DIR/<cluster>/**/*.yaml.",
)
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text")
def diff(path: Path, base_ref: str, head_ref: str, snapshot: Path, fmt: str) -> None:
    """Show what merging HEAD onto BASE would change on each cluster."""
    try:
        snapshots = read_snapshot_dir(snapshot)
        result = preview(path, base_ref, head_ref, snapshots).preview
    except (SourceError, PreviewError) as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    if fmt == "json":
        click.echo(json.dumps(to_json(result), indent=2, sort_keys=True))
    elif fmt == "markdown":
        click.echo("\n".join(markdown(result)), nl=False)
    else:
        # click.echo strips the styles when stdout is not a terminal.
        click.echo(render_text(result), nl=False)
    sys.exit(1 if result.changed else 0)


def render_text(result: Preview) -> str:
    """The report for a terminal: summary, per-cluster bullets, coloured unified diffs."""
    lines = [click.style(one_line(result), bold=True)]
    lines.extend(f"  {k}: {v}" for k, v in sorted(result.meta.items()))
    for item in result.invalid:
        lines.append(click.style(f"! {item}", fg="red"))
    for cluster in result.clusters:
        lines += ["", click.style(f"{cluster.cluster}: {cluster.counts_line()}", bold=True)]
        lines.extend(f"  - {bullet}" for bullet in cluster.semantics)
        for change in cluster.changes:
            colour = _COLOURS[change.change]
            lines.append(click.style(f"  {change.change.value}: {change.title}", fg=colour))
            lines.extend(f"    {_line_style(line)}" for line in change.diff.splitlines())
    return "\n".join(lines) + "\n"


def _line_style(line: str) -> str:
    if line.startswith(("+++", "---")):
        return click.style(line, bold=True)
    if line.startswith("+"):
        return click.style(line, fg="green")
    if line.startswith("-"):
        return click.style(line, fg="red")
    if line.startswith("@@"):
        return click.style(line, fg="cyan")
    return line

"""`gitops status`: where every cluster stands, from a running server's `/api/clusters`.

Registered on the `gitops` command line by `controller.cli`; `gitops demo`
(`controller/demo.py`) prints its table with the same `fetch` and `render_text`, from the
demo server's own API. Thin, like every command: one GET (`docs/endpoints.md` shows the
body), one sync state per cluster (`sync_state`), a table or JSON.

Exit codes (DESIGN.md section 12): 0 when every cluster is synced with no drift, 1 when
one is not, 2 on a usage or connection error, printed as `Error: ...` on stderr. The API
token (`--token-file` or `$MESH_GITOPS_API_TOKEN`, read by `controller.cli_runtime`) is
sent when there is one and never appears in a message.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click

from controller.cli_runtime import api_option, api_token, token_file_option

__all__ = ["Overview", "StatusError", "fetch", "render_text", "status", "sync_state", "to_json"]

#: Text colour of each sync state (click.echo drops it when stdout is not a terminal).
_COLOURS = {
    "synced": "green",
    "pending": "yellow",
    "held": "yellow",
    "awaited": "yellow",
    "failed": "red",
    "refused": "red",
}
_COLUMNS = ("CLUSTER", "SYNC", "VERSION", "OBJECTS", "DRIFT", "PUBLISHED", "APPLIED")


class StatusError(Exception):
    """The server could not be asked, or did not answer with its cluster list."""


@dataclass(frozen=True)
class Overview:
    """One answer of `/api/clusters`: the rows as the server sent them, and its header."""

    clusters: tuple[Mapping[str, Any], ...]
    revision: str | None
    #: None when the server does not say (an older server).
    leader: bool | None
    safe_mode: Mapping[str, Any] | None

    @property
    def in_sync(self) -> bool:
        """Every cluster synced with no drift (exit code 0)."""
        return all(sync_state(c) == "synced" and not c.get("drift") for c in self.clusters)


def shown_url(url: str) -> str:
    """`url` without a user or password, for messages."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def fetch(api: str, token: str | None = None, timeout: float = 10.0) -> Overview:
    """GET `<api>/api/clusters`; `StatusError` names the address and what went wrong."""
    import httpx

    where = shown_url(api)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.get(f"{api.rstrip('/')}/api/clusters", headers=headers, timeout=timeout)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise StatusError(f"cannot reach {where}: {exc}") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200:
        detail = body.get("detail") if isinstance(body, dict) else None
        raise StatusError(
            f"{where} answered {response.status_code}: {detail or response.text[:200]}"
        )
    if not isinstance(body, dict) or not isinstance(body.get("clusters"), list):
        raise StatusError(f"{where}/api/clusters did not answer with a cluster list")
    rows = tuple(c for c in body["clusters"] if isinstance(c, dict) and "name" in c)
    leader = body.get("leader")
    safe = body.get("safeMode")
    return Overview(
        clusters=rows,
        revision=body.get("revision"),
        leader=leader if isinstance(leader, bool) else None,
        safe_mode=safe if isinstance(safe, dict) else None,
    )


def sync_state(row: Mapping[str, Any]) -> str:
    """One cluster's sync state: awaited (safe mode waits for its snapshot, or its pushes
    are frozen), refused (the sync policy refused the last commit), failed (its agent
    NACKed), held (a commit waits for `gitops sync`), pending (nothing published yet, or
    its agent is not on the published version), else synced. Drift is a column of its
    own: a drifted cluster is synced but not in sync (exit 1)."""
    if row.get("awaited") or row.get("pushesFrozen"):
        return "awaited"
    if row.get("refused"):
        return "refused"
    if row.get("errors"):
        return "failed"
    if row.get("heldRevision"):
        return "held"
    published = row.get("outputVersion")
    if published is None or row.get("appliedVersion") != published:
        return "pending"
    if row.get("publishedRevision") and row.get("appliedRevision") != row["publishedRevision"]:
        return "pending"  # the same number in an older cache generation
    return "synced"


def detail(row: Mapping[str, Any]) -> str:
    """Why a cluster is not synced, in one line ("" when there is nothing to add)."""
    state = sync_state(row)
    refused = row.get("refused") or {}
    if state == "refused":
        return f"{short(refused.get('revision'))} refused: {refused.get('reason', '')}"
    if state == "failed":
        return f"the agent rejected version {row.get('outputVersion')} ({row['errors']} errors)"
    if state == "held":
        return f"{short(row.get('heldRevision'))} waits for a manual sync (gitops sync)"
    if state == "awaited":
        return "safe mode waits for its snapshot" if row.get("awaited") else "pushes frozen"
    if state == "pending" and not row.get("connected"):
        return "no agent connected"
    return ""


def short(revision: object) -> str:
    """A commit id cut to 8 characters; other revisions (a folder's) as they are."""
    if not isinstance(revision, str) or not revision:
        return "-"
    hexadecimal = len(revision) >= 40 and all(ch in "0123456789abcdef" for ch in revision)
    return revision[:8] if hexadecimal else revision


def _header(view: Overview) -> str:
    parts = [f"config {short(view.revision)}"]
    if view.safe_mode is not None:
        safe = view.safe_mode
        waiting = ", ".join(safe.get("awaited") or [])
        parts.append(f"safe mode {'on' if safe.get('active') else 'off'}")
        if safe.get("active") and waiting:
            parts[-1] += f" (waiting for {waiting})"
    if view.leader is not None:
        parts.append("leader" if view.leader else "follower (not publishing)")
    return "; ".join(parts)


def render_text(view: Overview) -> str:
    """The header line and one table row per cluster, then why the others are not synced.
    Styled with colour; `click.echo` drops it outside a terminal."""
    rows = []
    for c in view.clusters:
        rows.append(
            (
                str(c["name"]),
                sync_state(c).capitalize(),
                "-" if c.get("outputVersion") is None else str(c["outputVersion"]),
                str(c.get("objects", 0)),
                str(c.get("drift", 0)),
                short(c.get("publishedRevision")),
                short(c.get("appliedRevision")),
            )
        )
    widths = [max(len(r[i]) for r in [_COLUMNS, *rows]) for i in range(len(_COLUMNS))]
    lines = [_header(view), _row(_COLUMNS, widths)]
    for cells in rows:
        line = _row(cells, widths)
        colour = _COLOURS[cells[1].lower()]
        start = widths[0] + 2
        lines.append(
            line[:start]
            + click.style(line[start : start + widths[1]], fg=colour)
            + line[start + widths[1] :]
        )
    if not view.clusters:
        lines.append("(no clusters registered)")
    for c in view.clusters:
        why = detail(c)
        if why:
            lines.append(f"  {c['name']}: {why}")
    return "\n".join(lines)


def _row(cells: Sequence[str], widths: Sequence[int]) -> str:
    # Names and states to the left, numbers to the right, commits to the left.
    out = []
    for i, (cell, width) in enumerate(zip(cells, widths, strict=True)):
        out.append(cell.rjust(width) if i in (2, 3, 4) else cell.ljust(width))
    return "  ".join(out).rstrip()


def to_json(view: Overview) -> dict[str, Any]:
    """`--format json`: the facts of the table, one object per cluster."""
    return {
        "revision": view.revision,
        "leader": view.leader,
        "safeMode": view.safe_mode,
        "inSync": view.in_sync,
        "clusters": [
            {
                "name": c["name"],
                "sync": sync_state(c),
                "detail": detail(c),
                "connected": c.get("connected"),
                "outputVersion": c.get("outputVersion"),
                "appliedVersion": c.get("appliedVersion"),
                "objects": c.get("objects", 0),
                "drift": c.get("drift", 0),
                "publishedRevision": c.get("publishedRevision"),
                "appliedRevision": c.get("appliedRevision"),
            }
            for c in view.clusters
        ],
    }


@click.command("status")
@api_option
@token_file_option
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
)
def status(api: str, token_file: Path | None, output_format: str) -> None:
    """Show each cluster's sync state, objects, drift and commits; exit 1 unless all synced."""
    token = api_token(token_file)
    try:
        view = fetch(api, token)
    except StatusError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    if output_format == "json":
        click.echo(json.dumps(to_json(view), indent=2))
    else:
        click.echo(render_text(view))
    sys.exit(0 if view.in_sync else 1)

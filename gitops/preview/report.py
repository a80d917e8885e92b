"""Preview reports: markdown (split into parts), JSON, and the one-line status description.

Where it sits: the last pure stage of a preview. `gitops diff` prints one of these, and the
server posts the one-line summary as the `<prefix>/preview` commit status with the markdown
and JSON served as its report. Nothing here reads a clock or the environment.

Markdown is built from blocks that are never cut: a cluster heading with its bullets, or one
object's diff. Parts are packed from whole blocks, each under `MAX_PART_CHARS` (Git hosts
reject comments over 65,536 characters; 60,000 leaves room for a header the poster adds).
An object whose diff alone would not fit keeps its head and says how much was cut; the JSON
report always has the full diff.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gitops.preview.diff import Change, ClusterDiff, ObjectChange, Preview

__all__ = ["MAX_PART_CHARS", "MAX_SUMMARY_CHARS", "from_json", "markdown", "one_line", "to_json"]

MAX_PART_CHARS = 60_000
#: Git hosts cap commit-status descriptions at 140 characters (GitHub rejects longer ones).
MAX_SUMMARY_CHARS = 140
#: Diffs longer than this many lines are collapsed in a `<details>` block.
COLLAPSE_LINES = 20
_SIGN = {Change.ADDED: "+", Change.CHANGED: "~", Change.REMOVED: "-"}


def one_line(preview: Preview) -> str:
    """`cluster1: +2 ~3 -0; cluster2: no change` (at most 140 characters)."""
    if not preview.clusters and not preview.invalid:
        return "no clusters rendered"
    parts = [f"{c.cluster}: {c.counts_line()}" for c in preview.clusters]
    if preview.invalid:
        parts.append(f"{len(preview.invalid)} newly invalid")
    text = "; ".join(parts)
    if len(text) <= MAX_SUMMARY_CHARS:
        return text
    # Many clusters: totals instead of a list, so the line stays informative.
    changed = [c for c in preview.clusters if c.changed]
    totals = [sum(c.count(k) for c in preview.clusters) for k in Change]
    text = (
        f"{len(changed)} of {len(preview.clusters)} clusters changed: "
        f"+{totals[0]} ~{totals[1]} -{totals[2]}"
    )
    if preview.invalid:
        text += f"; {len(preview.invalid)} newly invalid"
    return text[:MAX_SUMMARY_CHARS]


def markdown(preview: Preview, limit: int = MAX_PART_CHARS) -> list[str]:
    """The report as markdown parts, each shorter than `limit` characters."""
    blocks = _header(preview, limit)
    for cluster in preview.clusters:
        blocks.extend(_cluster_blocks(cluster, limit))
        blocks.extend(_object_block(change, limit) for change in cluster.changes)
    # Room for the "_Part i of n._" footer added below.
    room = limit - _FOOTER_ROOM
    parts: list[str] = []
    current = ""
    for block in blocks:
        if current and len(current) + len(block) >= room:
            parts.append(current)
            current = ""
        current += block
    if current:
        parts.append(current)
    if len(parts) > 1:
        parts = [f"{p}\n_Part {i} of {len(parts)}._\n" for i, p in enumerate(parts, 1)]
    return parts


#: Footer plus slack; a part count has at most a few digits.
_FOOTER_ROOM = 40


def _bullet(text: str, limit: int) -> str:
    """One list item: a block of its own, so long lists split between items."""
    most = limit // 4
    return f"- {text if len(text) <= most else text[:most] + ' ...'}\n"


def _header(preview: Preview, limit: int) -> list[str]:
    lines = ["## Mesh preview", "", one_line(preview), ""]
    lines.extend(f"- {k}: `{v}`" for k, v in sorted(preview.meta.items()))
    blocks = ["\n".join(lines) + "\n"]
    if preview.invalid:
        blocks.append("\n**Resources that became invalid:**\n\n")
        blocks.extend(_bullet(item, limit) for item in preview.invalid)
    return blocks


def _cluster_blocks(cluster: ClusterDiff, limit: int) -> list[str]:
    blocks = [f"\n### {cluster.cluster}: {cluster.counts_line()}\n\n"]
    blocks.extend(_bullet(bullet, limit) for bullet in cluster.semantics)
    return blocks


def _object_block(change: ObjectChange, limit: int) -> str:
    title = (
        f"{_SIGN[change.change]} {change.group or 'core'} {change.title} ({change.change.value})"
    )
    # Room for the title, the fences, <details> tags and the part footer.
    budget = limit - len(title) - 200 - _FOOTER_ROOM
    body = change.diff
    if len(body) > budget:
        kept = body[: max(budget, 0)].rpartition("\n")[0]
        cut = change.diff_lines - (kept.count("\n") + 1)
        body = f"{kept}\n... {cut} more lines (see the JSON report)"
    fence = _fence(body)
    code = f"{fence}diff\n{body}\n{fence}"
    if change.diff_lines > COLLAPSE_LINES:
        return f"\n<details><summary>{title}</summary>\n\n{code}\n\n</details>\n"
    return f"\n**{title}**\n\n{code}\n"


def _fence(body: str) -> str:
    """A backtick fence longer than any run of backticks in `body` (CommonMark's rule)."""
    longest = run = 0
    for ch in body:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    return "`" * max(3, longest + 1)


def to_json(preview: Preview) -> dict[str, Any]:
    """Everything in the preview as JSON-ready values (sorted as the preview is)."""
    return {
        "summary": one_line(preview),
        "changed": preview.changed,
        "meta": dict(sorted(preview.meta.items())),
        "invalid": list(preview.invalid),
        "clusters": [
            {
                "cluster": c.cluster,
                "counts": {k.value: c.count(k) for k in Change},
                "semantics": list(c.semantics),
                "objects": [
                    {
                        "group": o.group,
                        "kind": o.kind,
                        "namespace": o.namespace,
                        "name": o.name,
                        "change": o.change.value,
                        "diff": o.diff,
                    }
                    for o in c.changes
                ],
            }
            for c in preview.clusters
        ],
    }


def from_json(data: Mapping[str, Any]) -> Preview:
    """The inverse of `to_json` (for tools that read a stored report back)."""
    clusters = tuple(
        ClusterDiff(
            str(c["cluster"]),
            tuple(
                ObjectChange(
                    str(o["group"]),
                    str(o["kind"]),
                    str(o["namespace"]),
                    str(o["name"]),
                    Change(o["change"]),
                    str(o["diff"]),
                )
                for o in c["objects"]
            ),
            tuple(str(s) for s in c["semantics"]),
        )
        for c in data["clusters"]
    )
    meta = {str(k): str(v) for k, v in data.get("meta", {}).items()}
    return Preview(clusters, tuple(str(i) for i in data["invalid"]), meta)

"""Pull-request previews: what a change would do to each cluster, before it is merged.

Pure core (no Git, no I/O). `controller.preview` renders the base and the head merged onto it
and calls `diff_clusters`; `gitops diff` and the server's `<prefix>/preview` status print the
result with `report.markdown`, `report.to_json` and `report.one_line`.
"""

from gitops.preview.diff import Change, ClusterDiff, ObjectChange, Preview, diff_clusters
from gitops.preview.report import MAX_PART_CHARS, from_json, markdown, one_line, to_json
from gitops.preview.semantics import newly_invalid, summarize

__all__ = [
    "MAX_PART_CHARS",
    "Change",
    "ClusterDiff",
    "ObjectChange",
    "Preview",
    "diff_clusters",
    "from_json",
    "markdown",
    "newly_invalid",
    "one_line",
    "summarize",
    "to_json",
]

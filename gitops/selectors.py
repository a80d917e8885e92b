"""Selector matching: the one place that says what a Gloo selector selects.

Used by workspaces (cluster/namespace/workspace selection, import/export
resources) and every translator (destinations, routes, workloads). Semantics
(gloo-semantics.md section 1.1): all set fields of a selector are ANDed, an
unset field matches anything, label selectors match when the selector's labels
are a subset of the object's, and name fields of workspace and cluster
selectors are globs where `*` matches any run of characters.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from gitops.models.common import ObjectSelector


@lru_cache(maxsize=1024)
def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern))


def glob_match(pattern: str | None, value: str) -> bool:
    """Unset or empty pattern matches everything; otherwise `*`/`?` glob, case-sensitive."""
    if not pattern:
        return True
    if "*" not in pattern and "?" not in pattern and "[" not in pattern:
        return pattern == value
    return _glob(pattern).fullmatch(value) is not None


def labels_match(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Every selector label is present on the object with the same value."""
    return all(labels.get(k) == v for k, v in selector.items())


@dataclass(frozen=True, slots=True)
class Target:
    """What an `ObjectSelector` is matched against."""

    name: str
    namespace: str
    cluster: str
    workspace: str | None
    labels: Mapping[str, str]


def object_match(selector: ObjectSelector | None, target: Target) -> bool:
    """`ObjectSelector`: name, namespace, cluster, workspace equal if set; labels a subset."""
    if selector is None:
        return True
    return (
        (selector.name is None or selector.name == target.name)
        and (selector.namespace is None or selector.namespace == target.namespace)
        and (selector.cluster is None or selector.cluster == target.cluster)
        and (selector.workspace is None or selector.workspace == target.workspace)
        and labels_match(selector.labels, target.labels)
    )

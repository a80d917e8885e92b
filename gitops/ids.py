"""Identifiers shared by every stage of the pipeline.

Plain strings at run time; `NewType` keeps them apart for the type checker so a
cluster name is never passed where a namespace is expected. Everything here is
pure data: the loader creates these, the translators and reports consume them.
"""

from __future__ import annotations

from typing import NamedTuple, NewType

ClusterName = NewType("ClusterName", str)
Revision = NewType("Revision", str)
WorkspaceName = NewType("WorkspaceName", str)


class ObjectRef(NamedTuple):
    """kind/namespace/name of one object, the key that must be unique in a repository."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return (
            f"{self.kind} {self.namespace}/{self.name}"
            if self.namespace
            else (f"{self.kind} {self.name}")
        )

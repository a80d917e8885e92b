"""Per-commit reports: what `/reports/<sha>` serves and commit statuses link to.

Written by the parts of the loop that post statuses (`controller/server/status_loop.py`
for translation, sync and the statuses themselves; `controller/server/previews.py` for
pull-request previews), read by the API's report routes
(`controller/server/report_pages.py`). A report is a set of named sections per commit
(`"statuses"`, `"translation"`, `"sync"`, `"preview"`, ...), each a JSON document and,
optionally, markdown for people.

Memory first, Redis behind: every write goes to the newest `MAX_COMMITS` commits held
here and, when a `ReportStore` is given, to Redis (`Store.write_commit_report`, kept 30
days), so a restarted server or another replica serves the same reports. A write Redis
refuses is kept here and retried by `flush` (the status reporter calls it every tick); a
read of a commit not held here asks Redis.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from controller.store import StoreError

__all__ = ["CommitReports", "ReportStore", "Section"]

log = logging.getLogger(__name__)

#: Commits kept in memory; the oldest is dropped first (Redis keeps them longer).
MAX_COMMITS = 256


class ReportStore(Protocol):
    """Where reports outlive the process (`controller.store.Store`)."""

    def write_commit_report(self, sha: str, document: Mapping[str, Any]) -> None: ...

    def commit_report(self, sha: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class Section:
    """One named part of a commit's report."""

    document: dict[str, Any]
    markdown: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"document": self.document}
        if self.markdown is not None:
            out["markdown"] = self.markdown
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Section:
        markdown = data.get("markdown")
        return cls(dict(data.get("document") or {}), str(markdown) if markdown else None)


class CommitReports:
    """Thread-safe `{sha: {section: Section}}`, bounded to `limit` commits in memory."""

    def __init__(self, limit: int = MAX_COMMITS, store: ReportStore | None = None) -> None:
        self.limit = limit
        self.store = store
        self._lock = threading.Lock()
        #: Held while a commit's report is copied and written to Redis, so two writers of
        #: the same commit cannot store their copies in the opposite order.
        self._saving = threading.Lock()
        self._by_sha: OrderedDict[str, dict[str, Section]] = OrderedDict()
        #: Commits whose latest report Redis has not accepted yet.
        self._unsaved: set[str] = set()

    def put(
        self, sha: str, section: str, document: dict[str, Any], markdown: str | None = None
    ) -> None:
        self.put_many(sha, {section: Section(document, markdown)})

    def put_many(self, sha: str, sections: Mapping[str, Section]) -> None:
        """Replace the named sections of `sha`'s report (others stay), with one Redis write."""
        with self._lock:
            held = self._by_sha.pop(sha, {})
            held.update(sections)
            self._by_sha[sha] = held
            while len(self._by_sha) > self.limit:
                gone, _ = self._by_sha.popitem(last=False)
                self._unsaved.discard(gone)
            self._unsaved.add(sha)
        self._save(sha)

    def get(self, sha: str) -> dict[str, Section] | None:
        """`sha`'s sections, from memory or else Redis; None when neither has it.
        Raises `StoreError` when only Redis could answer and it cannot."""
        with self._lock:
            found = self._by_sha.get(sha)
            if found is not None:
                return dict(found)
        if self.store is None:
            return None
        document = self.store.commit_report(sha)
        if document is None:
            return None
        sections = document.get("sections") or {}
        return {str(name): Section.from_json(data) for name, data in sorted(sections.items())}

    def flush(self) -> None:
        """Write to Redis the reports it refused before (a no-op when all are saved)."""
        with self._lock:
            owed = sorted(self._unsaved)
        for sha in owed:
            if not self._save(sha):
                return  # Redis is still down: try again on the next call

    def _save(self, sha: str) -> bool:
        if self.store is None:
            return True
        with self._saving:
            with self._lock:
                sections = self._by_sha.get(sha)
                if sections is None or sha not in self._unsaved:
                    return True
                self._unsaved.discard(sha)
                document = {
                    "sha": sha,
                    "sections": {name: s.to_json() for name, s in sorted(sections.items())},
                }
            try:
                self.store.write_commit_report(sha, document)
            except StoreError as exc:
                with self._lock:
                    if sha in self._by_sha:
                        self._unsaved.add(sha)
                log.warning("report of %s not stored in Redis (kept in memory): %s", sha[:12], exc)
                return False
        return True

"""What the store keeps beside snapshots: per-resource reports, commit reports, agent facts.

The base of `controller.store.store.Store` (Transactions -> Records -> Store), split out
so each module holds one kind of data. The reconcile loop writes the per-resource reports
(`write_reports`, fenced to the leader); the status reporter keeps each commit's report
for `/reports/<sha>` (`write_commit_report`); the relay records facts about each agent
(`record_agent`) that `/api/clusters` shows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import orjson
from redis.client import Pipeline

from controller.store import keys
from controller.store.transactions import StoreError, Transactions, encode, text

__all__ = ["Records", "check_cluster"]


def check_cluster(cluster: str) -> None:
    try:
        keys.check_cluster(cluster)
    except ValueError as exc:
        raise StoreError(str(exc)) from None


class Records(Transactions):
    """Reports and agent facts (see the module docstring)."""

    # -- reports --------------------------------------------------------------------------

    def write_reports(self, reports: Mapping[tuple[str, str, str], Mapping[str, Any]]) -> None:
        """Make `reports` the whole set, atomically: keys of resources not in it are deleted."""
        try:
            new = {keys.report_key(*ref): encode(report) for ref, report in reports.items()}
        except ValueError as exc:
            raise StoreError(str(exc)) from None

        def prepare(pipe: Pipeline) -> set[str]:
            return {text(k) for k in pipe.smembers(keys.REPORT_KEYS)}

        def queue(pipe: Pipeline, old: set[str]) -> None:
            if stale := old - new.keys():
                pipe.delete(*stale)
            pipe.delete(keys.REPORT_KEYS)
            if new:
                pipe.mset(new)
                pipe.sadd(keys.REPORT_KEYS, *new)

        self._run(
            "write_reports",
            lambda: self._write([keys.REPORT_KEYS], prepare, queue, fenced=True),
        )

    def report(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            key = keys.report_key(kind, namespace, name)
        except ValueError:
            return None
        (raw,) = self._run("report", lambda: self._read(lambda p: p.get(key)))
        return None if raw is None else dict(json.loads(raw))

    # -- agents ---------------------------------------------------------------------------

    def record_agent(self, cluster: str, fields: Mapping[str, str]) -> None:
        """Merge facts about a cluster's agent (connected since, version, address...)."""
        check_cluster(cluster)
        if not fields:
            return

        def queue(pipe: Pipeline, _: None) -> None:
            pipe.hset(keys.agent_key(cluster), mapping=dict(fields))  # type: ignore[arg-type]
            pipe.sadd(keys.AGENT_CLUSTERS, cluster)

        self._run("record_agent", lambda: self._write([], lambda p: None, queue))

    def agent(self, cluster: str) -> dict[str, str]:
        (found,) = self._run(
            "agent", lambda: self._read(lambda p: p.hgetall(keys.agent_key(cluster)))
        )
        return {text(k): text(v) for k, v in sorted(found.items())}

    # -- commit reports -------------------------------------------------------------------

    def write_commit_report(self, sha: str, document: Mapping[str, Any]) -> None:
        """Keep commit `sha`'s report (`/reports/<sha>`) for `keys.COMMIT_REPORT_SECONDS`.

        One SET, outside the generation rule: a report describes a commit, not the cache,
        and stays true when Redis loses the agents' inputs (so it is read without the
        generation check too)."""
        try:
            key = keys.commit_report_key(sha)
        except ValueError as exc:
            raise StoreError(str(exc)) from None
        value = encode(document)
        self._run(
            "write_commit_report",
            lambda: self._client.set(key, value, ex=keys.COMMIT_REPORT_SECONDS),
        )

    def commit_report(self, sha: str) -> dict[str, Any] | None:
        """Commit `sha`'s report as `write_commit_report` kept it; None when there is none."""
        try:
            key = keys.commit_report_key(sha)
        except ValueError:
            return None
        raw = self._run("commit_report", lambda: self._client.get(key))
        return None if raw is None else dict(orjson.loads(raw))

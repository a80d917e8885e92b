"""`gitops snapshot export|import`: discovery snapshots between Redis and a directory.

Registered on the `gitops` command line by `controller.cli`. Each command parses its
options, opens a client for `--redis URL` (`redis://[user:password@]host:port/db`,
`rediss://` for TLS, `unix:///path/to/redis.sock`), calls one function of
`controller.store.snapshot_dir` and prints one line per cluster. Exit codes: 0 done; 2 usage
or any failure (Redis unreachable, a snapshot file that does not parse), printed as
`Error: ...` on stderr. The URL's password is never printed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import click
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from controller.store import Store, StoreError, export_snapshots, import_snapshots

T = TypeVar("T")

_REDIS_HELP = "Redis URL: redis://[user:password@]host:port[/db], rediss://..., unix:///path."


def redact(url: str) -> str:
    """The URL with its password replaced by `***` (for messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


def _fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(2)


@contextmanager
def _store(url: str) -> Iterator[Store]:
    try:
        # The Store retries (tenacity); redis-py's own retries would multiply them.
        client = redis.Redis.from_url(url, retry=Retry(NoBackoff(), 0))
    except ValueError as exc:
        _fail(f"--redis {redact(url)}: {exc}")
        raise  # unreachable: _fail exits
    try:
        yield Store(client)
    finally:
        client.close()


def _guarded(url: str, action: Callable[[Store], T]) -> T:
    with _store(url) as store:
        try:
            return action(store)
        except StoreError as exc:
            _fail(f"{exc} (Redis at {redact(url)})")
            raise  # unreachable


def _print_counts(verb: str, counts: dict[str, int], where: str) -> None:
    for cluster, count in sorted(counts.items()):
        click.echo(f"{cluster}: {count} objects")
    total = sum(counts.values())
    click.echo(f"{verb} {total} objects of {len(counts)} clusters {where}")


@click.group("snapshot")
def snapshot_group() -> None:
    """Discovery snapshots: copy them from Redis to DIR/<cluster>/ and back."""


@snapshot_group.command("export")
@click.option("--redis", "url", required=True, metavar="URL", help=_REDIS_HELP)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to create (or an empty one): OUT/<cluster>/<namespace>/<kind>.yaml.",
)
def export_command(url: str, output: Path) -> None:
    """Write every cluster's inputs from Redis into a snapshot directory."""
    counts = _guarded(url, lambda store: export_snapshots(store, output))
    _print_counts("exported", counts, f"to {output}")


@snapshot_group.command("import")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--redis", "url", required=True, metavar="URL", help=_REDIS_HELP)
def import_command(directory: Path, url: str) -> None:
    """Replace each cluster's inputs in Redis with DIRECTORY/<cluster>/**/*.yaml.

    Clusters in Redis without a folder are left alone. Starts a cache generation when Redis
    has none, as the server does."""

    def run(store: Store) -> dict[str, int]:
        store.ensure_generation()
        return import_snapshots(store, directory, now=time.time())

    counts = _guarded(url, run)
    _print_counts("imported", counts, f"from {directory}")

"""A redis-py client and a retry policy from the Helm values `redis.*` (DESIGN.md section 4).

Where it sits: `gitops serve` calls `connect(values.redis, secrets)` once at start (or
`connect(..., unix_socket=local.socket_path)` for the built-in Redis, `controller.store.local`)
and hands the client plus `retrying_for(values.redis.connection)` to `Store`. The client
never retries by itself (redis-py's own `Retry` is set to zero retries): every retry is the
Store's tenacity policy, so one setting governs them all.

How each `redis.connection.*` key reaches redis-py 8 (durations are Go strings in the values,
seconds in redis-py):

| Helm key | Default | In the client |
|---|---|---|
| `dialTimeout` | 5s | `socket_connect_timeout` |
| `readTimeout` | 3s | `socket_timeout`; a blocking `XREAD` waits this plus its block time |
| `writeTimeout` | readTimeout | not separate: redis-py sends with `socket_timeout` too |
| `poolSize` | 10 x CPUs | `max_connections` of a `BlockingConnectionPool` |
| `poolTimeout` | readTimeout + 1s | the pool's `timeout`: wait for a free connection |
| `poolFifo` | false | idle queue order: LIFO (newest idle first) or FIFO (oldest) |
| `idleTimeout` | 5m | idle longer: closed and reopened when next taken; 0 = never |
| `idleCheckFrequency` | 1m | unused: no background reaper, idleness is checked on take |
| `maxConnAge` | 0 | older: closed and reopened when next taken; 0 = never |
| `minIdleConns` | 0 | not implemented: connections open on demand only |
| `maxRetries` | 3 | Store retries: `stop_after_attempt(maxRetries + 1)`; 0, -1: none |
| `minRetryBackoff` | 8ms | `wait_exponential_jitter(multiplier=..., jitter=...)` |
| `maxRetryBackoff` | 512ms | `wait_exponential_jitter(max=...)` |

Retries happen only on redis-py's `ConnectionError` and `TimeoutError` (not on an
authentication failure, which is a `ConnectionError` too but cannot heal by waiting).

`redis.auth` reads the username (optional: without the key the default user is used) and the
password from the secrets directory. `redis.certs` turns on TLS, verified against the CA in
the Secret, with the address's host checked against the server certificate; the values have
no client certificate, so the Redis server must not require one (`tls-auth-clients no`).
Over the built-in Redis's unix socket, TLS is not used (the socket is private, mode 0700).
"""

from __future__ import annotations

import os
import queue
import time
from pathlib import Path
from typing import Any

import redis
import tenacity
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, AuthorizationError
from redis.retry import Retry

from controller.secrets import SecretError, SecretsDir
from controller.store.store import StoreError
from gitops.helm.models import Redis, RedisConnection

__all__ = ["connect", "retrying_for", "should_retry"]

_NS = 1e-9


def should_retry(exc: BaseException) -> bool:
    """Transient: the connection broke or timed out (not a refused login)."""
    if isinstance(exc, AuthenticationError | AuthorizationError):
        return False
    return isinstance(exc, redis.ConnectionError | redis.TimeoutError)


def retrying_for(connection: RedisConnection) -> tenacity.Retrying:
    """The Store's retry policy: `maxRetries` retries with jittered exponential backoff."""
    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(max(connection.max_retries, 0) + 1),
        # tenacity 9 spells go-redis's base backoff `multiplier` (`initial` is deprecated);
        # jitter up to one base backoff, not tenacity's default of a whole second.
        wait=tenacity.wait_exponential_jitter(
            multiplier=connection.min_retry_backoff * _NS,
            jitter=connection.min_retry_backoff * _NS,
            max=connection.max_retry_backoff * _NS,
        ),
        retry=tenacity.retry_if_exception(should_retry),
        reraise=True,
    )


class _FifoQueue(queue.Queue[Any]):
    """Oldest idle connection first; empty slots (None) only when no connection is idle.

    The pool seeds its queue with None placeholders; a plain FIFO would hand those out
    first and open every connection of the pool before reusing one.
    """

    def _get(self) -> Any:
        for index, item in enumerate(self.queue):
            if item is not None:
                del self.queue[index]
                return item
        return self.queue.popleft()


class _Pool(redis.BlockingConnectionPool):
    """A blocking pool that closes connections idle or older than the configured limits."""

    def __init__(self, *, idle_timeout: float, max_age: float, **kwargs: Any) -> None:
        self._idle_timeout = idle_timeout
        self._max_age = max_age
        # id(connection) -> (socket, opened at, released at): the socket tells a reconnect.
        self._times: dict[int, tuple[object, float, float]] = {}
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        conn = super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        now = time.monotonic()
        sock = getattr(conn, "_sock", None)
        known = self._times.get(id(conn))
        if known is not None and known[0] is sock:
            _, opened, released = known
            stale = (self._idle_timeout and now - released > self._idle_timeout) or (
                self._max_age and now - opened > self._max_age
            )
            if stale:
                conn.disconnect()
                conn.connect()
                sock = getattr(conn, "_sock", None)
                opened = now
        else:
            opened = now
        self._times[id(conn)] = (sock, opened, now)
        return conn

    def release(self, connection: Any) -> None:
        known = self._times.get(id(connection))
        if known is not None:
            self._times[id(connection)] = (known[0], known[1], time.monotonic())
        super().release(connection)  # type: ignore[no-untyped-call]


def _credentials(values: Redis, secrets: SecretsDir | None) -> tuple[str | None, str | None]:
    auth = values.auth
    if not auth.enabled:
        return None, None
    if auth.secret_name is None:
        raise StoreError("redis.auth.enabled is true but redis.auth.secretName is not set")
    if secrets is None:
        raise StoreError(
            f"redis.auth needs Secret {auth.secret_name}, but no secrets directory was given"
        )
    try:
        password = secrets.read_text(auth.secret_name, auth.password_key)
        username = (
            secrets.read_text(auth.secret_name, auth.username_key)
            if secrets.has(auth.secret_name, auth.username_key)
            else None
        )
    except SecretError as exc:
        raise StoreError(f"redis.auth: {exc}") from None
    return username or None, password


def _ca(values: Redis, secrets: SecretsDir | None) -> str:
    certs = values.certs
    if certs.secret_name is None:
        raise StoreError("redis.certs.enabled is true but redis.certs.secretName is not set")
    if secrets is None:
        raise StoreError(
            f"redis.certs needs Secret {certs.secret_name}, but no secrets directory was given"
        )
    try:
        return secrets.read_text(certs.secret_name, certs.ca_cert_key)
    except SecretError as exc:
        raise StoreError(f"redis.certs: {exc}") from None


def connect(
    values: Redis, secrets: SecretsDir | None, *, unix_socket: Path | None = None
) -> redis.Redis:
    """A client for `redis.address` (or the built-in Redis's socket). Opens no connection yet.

    Raises StoreError for settings that cannot work (no address, a missing Secret key);
    the message never holds secret data.
    """
    conn = values.connection
    username, password = _credentials(values, secrets)
    kwargs: dict[str, Any] = {
        "username": username,
        "password": password,
        "socket_timeout": conn.read_timeout * _NS,
        "socket_connect_timeout": conn.dial_timeout * _NS,
        # Retries are the Store's (tenacity); redis-py's own would multiply them.
        "retry": Retry(NoBackoff(), 0),
        "max_connections": conn.pool_size or 10 * (os.cpu_count() or 1),
        "timeout": conn.effective_pool_timeout * _NS,
        "queue_class": _FifoQueue if conn.pool_fifo else queue.LifoQueue,
        "idle_timeout": conn.idle_timeout * _NS,
        "max_age": conn.max_conn_age * _NS,
    }
    if unix_socket is not None:
        kwargs["connection_class"] = redis.UnixDomainSocketConnection
        kwargs["path"] = str(unix_socket)
    elif values.address is not None:
        host, _, port = values.address.rpartition(":")
        kwargs["host"] = host.strip("[]")
        kwargs["port"] = int(port)
        if values.certs.enabled:
            kwargs["connection_class"] = redis.SSLConnection
            kwargs["ssl_ca_data"] = _ca(values, secrets)
            kwargs["ssl_cert_reqs"] = "required"
            kwargs["ssl_check_hostname"] = True
    else:
        raise StoreError(
            "redis.address is not set and no built-in Redis socket was given "
            "(set redis.address to host:port, or run the built-in Redis)"
        )
    # from_pool: the client owns the pool, so closing the client closes every connection.
    return redis.Redis.from_pool(_Pool(**kwargs))

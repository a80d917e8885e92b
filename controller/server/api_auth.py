"""Bearer-token authentication for the JSON API's write endpoints (`POST /api/sync`).

`controller.server.git_loop.GitLoop.routes` wraps each write endpoint with `guarded` when
it builds the API's routes at start-up; read endpoints (`GET /api/clusters`,
`/reports/...`) stay open. `docs/endpoints.md` ("Authentication") is the user-facing
description, `gitops sync --token-file` the client.

With `gitops.api.tokenSecret` set, a request must carry `Authorization: Bearer <token>`
equal (constant-time compare) to key `token` of that Secret, else it is answered 401 in
the API's error shape before the endpoint runs. The key is read on every request, like
the webhook keys, so a rotated token applies without a restart; a key that cannot be
read refuses every write (503) rather than letting it through. Without the setting the
endpoints are open and the server logs a warning at start. The token, and whatever a
client sent in its place, never appears in a log line or an answer.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from controller.secrets import SecretError, SecretsDir
from gitops.helm.gitops_block import Api

__all__ = ["TOKEN_KEY", "bearer", "guarded"]

log = logging.getLogger(__name__)

#: The key of `gitops.api.tokenSecret` that holds the token.
TOKEN_KEY = "token"

Endpoint = Callable[[Request], Awaitable[Response]]


def guarded(
    what: str,
    endpoint: Endpoint,
    secrets: SecretsDir | None,
    settings: Api,
    *,
    listen: str = "",
) -> Endpoint:
    """`endpoint` (`what`, as `POST /api/sync`), answering only requests that carry the
    API token when one is set.

    Called once per write endpoint at start-up; without a token Secret it returns
    `endpoint` itself and logs that the write is unauthenticated. With one, the Secret
    is read once here, so a missing key stops the start instead of failing the first sync.
    """
    name = settings.token_secret
    if name is None:
        # On a loopback address (the demo) only this machine can call it: not a warning.
        level = logging.INFO if _loopback(listen) else logging.WARNING
        log.log(
            level,
            "the API's write endpoint %s is unauthenticated (gitops.api.tokenSecret is not "
            "set): keep the API listener private",
            what,
        )
        return endpoint
    if secrets is None:
        raise SecretError(f"gitops.api.tokenSecret {name} needs --secrets DIR")
    if not secrets.read(name, TOKEN_KEY).strip():
        raise SecretError(f"Secret {name} key {TOKEN_KEY} is empty")

    async def checked(request: Request) -> Response:
        try:
            expected = secrets.read(name, TOKEN_KEY).strip()
        except SecretError as exc:
            log.error("refusing %s %s: %s", request.method, request.url.path, exc)
            return _error(HTTPStatus.SERVICE_UNAVAILABLE, "the server cannot read its API token")
        sent = bearer(request)
        if sent is None:
            return _unauthorized(request, "missing Authorization: Bearer header")
        # An empty key would accept an empty token: treat it as "cannot read".
        if not expected or not hmac.compare_digest(sent.encode(), expected):
            return _unauthorized(request, "token does not match")
        return await endpoint(request)

    return checked


def bearer(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _unauthorized(request: Request, detail: str) -> Response:
    # The sender's address helps find a misconfigured client; what it sent is not logged.
    log.warning(
        "%s %s from %s refused: %s",
        request.method,
        request.url.path,
        request.client.host if request.client else "?",
        detail,
    )
    return _error(HTTPStatus.UNAUTHORIZED, detail, {"WWW-Authenticate": "Bearer"})


def _error(status: HTTPStatus, detail: str, headers: dict[str, str] | None = None) -> Response:
    # The API's error shape (`controller.server.http`): {"error": <CamelCase>, "detail": ...}.
    reason = status.phrase.title().replace(" ", "").replace("-", "")
    return JSONResponse({"error": reason, "detail": detail}, status.value, headers=headers)


def _loopback(listen: str) -> bool:
    """Whether the `host:port` listen address only accepts connections from this host."""
    host = listen.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

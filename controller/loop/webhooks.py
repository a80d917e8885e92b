"""Push webhooks: `POST /hooks/{github,gitea,gitlab,generic}` on the API listener (8080).

DESIGN.md sections 8 and 11, issue 5 ("The loop"). `gitops serve` passes the routes from
`webhook_routes` to `controller.server.http.api_app(view, extra_routes=...)`; each verified
delivery becomes a `HookEvent` handed to `on_event`, which fires the loop's `Trigger`
(`controller.loop.triggers`). `docs/webhooks.md` is the user-facing description.

The order of checks is the point of this module, because the listener faces the
internet: the declared size first (413 without reading), then the signature or token
header (401 without reading, for token providers), then the body read with a running
count that stops at the cap, then the HMAC over the raw bytes, and only then JSON. So an
unauthenticated sender can make us buffer at most `maxBodyBytes` and never reach the parser.

Secrets are read from the Secret `gitops.webhooks.secretName` on every delivery: a
rotated key applies without a restart, and a read costs one small file. A provider whose
key is absent answers 404, as if the route did not exist (documented in docs/webhooks.md):
it tells a scanner nothing it could not learn from any other unknown path.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from controller.secrets import SecretError, SecretsDir
from gitops.helm.gitops_block import Webhooks

__all__ = ["PROVIDERS", "HookEvent", "webhook_routes"]

log = logging.getLogger(__name__)

#: The providers served, each at `/hooks/<provider>`, each keyed by its name in the Secret.
PROVIDERS = ("github", "gitea", "gitlab", "generic")


@dataclass(frozen=True)
class HookEvent:
    """One verified delivery. `ref` and `sha` are None when the provider did not send them."""

    provider: str
    ref: str | None
    sha: str | None


class _Refused(Exception):
    """Ends a delivery with `status`; `detail` goes to the sender, so it holds no secret."""

    def __init__(self, status: HTTPStatus, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers


def webhook_routes(
    secrets: SecretsDir | None, settings: Webhooks, on_event: Callable[[HookEvent], None]
) -> list[Route]:
    """The four webhook routes. `on_event` runs in a worker thread and should return quickly."""

    def endpoint(provider: str) -> Callable[[Request], Any]:
        async def receive(request: Request) -> Response:
            try:
                key = _key(secrets, settings, provider)
                event = await _receive(request, provider, key, settings.max_body_bytes)
            except _Refused as refused:
                # The sender's address helps find a misconfigured hook; the secret and
                # the signature it sent are never logged.
                log.warning(
                    "webhook %s from %s refused: %s",
                    provider,
                    request.client.host if request.client else "?",
                    refused.detail,
                )
                return _error(refused.status, refused.detail, refused.headers)
            if event is None:
                return JSONResponse({"status": "ignored"}, status_code=HTTPStatus.OK)
            await run_in_threadpool(on_event, event)
            return JSONResponse(
                {"status": "accepted", "ref": event.ref, "sha": event.sha},
                status_code=HTTPStatus.ACCEPTED,
            )

        return receive

    return [Route(f"/hooks/{p}", endpoint(p), methods=["POST"]) for p in PROVIDERS]


def _key(secrets: SecretsDir | None, settings: Webhooks, provider: str) -> bytes | None:
    if secrets is None or settings.secret_name is None:
        return None
    try:
        key = secrets.read(settings.secret_name, provider).strip()
    except SecretError:
        return None
    # An empty key would make every HMAC forgeable; treat it as "not configured".
    return key or None


async def _receive(
    request: Request, provider: str, key: bytes | None, cap: int
) -> HookEvent | None:
    """Verify and parse one delivery; None for a verified delivery that is not a push."""
    if key is None:
        raise _Refused(HTTPStatus.NOT_FOUND, f"webhook provider {provider} is not configured")
    _check_declared_size(request, cap)
    if provider in ("github", "gitea"):
        signature = _hmac_header(request, provider)
        body = await _read_capped(request, cap)
        expected = hmac.new(key, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature, expected):
            raise _Refused(HTTPStatus.UNAUTHORIZED, "signature does not match the body")
    else:
        _check_token(request, provider, key)
        body = await _read_capped(request, cap)
    return _parse(request, provider, body)


def _check_declared_size(request: Request, cap: int) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > cap):
        raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"bodies are limited to {cap} bytes")


async def _read_capped(request: Request, cap: int) -> bytes:
    # Counting matters for chunked bodies, which declare no length: stop at the first
    # chunk past the cap instead of buffering whatever the sender keeps sending.
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > cap:
                raise _Refused(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"bodies are limited to {cap} bytes"
                )
            chunks.append(chunk)
    except ClientDisconnect:
        raise _Refused(HTTPStatus.BAD_REQUEST, "the sender disconnected mid-body") from None
    return b"".join(chunks)


def _hmac_header(request: Request, provider: str) -> str:
    # Gitea sends its own bare-hex header and, since 1.18, GitHub's as well.
    value = request.headers.get("x-hub-signature-256", "")
    if value.startswith("sha256="):
        return value.removeprefix("sha256=").lower()
    if provider == "gitea" and (bare := request.headers.get("x-gitea-signature")):
        return bare.lower()
    header = "X-Hub-Signature-256" if provider == "github" else "X-Gitea-Signature"
    raise _Refused(HTTPStatus.UNAUTHORIZED, f"missing {header} header")


def _check_token(request: Request, provider: str, key: bytes) -> None:
    if provider == "gitlab":
        sent = request.headers.get("x-gitlab-token")
        missing = "missing X-Gitlab-Token header"
    else:
        auth = request.headers.get("authorization", "")
        scheme, _, bearer = auth.partition(" ")
        sent = bearer.strip() if scheme.lower() == "bearer" else None
        sent = sent or request.headers.get("x-mesh-gitops-token")
        missing = "missing Authorization: Bearer or X-Mesh-Gitops-Token header"
    if not sent:
        raise _Refused(HTTPStatus.UNAUTHORIZED, missing, {"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(sent.encode(), key):
        raise _Refused(
            HTTPStatus.UNAUTHORIZED, "token does not match", {"WWW-Authenticate": "Bearer"}
        )


def _parse(request: Request, provider: str, body: bytes) -> HookEvent | None:
    """The push's ref and head SHA; None for deliveries that are not pushes (GitHub's ping)."""
    kind = request.headers.get("x-github-event") or request.headers.get("x-gitea-event")
    if kind == "ping":
        return None
    if provider == "generic" and not body.strip():
        return HookEvent(provider, None, None)
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _Refused(HTTPStatus.BAD_REQUEST, "the body is not JSON") from None
    if not isinstance(payload, dict):
        raise _Refused(HTTPStatus.BAD_REQUEST, "the body is not a JSON object")
    sha_field = {"gitlab": "checkout_sha", "generic": "sha"}.get(provider, "after")
    return HookEvent(provider, _text(payload.get("ref")), _text(payload.get(sha_field)))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _error(status: HTTPStatus, detail: str, headers: dict[str, str] | None) -> Response:
    # The API's error shape (`controller.server.http`): {"error": <CamelCase>, "detail": ...}.
    reason = status.phrase.title().replace(" ", "").replace("-", "")
    return JSONResponse({"error": reason, "detail": detail}, status.value, headers=headers)

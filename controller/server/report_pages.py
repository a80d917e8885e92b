"""`GET /reports/<sha>`: a commit's report, as JSON or as an HTML page, on the API listener.

Every commit status links here (`target_url`, see `controller/server/status_loop.py`). The
routes are added to the API app by `controller/server/git_loop.py` (`GitLoop.routes`) and
read `controller/server/commit_reports.py` (memory, then Redis). `docs/endpoints.md`
documents the shapes; `base_url` decides the link's start when `gitops.status.reportsUrl`
is not set.

JSON for `/reports/<sha>.json` or an `Accept` header that prefers `application/json`; HTML
otherwise. The page is a small hand-written template: every value in it (resource names,
messages, agent errors, preview markdown) passes through `html.escape`, markdown is shown
as escaped text rather than rendered, and the page is served with a Content-Security-Policy
that allows no script at all. Errors are the API's JSON shape (`HTTPException`, turned into
`{"error", "detail"}` by `controller/server/http.py`): 400 for something that is not a full
commit SHA, 404 for a commit with no report, 503 when only Redis could answer and cannot.
"""

from __future__ import annotations

import json
import socket
from html import escape
from http import HTTPStatus
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from controller.server.commit_reports import CommitReports, Section
from controller.store import StoreError
from gitops import statuses

__all__ = ["base_url", "report_document", "report_html", "report_routes", "wants_json"]

#: Sections shown first, in this order; any other section follows, by name.
_ORDER = ("statuses", "translation", "sync", "preview")
_HEADERS = {
    "Vary": "Accept",
    # Reports change while a commit syncs: always ask again.
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
}
_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
_WILDCARD_HOSTS = ("0.0.0.0", "::", "[::]", "")


def base_url(configured: str | None, listen: str, port: int) -> str:
    """Where `/reports/<sha>` is reached from outside: `gitops.status.reportsUrl` when set;
    otherwise `http://<host>:<port>` of the API listener, with this machine's host name
    for a wildcard address (`0.0.0.0`), since a link to 127.0.0.1 works nowhere else."""
    if configured:
        return configured.rstrip("/")
    host = listen.rpartition(":")[0]
    if host in _WILDCARD_HOSTS:
        host = socket.gethostname()
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def report_routes(reports: CommitReports) -> list[Route]:
    """`GET /reports/{sha}` and `GET /reports/{sha}.json`."""

    def show(request: Request) -> Response:
        name = str(request.path_params["name"])
        as_json = name.endswith(".json") or wants_json(request.headers.get("accept", ""))
        sha = name.removesuffix(".json").lower()
        try:
            statuses.check_sha(sha)
        except statuses.InvalidSha:
            raise HTTPException(
                HTTPStatus.BAD_REQUEST, "a report is named by a full commit SHA (40 or 64 hex)"
            ) from None
        try:
            found = reports.get(sha)
        except StoreError:
            raise HTTPException(
                HTTPStatus.SERVICE_UNAVAILABLE, "the report store (Redis) cannot be read now"
            ) from None
        if found is None:
            raise HTTPException(HTTPStatus.NOT_FOUND, f"no report for commit {sha}")
        if as_json:
            return JSONResponse(report_document(sha, found), headers=_HEADERS)
        return HTMLResponse(
            report_html(sha, found), headers={**_HEADERS, "Content-Security-Policy": _CSP}
        )

    return [Route("/reports/{name}", show, methods=["GET"])]


def wants_json(accept: str) -> bool:
    """True when `accept` ranks `application/json` above `text/html` (ties go to HTML)."""
    weights: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        weight = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        media = media.lower()
        weights[media] = max(weights.get(media, 0.0), weight)
    wanted = weights.get("application/json", 0.0)
    return wanted > 0 and wanted > weights.get("text/html", 0.0)


def report_document(sha: str, sections: dict[str, Section]) -> dict[str, Any]:
    """The JSON body: `{"sha", "sections": {name: document}, "markdown": {name: text}}`."""
    names = _ordered(sections)
    return {
        "sha": sha,
        "sections": {name: sections[name].document for name in names},
        "markdown": {
            name: sections[name].markdown for name in names if sections[name].markdown is not None
        },
    }


def _ordered(sections: dict[str, Section]) -> list[str]:
    first = [name for name in _ORDER if name in sections]
    return first + sorted(name for name in sections if name not in _ORDER)


# -- the page -------------------------------------------------------------------------------


def _e(value: object) -> str:
    """Any value as escaped HTML text (`None` as a dash)."""
    return "-" if value is None else escape(str(value), quote=True)


def report_html(sha: str, sections: dict[str, Section]) -> str:
    """The HTML page of one commit's report; every value is escaped."""
    parts = []
    for name in _ordered(sections):
        section = sections[name]
        render = _RENDERERS.get(name)
        body = render(section.document) if render else _raw(section.document)
        if section.markdown is not None:
            body += f'<pre class="markdown">{_e(section.markdown)}</pre>'
        parts.append(f"<section><h2>{_e(name)}</h2>{body}</section>")
    return _PAGE.format(sha=_e(sha), short=_e(sha[:12]), body="\n".join(parts))


def _table(headings: list[str], rows: list[list[object]]) -> str:
    if not rows:
        return "<p>none</p>"
    head = "".join(f"<th>{_e(h)}</th>" for h in headings)
    body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _state(value: object) -> str:
    return f'<span class="state {_e(value)}">{_e(value)}</span>'


def _statuses(document: dict[str, Any]) -> str:
    rows = []
    for context, status in sorted((document.get("statuses") or {}).items()):
        state = status.get("state")
        rows.append(
            f"<tr><td>{_e(context)}</td><td>{_state(state)}</td>"
            f"<td>{_e(status.get('description'))}</td></tr>"
        )
    if not rows:
        return "<p>none</p>"
    head = "<tr><th>context</th><th>state</th><th>description</th></tr>"
    return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def _translation(document: dict[str, Any]) -> str:
    out = []
    if "state" in document:
        out.append(f"<p>{_state(document['state'])} {_e(document.get('description'))}</p>")
    counts = document.get("counts") or {}
    out.append(_table(list(counts), [list(counts.values())]))
    resources = []
    for r in document.get("resources") or []:
        where = f"{r.get('file')}:{r.get('line')}" if r.get("file") else None
        reasons = "; ".join(
            " ".join(
                str(x)
                for x in (
                    reason.get("reason"),
                    f"[{reason['cluster']}]" if reason.get("cluster") else "",
                    f"{reason['field']}:" if reason.get("field") else "",
                    reason.get("message"),
                )
                if x
            )
            for reason in r.get("reasons") or []
        )
        name = f"{r.get('namespace')}/{r.get('name')}" if r.get("namespace") else r.get("name")
        resources.append([r.get("kind"), name, r.get("state"), where, reasons])
    out.append("<h3>Resources not ACCEPTED</h3>")
    out.append(_table(["kind", "name", "state", "file", "reasons"], resources))
    loose = document.get("diagnostics") or []
    if loose:
        rows: list[list[object]] = [
            [
                f"{d.get('file')}:{d.get('line')}" if d.get("file") else None,
                d.get("severity"),
                d.get("reason"),
                d.get("message"),
            ]
            for d in loose
        ]
        out.append("<h3>File diagnostics</h3>")
        out.append(_table(["file", "severity", "reason", "message"], rows))
    if document.get("omitted"):
        out.append(f"<p>{_e(document['omitted'])} more not listed</p>")
    return "".join(out)


def _sync(document: dict[str, Any]) -> str:
    rows = []
    for name, c in sorted((document.get("clusters") or {}).items()):
        errors = "; ".join(f"{e.get('object')}: {e.get('message')}" for e in c.get("errors") or [])
        cells = [
            c.get("description"),
            c.get("publishedVersion"),
            c.get("appliedVersion"),
            c.get("objects"),
            c.get("drift"),
            errors or None,
        ]
        rows.append(
            f"<tr><td>{_e(name)}</td><td>{_state(c.get('state'))}</td>"
            + "".join(f"<td>{_e(v)}</td>" for v in cells)
            + "</tr>"
        )
    if not rows:
        return "<p>none</p>"
    headings = ["cluster", "state", "description", "published", "applied", "objects", "drift"]
    head = "".join(f"<th>{h}</th>" for h in [*headings, "errors"])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _raw(document: dict[str, Any]) -> str:
    return f"<pre>{_e(json.dumps(document, indent=2, sort_keys=True, default=str))}</pre>"


_RENDERERS = {"statuses": _statuses, "translation": _translation, "sync": _sync}

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>mesh-gitops: commit {short}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; margin: 0.5em 0; }}
th, td {{ border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; vertical-align: top; }}
pre {{ background: #f6f8fa; padding: 0.5em; overflow-x: auto; }}
.state.success {{ color: #1a7f37; }} .state.failure, .state.error {{ color: #cf222e; }}
.state.pending {{ color: #9a6700; }}
</style></head>
<body><h1>Commit <code>{sha}</code></h1>
<p><a href="/reports/{sha}.json">JSON</a></p>
{body}
</body></html>
"""

"""Install manifests from Helm values: what `gitops install render` prints.

Pure: values files in (bytes), Kubernetes objects and diagnostics out. The CLI
(`controller/cli.py`) reads the files, calls `render_files`, and prints the objects with
`gitops.rendering.dump_all`.

    render_files(files, options) -> Rendered
      parse + merge + validate      gitops.helm.validation (schema, rules, line numbers)
      effective values              gitops.install.context
      management plane              gitops.install.mgmt   (glooMgmtServer.enabled)
      bundled Redis                 gitops.install.redis  (... and redis.deployment.enabled)
      agent                         gitops.install.agent  (glooAgent.enabled)

Output is deterministic: objects in apply order (ServiceAccounts, ConfigMaps, RBAC,
Services, Deployments), then by namespace and name; keys sorted by the emitter. Secrets are
never rendered, only referenced by name. Any error means no objects at all: half an install
is worse than none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gitops.diagnostics import Diagnostic, has_errors, sort_key
from gitops.helm import validation
from gitops.helm.models import Values
from gitops.helm.rules import Finding
from gitops.install import agent, context, mgmt, pods, redis
from gitops.install.context import Options
from gitops.reasons import Reason

__all__ = ["Options", "Rendered", "render", "render_files"]


@dataclass(frozen=True, slots=True)
class Rendered:
    """The manifests (empty when anything is wrong) and every diagnostic, sorted."""

    objects: tuple[dict[str, Any], ...]
    diagnostics: tuple[Diagnostic, ...]

    @property
    def failed(self) -> bool:
        return has_errors(self.diagnostics)


def render(
    values: Values, merged: Mapping[str, Any], options: Options
) -> tuple[list[dict[str, Any]], list[Finding]]:
    """Objects for checked values (`merged`: the raw merged values files), and the problems
    only an install can see (the agent's cluster name, Secrets in other namespaces)."""
    findings: list[Finding] = []
    ctx = context.build(values, merged, options)
    objects: list[dict[str, Any]] = []
    if not (values.gloo_mgmt_server.enabled or values.gloo_agent.enabled):
        findings.append(
            Finding(
                Reason.MissingHelmValue,
                "nothing to render: neither glooMgmtServer.enabled nor glooAgent.enabled is true",
                ("glooMgmtServer.enabled", "glooAgent.enabled"),
            )
        )
    if values.gloo_mgmt_server.enabled:
        objects += mgmt.render(ctx, findings)
        if values.redis.deployment.enabled:
            objects += redis.render(ctx)
    if values.gloo_agent.enabled:
        if ctx.cluster is None:
            findings.append(
                Finding(
                    Reason.MissingHelmValue,
                    "common.cluster is required for the agent (it is the agent's identity); "
                    "set it in the values or pass --cluster",
                    ("common.cluster", "glooAgent.enabled"),
                )
            )
        objects += agent.render(ctx, findings)
    objects.sort(key=pods.sort_key)
    return objects, findings


def render_files(files: Sequence[tuple[str, bytes]], options: Options) -> Rendered:
    """Parse, merge (later files win), validate and render values files."""
    layers: list[validation.Layer] = []
    diagnostics: list[Diagnostic] = []
    for path, data in files:
        layer, problems = validation.parse(path, data)
        diagnostics += problems
        if layer is not None:
            layers.append(layer)
    if diagnostics:
        return Rendered((), tuple(sorted(diagnostics, key=sort_key)))
    checked = validation.check(layers, options.cluster)
    diagnostics += checked.diagnostics
    objects: list[dict[str, Any]] = []
    if checked.values is not None:
        objects, findings = render(checked.values, checked.merged, options)
        diagnostics += [
            Diagnostic(f.reason, f.message, validation.locate(layers, f.keys), None, f.keys[0])
            for f in findings
        ]
    if has_errors(diagnostics):
        objects = []
    return Rendered(tuple(objects), tuple(sorted(diagnostics, key=sort_key)))

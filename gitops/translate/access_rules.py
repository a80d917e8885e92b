"""AccessPolicy `authzList` entries -> AuthorizationPolicy rules, once per policy.

Called by `access_policy` while it plans a policy; the rules do not depend on the
cluster rendered or on the destination (the destination form adds its port later), so
they are built once and shared by every AuthorizationPolicy the policy writes. Rules
(gloo-semantics.md 3.6; access_policy.proto):

- the entries are `authzList`, else the deprecated `authz` (both set: `authz` is ignored,
  `UnsupportedField`); `dryRun` entries make a ruleset of their own;
- one rule per entry (entries are ORed, fields inside one ANDed): one source per allowed
  client, in order, with the entry's `ipBlocks`/`remoteIpBlocks` in each (or in one source
  of their own when there are no clients); `to.operation{paths, methods}`; one `when`
  condition `request.headers[<name>]` per header, by name;
- a client: `serviceAccountSelector` -> `principals` (`authz.Identities.matching`),
  `requestIdentityMatcher` -> `requestPrincipals`/`notRequestPrincipals`,
  `externalWorkloadSelector` -> nothing (not translated); an empty client allows every
  identity, so the rule gets no identity constraint;
- never an empty source: a client matching nothing is left out (`NothingSelected`); an
  entry whose clients all match nothing is dropped (`NothingSelected`);
- with `applyToWorkloads`, an entry with nothing set allows no request (Gloo's documented
  fallback): it adds no rule but marks the ruleset `allow_nothing`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gitops.bundle import ConfigObject
from gitops.diagnostics import Diagnostic
from gitops.models.security import AccessPolicySpec, AuthzEntry, IdentitySelector
from gitops.reasons import Reason
from gitops.translate import authz
from gitops.translate.authz import Identities

AccessPolicy = ConfigObject[AccessPolicySpec]


@dataclass(frozen=True, slots=True)
class Ruleset:
    """The rules of one AuthorizationPolicy (enforced or dry-run), before ports are added."""

    rules: list[dict[str, Any]]
    principal_bytes: int
    #: An explicit "allow nothing" entry (`{}` with `applyToWorkloads`).
    allow_nothing: bool

    @property
    def emits(self) -> bool:
        return bool(self.rules) or self.allow_nothing

    @property
    def problem(self) -> str | None:
        return authz.oversize(self.rules, self.principal_bytes)


def rulesets(
    policy: AccessPolicy, identities: Identities, workloads_form: bool
) -> tuple[Ruleset, Ruleset, list[Diagnostic]]:
    """The enforced and the dry-run rules of a policy, and what went wrong building them."""
    problems: list[Diagnostic] = []
    config = policy.spec.config
    if config.authz_list and config.authz is not None:
        problems.append(
            Diagnostic(
                Reason.UnsupportedField,
                "the deprecated authz is ignored because authzList is set",
                policy.source,
                policy.ref,
                "spec.config.authz",
            )
        )
    entries = config.effective_authz()
    if config.authz_list:
        paths = [f"spec.config.authzList[{i}]" for i in range(len(entries))]
    else:
        paths = ["spec.config.authz"] * len(entries)
    builder = _Builder(policy, identities, problems)
    found = []
    for dry_run in (False, True):
        chosen = [(e, p) for e, p in zip(entries, paths, strict=True) if e.dry_run is dry_run]
        found.append(builder.ruleset(chosen, workloads_form))
    return found[0], found[1], problems


@dataclass
class _Builder:
    policy: AccessPolicy
    identities: Identities
    problems: list[Diagnostic]

    def _diag(self, message: str, where: str) -> None:
        policy = self.policy
        self.problems.append(
            Diagnostic(Reason.NothingSelected, message, policy.source, policy.ref, where)
        )

    def ruleset(self, entries: list[tuple[AuthzEntry, str]], workloads_form: bool) -> Ruleset:
        rules: list[dict[str, Any]] = []
        size = 0
        allow_nothing = False
        for entry, where in entries:
            if workloads_form and _is_empty(entry):
                allow_nothing = True
                continue
            built = self._rule(entry, where)
            if built is not None:
                rule, principal_bytes = built
                rules.append(rule)
                size += principal_bytes
        return Ruleset(rules, size, allow_nothing)

    def _rule(self, entry: AuthzEntry, where: str) -> tuple[dict[str, Any], int] | None:
        """One authz entry as an Istio rule (and its principals' size), or None to drop it."""
        blocks: dict[str, Any] = {}
        if entry.allowed_ip_blocks:
            blocks["ipBlocks"] = list(entry.allowed_ip_blocks)
        if entry.allowed_remote_ip_blocks:
            blocks["remoteIpBlocks"] = list(entry.allowed_remote_ip_blocks)
        sources: list[dict[str, Any]] | None = None  # None: any client identity
        size = 0
        if entry.allowed_clients:
            sources = []
            unmatched = []
            for j, client in enumerate(entry.allowed_clients):
                found = self._identity(client)
                if found is None:
                    unmatched.append(f"{where}.allowedClients[{j}]")
                    continue
                identity, principal_bytes = found
                if not identity:  # an empty selector: every client identity
                    sources = None
                    size = 0
                    break
                source = {**identity, **blocks}
                if source not in sources:
                    sources.append(source)
                    size += principal_bytes
            if sources == []:
                self._diag(
                    "no allowed client matches a service account, so this entry allows "
                    "nobody and is not translated (an empty source would allow everyone)",
                    f"{where}.allowedClients",
                )
                return None
            for client_path in unmatched:
                self._diag(
                    "this client matches no service account in any cluster; it is left out",
                    client_path,
                )
        rule: dict[str, Any] = {}
        if sources is not None:
            rule["from"] = [{"source": s} for s in sources]
        elif blocks:
            rule["from"] = [{"source": blocks}]
        operation: dict[str, Any] = {}
        if entry.allowed_paths:
            operation["paths"] = list(entry.allowed_paths)
        if entry.allowed_methods:
            operation["methods"] = list(entry.allowed_methods)
        if operation:
            rule["to"] = [{"operation": operation}]
        headers = entry.match.request.headers if entry.match and entry.match.request else {}
        if headers:
            when = []
            for header, condition in sorted(headers.items()):
                item: dict[str, Any] = {"key": f"request.headers[{header}]"}
                if condition.values:
                    item["values"] = list(condition.values)
                if condition.not_values:
                    item["notValues"] = list(condition.not_values)
                when.append(item)
            rule["when"] = when
        return rule, size

    def _identity(self, client: IdentitySelector) -> tuple[dict[str, Any], int] | None:
        """A client's identity constraints ({} = any identity), or None if it matches none."""
        if client.external_workload_selector is not None:
            return None  # external workloads are not translated (reported as unsupported)
        identity: dict[str, Any] = {}
        size = 0
        if client.service_account_selector is not None:
            principals = self.identities.matching(client.service_account_selector)
            if not principals.values:
                return None
            identity["principals"] = principals.values
            size = principals.size
        matcher = client.request_identity_matcher
        if matcher is not None:
            if matcher.request_principals:
                identity["requestPrincipals"] = list(matcher.request_principals)
            if matcher.not_request_principals:
                identity["notRequestPrincipals"] = list(matcher.not_request_principals)
        return identity, size


def _is_empty(entry: AuthzEntry) -> bool:
    """An entry that restricts nothing (`{}`; `dryRun` aside)."""
    headers = entry.match.request.headers if entry.match and entry.match.request else {}
    return not (
        entry.allowed_clients
        or entry.allowed_paths
        or entry.allowed_methods
        or headers
        or entry.allowed_ip_blocks
        or entry.allowed_remote_ip_blocks
    )

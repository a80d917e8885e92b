"""Spec models of AccessPolicy, JWTPolicy and ExternalService: realistic examples load with
Gloo's defaults, schema mistakes carry their camelCase path, and the protos' rules refuse
bad values."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest
import yaml

from gitops import models
from gitops.models.base import GlooModel
from gitops.models.external import ExternalServiceSpec
from gitops.models.security import AccessPolicySpec, JWTPolicySpec

SECOND = 1_000_000_000


def load(model: type[GlooModel], text: str) -> Any:
    return model.model_validate(yaml.safe_load(text))


def errors(model: type[GlooModel], text: str) -> list[dict[str, Any]]:
    with pytest.raises(pydantic.ValidationError) as info:
        load(model, text)
    return [dict(e) for e in info.value.errors()]


def messages(model: type[GlooModel], text: str) -> str:
    return " | ".join(e["msg"] for e in errors(model, text))


# -- AccessPolicy -------------------------------------------------------------------------------

ACCESS_POLICY = """
applyToWorkloads:
- selector:
    labels: {app: ratings}
    namespace: bookinfo-backends
config:
  authn:
    tlsMode: STRICT
  enforcementLayers: {mesh: true}
  authzList:
  - allowedClients:
    - serviceAccountSelector:
        labels: {app: productpage}
    - requestIdentityMatcher:
        requestPrincipals: ["https://idp.example.com/alice"]
    allowedPaths: [/ratings*, "*/health", /exact, "*"]
    allowedMethods: [GET, PATCH]
    match:
      request:
        headers:
          X-Test-Header:
            values: [match, partial*]
            notValues: [noMatch]
    allowedIpBlocks: [112.114.230.1, 10.0.0.0/8, "2001:db8::/32", "::1"]
    allowedRemoteIpBlocks: [192.168.0.1/24]
  - allowedClients:
    - serviceAccountSelector: {labels: {app: reviews}}
    dryRun: true
"""


def test_access_policy_example() -> None:
    spec = load(AccessPolicySpec, ACCESS_POLICY)
    assert spec.apply_to_destinations == []
    [workload] = spec.apply_to_workloads
    assert workload.selector.labels == {"app": "ratings"}
    assert workload.selector.namespace == "bookinfo-backends"
    config = spec.config
    assert config.authn.tls_mode == "STRICT"
    assert (config.enforcement_layers.mesh, config.enforcement_layers.cni) == (True, False)
    first, second = config.effective_authz()
    assert first.allowed_clients[0].service_account_selector.labels == {"app": "productpage"}
    assert first.allowed_clients[1].request_identity_matcher.request_principals == [
        "https://idp.example.com/alice"
    ]
    assert first.allowed_clients[1].request_identity_matcher.not_request_principals == []
    assert first.allowed_methods == ["GET", "PATCH"]
    header = first.match.request.headers["X-Test-Header"]
    assert (header.values, header.not_values) == (["match", "partial*"], ["noMatch"])
    assert first.allowed_remote_ip_blocks == ["192.168.0.1/24"]
    assert (first.dry_run, second.dry_run) == (False, True)
    assert second.allowed_paths == second.allowed_methods == second.allowed_ip_blocks == []


def test_access_policy_defaults_and_deprecated_authz() -> None:
    # gloo-semantics.md Ex 8: the deprecated single `authz`, destination form.
    spec = load(
        AccessPolicySpec,
        "{applyToDestinations: [{selector: {labels: {app: reviews}}}], "
        "config: {authz: {allowedClients: [{serviceAccountSelector: "
        "{name: bookinfo-productpage}}], allowedMethods: [GET]}}}",
    )
    [dest] = spec.apply_to_destinations
    assert (dest.kind, dest.port) == ("SERVICE", None)
    assert spec.config.authn is None and spec.config.authz_list == []
    [entry] = spec.config.effective_authz()
    assert entry is spec.config.authz
    assert entry.allowed_clients[0].service_account_selector.name == "bookinfo-productpage"
    empty = load(AccessPolicySpec, "{}")
    assert empty.config.effective_authz() == [] and empty.apply_to_workloads == []
    assert load(AccessPolicySpec, "{config: {authn: {}}}").config.authn.tls_mode == "DISABLE"


def test_authz_list_wins_over_authz() -> None:
    spec = load(
        AccessPolicySpec,
        "{config: {authz: {allowedMethods: [GET]}, authzList: [{allowedMethods: [POST]}]}}",
    )
    [entry] = spec.config.effective_authz()
    assert entry.allowed_methods == ["POST"]


def test_access_policy_unknown_field_has_camel_case_path() -> None:
    [err] = errors(AccessPolicySpec, "{config: {authzList: [{}, {allowedPath: [/a]}]}}")
    assert err["type"] == "extra_forbidden"
    assert err["loc"] == ("config", "authzList", 1, "allowedPath")


def test_workload_selector_has_no_name() -> None:
    [err] = errors(AccessPolicySpec, "{applyToWorkloads: [{selector: {name: ratings}}]}")
    assert err["loc"] == ("applyToWorkloads", 0, "selector", "name")
    assert err["type"] == "extra_forbidden"


@pytest.mark.parametrize("path", ["/a*b", "**", "*/a*", "/a/*/b", ""])
def test_bad_allowed_paths(path: str) -> None:
    [err] = errors(AccessPolicySpec, f"{{config: {{authzList: [{{allowedPaths: ['{path}']}}]}}}}")
    assert err["loc"] == ("config", "authzList", 0, "allowedPaths", 0)
    assert "path" in err["msg"]


@pytest.mark.parametrize(
    ("block", "field"),
    [
        ("10.0.0.0/33", "allowedIpBlocks"),
        ("10.0.0", "allowedIpBlocks"),
        ("example.com", "allowedRemoteIpBlocks"),
        ("2001:db8::/129", "allowedRemoteIpBlocks"),
        ("010.0.0.1", "allowedIpBlocks"),
    ],
)
def test_bad_ip_blocks(block: str, field: str) -> None:
    [err] = errors(AccessPolicySpec, f"{{config: {{authzList: [{{{field}: ['{block}']}}]}}}}")
    assert err["loc"] == ("config", "authzList", 0, field, 0)
    assert "not an IPv4/IPv6 address or CIDR" in err["msg"]


def test_methods_are_upper_case_http_methods() -> None:
    [err] = errors(AccessPolicySpec, "{config: {authz: {allowedMethods: [GET, get]}}}")
    assert err["loc"] == ("config", "authz", "allowedMethods", 1)
    assert "write 'GET'" in err["msg"]
    assert "not an HTTP method" in messages(
        AccessPolicySpec, "{config: {authz: {allowedMethods: ['GET POST']}}}"
    )


def test_header_condition_needs_values() -> None:
    text = "{config: {authz: {match: {request: {headers: {x-a: {}}}}}}}"
    [err] = errors(AccessPolicySpec, text)
    assert err["loc"] == ("config", "authz", "match", "request", "headers", "x-a")
    assert "'values', 'notValues' or both" in err["msg"]


def test_tls_mode_is_an_enum() -> None:
    [err] = errors(AccessPolicySpec, "{config: {authn: {tlsMode: strict}}}")
    assert err["loc"] == ("config", "authn", "tlsMode") and err["type"] == "literal_error"


# -- JWTPolicy ----------------------------------------------------------------------------------

PEM = "-----BEGIN PUBLIC KEY-----\\nMIIBIjANBgkq\\n-----END PUBLIC KEY-----"

JWT_POLICY = f"""
applyToRoutes:
- route:
    labels: {{route: httpbin}}
config:
  phase:
    preAuthz: {{}}
  providers:
    provider1:
      issuer: https://localhost
      audiences: [httpbin]
      local:
        inline: "{PEM}"
      tokenSource:
        headers:
        - name: X-Auth
          prefix: 'Bearer '
        queryParams: [auth_token]
      claimsToHeaders:
      - claim: org
        header: x-org
        append: true
      - claim: email
        header: x-email
    idp:
      remote:
        url: https://idp.example.com/.well-known/jwks.json
        destinationRef:
          ref: {{name: idp, namespace: gloo-mesh}}
          kind: EXTERNAL_SERVICE
          port: {{number: 443}}
        cacheDuration: 10m
      keepToken: true
      clockSkewSeconds: 0
  claims:
  - key: email
    values: ["*@solo.io"]
    nestedClaimDelimiter: "."
  requiredScopes: [email, "is:developer"]
"""


def test_jwt_policy_example_and_defaults() -> None:
    spec = load(JWTPolicySpec, JWT_POLICY)
    assert spec.apply_to_routes[0].route.labels == {"route": "httpbin"}
    assert spec.apply_to_destinations == []
    config = spec.config
    assert config.phase.pre_authz.priority is None and config.phase.post_authz is None
    assert (config.clear_route_cache, config.allow_missing_or_failed) == ("AUTO", False)
    assert config.effective_validation_policy() == "REQUIRE_VALID"
    assert config.required_scopes == ["email", "is:developer"]
    assert config.claims[0].nested_claim_delimiter == "."
    local, remote = config.providers["provider1"], config.providers["idp"]
    assert local.local.inline.startswith("-----BEGIN PUBLIC KEY-----\n")
    assert local.remote is None and local.issuer == "https://localhost"
    assert (local.keep_token, local.clock_skew_seconds) == (False, 60)
    assert local.token_source.headers[0].prefix == "Bearer "
    assert local.token_source.query_params == ["auth_token"]
    assert [(c.claim, c.header, c.append) for c in local.claims_to_headers] == [
        ("org", "x-org", True),
        ("email", "x-email", False),
    ]
    assert remote.local is None and remote.token_source is None
    assert remote.remote.destination_ref.kind == "EXTERNAL_SERVICE"
    assert remote.remote.cache_duration == 600 * SECOND
    assert remote.remote.timeout == 5 * SECOND and remote.remote.enable_async_fetch is False
    assert (remote.keep_token, remote.clock_skew_seconds) == (True, 0)


def test_remote_jwks_defaults_and_secret_ref() -> None:
    spec = load(
        JWTPolicySpec,
        "{config: {providers: {a: {remote: {url: 'http://jwks.example.com/keys'}}, "
        "b: {local: {secretRef: {objectRef: {name: jwks}, key: public.pem}}}}}}",
    )
    remote = spec.config.providers["a"].remote
    assert remote.cache_duration == 300 * SECOND and remote.destination_ref is None
    secret = spec.config.providers["b"].local.secret_ref
    assert (secret.object_ref.name, secret.object_ref.namespace, secret.key) == (
        "jwks",
        None,
        "public.pem",
    )


def test_validation_policy_and_deprecated_flag() -> None:
    def policy(config: str) -> str:
        text = f"{{config: {{providers: {{a: {{local: {{inline: k}}}}}}, {config}}}}}"
        spec: JWTPolicySpec = load(JWTPolicySpec, text)
        return spec.config.effective_validation_policy()

    assert policy("allowMissingOrFailed: true") == "ALLOW_MISSING_OR_FAILED"
    assert policy("validationPolicy: ALLOW_MISSING") == "ALLOW_MISSING"
    assert policy("validationPolicy: ALLOW_MISSING, allowMissingOrFailed: true") == "ALLOW_MISSING"
    assert policy("clearRouteCache: 'FALSE'") == "REQUIRE_VALID"


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        (
            "{local: {inline: k}, remote: {url: 'https://a.b/jwks'}}",
            "set exactly one of 'local', 'remote'; found 'local', 'remote'",
        ),
        ("{issuer: x}", "set exactly one of 'local', 'remote'; found none"),
    ],
)
def test_provider_needs_exactly_one_jwks_source(provider: str, expected: str) -> None:
    [err] = errors(JWTPolicySpec, f"{{config: {{providers: {{p: {provider}}}}}}}")
    assert err["loc"] == ("config", "providers", "p") and expected in err["msg"]


def test_local_jwks_needs_exactly_one_specifier() -> None:
    text = (
        "{config: {providers: {p: {local: {inline: k, "
        "secretRef: {objectRef: {name: s}, key: k}}}}}}"
    )
    [err] = errors(JWTPolicySpec, text)
    assert err["loc"] == ("config", "providers", "p", "local")
    assert "'secretRef', 'inline'" in err["msg"]


@pytest.mark.parametrize(
    ("config", "loc", "words"),
    [
        ("{providers: {}}", ("config", "providers"), "at least 1"),
        (
            "{providers: {p: {remote: {url: idp.example.com/jwks}}}}",
            ("config", "providers", "p", "remote", "url"),
            "http(s) URL",
        ),
        (
            "{providers: {p: {remote: {url: 'https://a.b/k', cacheDuration: 300}}}}",
            ("config", "providers", "p", "remote", "cacheDuration"),
            "duration string",
        ),
        (
            "{providers: {p: {local: {inline: k}}}, claims: [{key: sub}]}",
            ("config", "claims", 0),
            "'values', 'notValues' or both",
        ),
        (
            "{providers: {p: {local: {inline: k}}}, phase: {preAuthz: {}, postAuthz: {}}}",
            ("config", "phase"),
            "at most one of 'preAuthz', 'postAuthz'",
        ),
        (
            "{providers: {p: {local: {inline: k}, clockSkewSeconds: -1}}}",
            ("config", "providers", "p", "clockSkewSeconds"),
            "greater than or equal to 0",
        ),
    ],
)
def test_jwt_rules(config: str, loc: tuple[Any, ...], words: str) -> None:
    [err] = errors(JWTPolicySpec, f"{{config: {config}}}")
    assert err["loc"] == loc and words in err["msg"]


def test_jwt_unknown_field_and_missing_config() -> None:
    [err] = errors(
        JWTPolicySpec, "{config: {providers: {p: {local: {inline: k}, claimToHeaders: []}}}}"
    )
    assert err["type"] == "extra_forbidden"
    assert err["loc"] == ("config", "providers", "p", "claimToHeaders")
    [err] = errors(JWTPolicySpec, "{applyToRoutes: []}")
    assert err["loc"] == ("config",) and err["type"] == "missing"


# -- ExternalService ----------------------------------------------------------------------------

EXTERNAL_SERVICE = """
hosts: [httpbin.org, "*.googleapis.com"]
ports:
- name: http
  number: 80
  protocol: HTTP
  egressGatewayRoutes:
    virtualGatewayRefs: [{name: egress-gw, namespace: istio-gateways}]
- name: https
  number: 443
  protocol: HTTPS
  clientsideTls:
    sni: httpbin.org
    caCertificates: /etc/certs/ca.pem
    insecureSkipVerify: false
- name: origination
  number: 8080
  protocol: HTTP
  targetPort: {number: 443}
  clientsideTls: {mode: MUTUAL, clientCertificate: /c.pem, privateKey: /k.pem}
subjectAltNames: [httpbin.org]
"""


def test_external_service_example_and_defaults() -> None:
    spec = load(ExternalServiceSpec, EXTERNAL_SERVICE)
    assert spec.hosts == ["httpbin.org", "*.googleapis.com"]
    assert spec.addresses == [] and spec.selector == {}
    http, https, origination = spec.ports
    assert http.egress_gateway_routes.port_match == 80
    assert http.egress_gateway_routes.virtual_gateway_refs[0].name == "egress-gw"
    assert (http.target_port, http.clientside_tls) == (None, None)
    tls = https.clientside_tls
    assert (tls.mode, tls.sni, tls.insecure_skip_verify) == ("SIMPLE", "httpbin.org", False)
    assert tls.credential_name is None
    assert origination.target_port.number == 443
    assert origination.clientside_tls.mode == "MUTUAL"
    assert spec.subject_alt_names == ["httpbin.org"]


def test_external_service_by_addresses_and_endpoints() -> None:
    spec = load(
        ExternalServiceSpec,
        "{addresses: [10.1.0.0/16, '2001:db8::1'], selector: {app: db}, "
        "ports: [{number: 5432, protocol: TCP, targetPort: {name: pg}}]}",
    )
    assert spec.addresses == ["10.1.0.0/16", "2001:db8::1"] and spec.hosts == []
    assert spec.ports[0].target_port.name == "pg" and spec.ports[0].name is None
    zero = load(
        ExternalServiceSpec,
        "{hosts: [a.example.com], ports: [{number: 80, protocol: HTTP, "
        "egressGatewayRoutes: {portMatch: 0}}]}",
    )
    assert zero.ports[0].egress_gateway_routes.port_match == 80


def test_external_service_needs_ports_and_hosts() -> None:
    [err] = errors(ExternalServiceSpec, "{hosts: [a.example.com]}")
    assert err["loc"] == ("ports",) and err["type"] == "missing"
    [err] = errors(ExternalServiceSpec, "{hosts: [a.example.com], ports: []}")
    assert err["loc"] == ("ports",) and err["type"] == "too_short"
    expected = "set exactly one of 'hosts', 'addresses'; found neither"
    assert expected in messages(ExternalServiceSpec, "{ports: [{number: 80, protocol: HTTP}]}")
    both = "{hosts: [a.example.com], addresses: [10.0.0.1], ports: [{number: 80, protocol: TCP}]}"
    assert "found both" in messages(ExternalServiceSpec, both)


@pytest.mark.parametrize(
    ("text", "loc", "words"),
    [
        ("{hosts: ['*'], ports: [{number: 80, protocol: HTTP}]}", ("hosts", 0), "host '*'"),
        (
            "{hosts: ['a.*.example.com'], ports: [{number: 80, protocol: HTTP}]}",
            ("hosts", 0),
            "left-most label",
        ),
        (
            "{hosts: [a.example.com, a.example.com], ports: [{number: 80, protocol: HTTP}]}",
            ("hosts",),
            "more than once",
        ),
        (
            "{addresses: [10.0.0.256], ports: [{number: 80, protocol: TCP}]}",
            ("addresses", 0),
            "CIDR",
        ),
        (
            "{hosts: [a.b], ports: [{number: 80, protocol: HTTP}, {number: 80, protocol: TCP}]}",
            ("ports",),
            "port number(s) [80]",
        ),
        (
            "{hosts: [a.b], ports: [{number: 80, name: x, protocol: HTTP}, "
            "{number: 81, name: x, protocol: HTTP}]}",
            ("ports",),
            "port name(s) ['x']",
        ),
        (
            "{hosts: [a.b], ports: [{number: 80, protocol: TCP, targetPort: {name: x}}]}",
            (),
            "needs ExternalEndpoints",
        ),
        (
            "{addresses: [10.0.0.1], ports: [{number: 80, protocol: HTTP, "
            "egressGatewayRoutes: {}}]}",
            (),
            "needs 'hosts'",
        ),
        (
            "{hosts: [a.b], ports: [{number: 80, protocol: TCP, egressGatewayRoutes: {}}]}",
            ("ports", 0),
            "only supported on HTTP, HTTP2, HTTPS",
        ),
        (
            "{hosts: [a.b], ports: [{number: 80, protocol: HTTP, egressGatewayRoutes: {}}, "
            "{number: 81, protocol: HTTP, egressGatewayRoutes: {portMatch: 80}}]}",
            ("ports",),
            "portMatch [80]",
        ),
        (
            "{hosts: [a.b], ports: [{number: 443, protocol: TLS, clientsideTls: {mode: MUTUAL}}]}",
            ("ports", 0, "clientsideTls"),
            "MUTUAL needs",
        ),
        (
            "{hosts: [a.b], ports: [{number: 443, protocol: TLS, "
            "clientsideTls: {mode: ISTIO_MUTUAL, caCertificates: /ca.pem}}]}",
            ("ports", 0, "clientsideTls"),
            "remove ['caCertificates']",
        ),
    ],
)
def test_external_service_rules(text: str, loc: tuple[Any, ...], words: str) -> None:
    [err] = errors(ExternalServiceSpec, text)
    assert err["loc"] == loc and words in err["msg"], err


def test_external_service_schema_errors() -> None:
    [err] = errors(ExternalServiceSpec, "{hosts: [a.b], ports: [{number: 80, protocol: http}]}")
    assert err["loc"] == ("ports", 0, "protocol") and err["type"] == "literal_error"
    typo = errors(ExternalServiceSpec, "{hosts: [a.b], ports: [{number: 80, protocl: HTTP}]}")
    assert {(e["loc"], e["type"]) for e in typo} == {
        (("ports", 0, "protocol"), "missing"),
        (("ports", 0, "protocl"), "extra_forbidden"),
    }
    assert {e["loc"] for e in errors(ExternalServiceSpec, "{hosts: [a.b], ports: [{}]}")} == {
        ("ports", 0, "number"),
        ("ports", 0, "protocol"),
    }
    [err] = errors(
        ExternalServiceSpec,
        "{hosts: [a.b], ports: [{number: 443, protocol: TLS, clientsideTls: {mode: SIMPLE, "
        "insecureSkipVerify: 'no'}}]}",
    )
    assert err["loc"] == ("ports", 0, "clientsideTls", "insecureSkipVerify")


# -- registry -----------------------------------------------------------------------------------


def test_security_kinds_are_registered() -> None:
    security = "security.policy.gloo.solo.io"
    assert models.spec_model(security, "AccessPolicy") is AccessPolicySpec
    assert models.spec_model(security, "JWTPolicy") is JWTPolicySpec
    assert models.spec_model("networking.gloo.solo.io", "ExternalService") is ExternalServiceSpec
    for kind in ((security, "AccessPolicy"), (security, "JWTPolicy")):
        assert kind not in models.KNOWN_UNSUPPORTED
    assert ("networking.gloo.solo.io", "ExternalService") not in models.KNOWN_UNSUPPORTED
    assert (security, "CORSPolicy") in models.KNOWN_UNSUPPORTED
    assert not set(models.SUPPORTED) & models.KNOWN_UNSUPPORTED

"""Spec models of the first-wave kinds: worked examples load with Gloo's defaults, schema
mistakes carry their camelCase path, and the protos' rules refuse bad values."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest
import yaml

from gitops import models
from gitops.models.admin import KubernetesClusterSpec, WorkspaceSettingsSpec, WorkspaceSpec
from gitops.models.base import GlooModel
from gitops.models.common import PortSelector, split_weights
from gitops.models.networking import RouteTableSpec, VirtualDestinationSpec, VirtualGatewaySpec
from gitops.models.policies import (
    FailoverPolicySpec,
    FaultInjectionPolicySpec,
    HeaderManipulationPolicySpec,
    OutlierDetectionPolicySpec,
    RetryTimeoutPolicySpec,
)

SECOND = 1_000_000_000


def load(model: type[GlooModel], text: str) -> Any:
    return model.model_validate(yaml.safe_load(text))


def errors(model: type[GlooModel], text: str) -> list[dict[str, Any]]:
    with pytest.raises(pydantic.ValidationError) as info:
        load(model, text)
    return [dict(e) for e in info.value.errors()]


def messages(model: type[GlooModel], text: str) -> str:
    return " | ".join(e["msg"] for e in errors(model, text))


ROUTE = "{{name: r, matchers: [{{uri: {{prefix: /}}}}], forwardTo: {{destinations: {dests}}}}}"
RATINGS = "{ref: {name: ratings, namespace: bookinfo-backends}, port: {number: 9080}"


def route_table(dests: str, hosts: str = "[ratings.bookinfo-backends.svc.cluster.local]") -> str:
    return f"{{hosts: {hosts}, http: [{ROUTE.format(dests=dests)}]}}"


# -- worked examples (gloo-semantics.md section 7) -----------------------------------------------


def test_kubernetes_cluster_defaults() -> None:
    spec = load(KubernetesClusterSpec, "{}")
    assert (spec.cluster_domain, spec.skip_warming) == ("cluster.local", False)
    assert load(KubernetesClusterSpec, "{clusterDomain: ''}").cluster_domain == "cluster.local"
    custom = load(KubernetesClusterSpec, "{clusterDomain: corp.local, skipWarming: true}")
    assert (custom.cluster_domain, custom.skip_warming) == ("corp.local", True)


def test_workspace_example() -> None:
    spec = load(
        WorkspaceSpec,
        "workloadClusters: [{name: '*', namespaces: [{name: bookinfo-frontends}, "
        "{name: bookinfo-backends}]}]",
    )
    cluster = spec.workload_clusters[0]
    assert cluster.name == "*"
    assert [ns.name for ns in cluster.namespaces] == ["bookinfo-frontends", "bookinfo-backends"]
    assert cluster.namespaces[0].config_enabled is None
    assert load(WorkspaceSpec, "{}").workload_clusters == []


def test_workspace_settings_example() -> None:
    spec = load(
        WorkspaceSettingsSpec,
        """
        importFrom:
        - workspaces: [{selector: {allow_ingress: "true"}}]
          resources: [{kind: SERVICE}, {labels: {expose: "true"}}]
        options: {serviceIsolation: {enabled: true, trimProxyConfig: true},
                  virtualDestClientMode: {tlsTermination: {}},
                  eastWestGateways: [{selector: {labels: {istio: eastwestgateway}},
                                      port: {name: tls}, hostInfoOverrides: [{addr: 1.2.3.4}]}]}
        """,
    )
    entry = spec.import_from[0]
    assert entry.workspaces[0].selector == {"allow_ingress": "true"}
    assert [r.kind for r in entry.resources] == ["SERVICE", "ALL"]
    assert spec.export_to == []
    options = spec.options
    assert options is not None and options.service_isolation is not None
    assert options.service_isolation.trim_proxy_config is True
    assert options.virtual_dest_client_mode is not None
    assert options.virtual_dest_client_mode.tls_termination is not None
    assert options.east_west_gateways[0].host_info_overrides[0].port_type == "SNI_PASSTHROUGH"
    assert options.trim_all_proxy_config is False


def test_gateway_route_table_example() -> None:
    spec = load(
        RouteTableSpec,
        """
        hosts: [www.example.com]
        virtualGateways: [{name: north-south-gw, namespace: istio-gateways, cluster: cluster1}]
        workloadSelectors: []
        http:
        - name: productpage
          matchers: [{uri: {exact: /productpage}}, {uri: {prefix: /static}}]
          forwardTo: {destinations: [{ref: {name: productpage, namespace: bookinfo-frontends},
                                      port: {number: 9080}}]}
        """,
    )
    assert spec.virtual_gateways[0].cluster == "cluster1"
    route = spec.http[0]
    assert route.matchers[0].uri is not None and route.matchers[0].uri.exact == "/productpage"
    dest = route.forward_to.destinations[0]
    assert (dest.kind, dest.weight, dest.subset) == ("SERVICE", None, {})
    assert route.forward_to.effective_weights() == [100]
    assert (spec.weight, spec.failure_mode) == (0, "ROUTE_REPLACEMENT")


def test_subset_route_table_and_delegation_defaults() -> None:
    spec = load(
        RouteTableSpec,
        f"""
        hosts: [reviews.bookinfo-backends.svc.cluster.local]
        workloadSelectors: [{{selector: {{labels: {{app: productpage}}}}}}]
        http:
        - {{name: reviews, labels: {{request_timeout: "0.5s"}},
           forwardTo: {{destinations: [{RATINGS}, subset: {{version: v2}}}}]}}}}
        - {{name: child, delegate: {{routeTables: [{{labels: {{table: child}}}}]}}}}
        """,
    )
    assert spec.http[0].forward_to.destinations[0].subset == {"version": "v2"}
    assert spec.workload_selectors[0].kind == "KUBE"
    delegate = spec.http[1].delegate
    assert delegate is not None and delegate.sort_method == "TABLE_WEIGHT"


def test_virtual_gateway_example() -> None:
    spec = load(
        VirtualGatewaySpec,
        "{workloads: [{selector: {labels: {istio: ingressgateway}, cluster: cluster1}}], "
        "listeners: [{http: {}, port: {number: 80}, allowedRouteTables: [{host: '*'}]}]}",
    )
    listener = spec.listeners[0]
    assert listener.port.number == 80 and listener.http is not None and listener.tcp is None
    assert listener.allowed_route_tables[0].host == "*"
    assert listener.allowed_route_tables[0].selector is None


def test_virtual_destination_example() -> None:
    spec = load(
        VirtualDestinationSpec,
        "{hosts: [reviews.global], services: [{namespace: bookinfo-backends, "
        "labels: {app: reviews}}], ports: [{number: 9080, protocol: HTTP}]}",
    )
    assert spec.ports[0].target_port is None and spec.client_mode is None
    assert spec.services[0].labels == {"app": "reviews"}


def test_fault_injection_example_and_default_percentage() -> None:
    spec = load(
        FaultInjectionPolicySpec,
        "{applyToRoutes: [{route: {labels: {fault_injection: 'true'}}}], "
        "config: {delay: {fixedDelay: 2s, percentage: 100}}}",
    )
    assert spec.config.delay is not None and spec.config.delay.fixed_delay == 2 * SECOND
    selector = spec.apply_to_routes[0]
    assert selector.route is not None and selector.route.labels == {"fault_injection": "true"}
    abort = load(FaultInjectionPolicySpec, "config: {abort: {httpStatus: 503}}").config.abort
    assert abort is not None and abort.percentage == 100.0


def test_retry_timeout_example_and_default_attempts() -> None:
    spec = load(
        RetryTimeoutPolicySpec,
        "{applyToRoutes: [{route: {labels: {request_timeout: '0.5s'}}}], "
        "config: {requestTimeout: 0.5s}}",
    )
    assert spec.config.request_timeout == SECOND // 2 and spec.config.retries is None
    retries = load(RetryTimeoutPolicySpec, "config: {retries: {perTryTimeout: 2s}}").config.retries
    assert retries is not None and retries.attempts == 2 and retries.retry_on is None


def test_failover_and_outlier_detection_examples() -> None:
    failover = load(
        FailoverPolicySpec,
        "{applyToDestinations: [{kind: VIRTUAL_DESTINATION, selector: {labels: {failover: "
        "'true'}}}], config: {localityMappings: []}}",
    )
    assert failover.apply_to_destinations[0].kind == "VIRTUAL_DESTINATION"
    outlier = load(
        OutlierDetectionPolicySpec,
        "config: {consecutiveErrors: 2, interval: 5s, baseEjectionTime: 30s, "
        "maxEjectionPercent: 100}",
    ).config
    assert (outlier.consecutive_errors, outlier.interval) == (2, 5 * SECOND)
    defaults = load(OutlierDetectionPolicySpec, "config: {}").config
    assert (
        defaults.consecutive_errors,
        defaults.interval,
        defaults.base_ejection_time,
        defaults.max_ejection_percent,
        defaults.consecutive_gateway_errors,
    ) == (5, 10 * SECOND, 30 * SECOND, 100, 0)


def test_failover_locality_mapping_uses_from() -> None:
    spec = load(
        FailoverPolicySpec,
        "config: {localityMappings: [{from: {region: us-east-1}, "
        "to: [{region: us-west-1, weight: 80}, {region: eu-west-1}]}]}",
    )
    mapping = spec.config.locality_mappings[0]
    assert mapping.from_.region == "us-east-1"
    assert mapping.effective_weights() == [80, 20]


def test_header_manipulation_example() -> None:
    spec = load(
        HeaderManipulationPolicySpec,
        "{applyToRouteDestinations: [{route: {labels: {a: b}}, onDestinations: "
        "[{port: {number: 9080}}]}], config: {appendRequestHeaders: {x-a: b}, "
        "removeResponseHeaders: [server]}}",
    )
    assert spec.apply_to_route_destinations[0].on_destinations[0].kind == "SERVICE"
    assert spec.config.append_request_headers == {"x-a": "b"}
    assert spec.config.remove_request_headers == []


# -- schema errors -------------------------------------------------------------------------------


def test_unknown_field_has_camel_case_path() -> None:
    [err] = errors(RouteTableSpec, route_table(f"[{RATINGS}, wieght: 50}}]"))
    assert err["type"] == "extra_forbidden"
    assert err["loc"] == ("http", 0, "forwardTo", "destinations", 0, "wieght")


def test_snake_case_keys_are_unknown_fields_when_validating_by_alias_only() -> None:
    # Kubernetes prunes `consecutive_errors` (not a CRD field), so Gloo would use the default 5.
    # base.GlooModel sets populate_by_name for Python callers; YAML must be validated with
    # by_name=False to refuse Python names the way the CRD does.
    data = yaml.safe_load("config: {consecutive_errors: 2}")
    with pytest.raises(pydantic.ValidationError) as info:
        OutlierDetectionPolicySpec.model_validate(data, by_name=False)
    [err] = info.value.errors()
    assert err["loc"] == ("config", "consecutive_errors") and err["type"] == "extra_forbidden"


def test_port_as_string_is_a_type_error() -> None:
    dests = "[{ref: {name: ratings}, port: {number: '9080'}}]"
    [err] = errors(RouteTableSpec, route_table(dests))
    assert err["loc"] == ("http", 0, "forwardTo", "destinations", 0, "port", "number")
    assert err["type"] == "int_type"


def test_label_value_must_be_a_string() -> None:
    text = "{hosts: [a.b], services: [{labels: {x: true}}], ports: [{number: 80, protocol: HTTP}]}"
    [err] = errors(VirtualDestinationSpec, text)
    assert err["loc"] == ("services", 0, "labels", "x") and err["type"] == "string_type"


def test_unknown_enum_value() -> None:
    [err] = errors(VirtualDestinationSpec, "{hosts: [a.b], ports: [{number: 80, protocol: http}]}")
    assert err["loc"] == ("ports", 0, "protocol") and err["type"] == "literal_error"


# -- rules ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ([60, 60], "sum to 120; they must sum to 100"),
        ([50, 30], "sum to 80; they must sum to 100"),
        ([50, 50, None], "leaving 0 for 1 destination(s)"),
        ([99, None, None], "leaving 1 for 2 destination(s)"),
    ],
)
def test_destination_weights_must_reach_100(weights: list[int | None], expected: str) -> None:
    dests = ", ".join(RATINGS + ("}" if w is None else f", weight: {w}}}") for w in weights)
    [err] = errors(RouteTableSpec, route_table(f"[{dests}]"))
    assert err["loc"] == ("http", 0, "forwardTo") and err["type"] == "value_error"
    assert expected in err["msg"]


def test_partial_weights_share_the_remainder() -> None:
    spec = load(RouteTableSpec, route_table(f"[{RATINGS}, weight: 50}}, {RATINGS}}}, {RATINGS}}}]"))
    assert spec.http[0].forward_to.effective_weights() == [50, 25, 25]
    assert split_weights([None, None, None]) == [34, 33, 33]
    assert split_weights([75, 25]) == [75, 25]


def test_two_actions_on_one_route() -> None:
    text = (
        "{hosts: [a.example.com], http: [{name: r, directResponse: {status: 200}, "
        "redirect: {hostRedirect: b.example.com}}]}"
    )
    [err] = errors(RouteTableSpec, text)
    assert err["loc"] == ("http", 0)
    assert "'redirect', 'directResponse'" in err["msg"] and "exactly one" in err["msg"]


def test_route_without_action() -> None:
    assert "found none" in messages(RouteTableSpec, "{hosts: [a.example.com], http: [{name: r}]}")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("a.*.com", "left-most label"),
        ("bar*.foo.com", "left-most label"),
        ("bar.foo.*", "left-most label"),
        ("-bad.example.com", "label '-bad'"),
        ("example.123", "top-level label"),
    ],
)
def test_route_table_host_rules(host: str, expected: str) -> None:
    [err] = errors(RouteTableSpec, route_table(f"[{RATINGS}}}]", f"[a.example.com, '{host}']"))
    assert err["loc"] == ("hosts", 1) and err["type"] == "value_error"
    assert expected in err["msg"]


def test_bare_star_host_only_on_gateway_only_tables() -> None:
    sidecar = route_table(f"[{RATINGS}}}]", "['*']")
    assert "allowed only on a table attached to virtual gateways" in messages(
        RouteTableSpec, sidecar
    )
    route = ROUTE.format(dests=f"[{RATINGS}}}]")
    gateway = (
        "{hosts: ['*'], virtualGateways: [{name: north-south-gw, namespace: istio-gateways}], "
        f"http: [{route}]}}"
    )
    assert load(RouteTableSpec, gateway).hosts == ["*"]
    both = gateway.replace("hosts:", "workloadSelectors: [{}], hosts:")
    assert "allowed only on a table attached" in messages(RouteTableSpec, both)


@pytest.mark.parametrize("host", ["*.example.com", "*-bar.foo.com", "istio.io.", "reviews"])
def test_route_table_good_hosts(host: str) -> None:
    assert load(RouteTableSpec, route_table(f"[{RATINGS}}}]", f"['{host}']")).hosts == [host]


def test_route_table_needs_routes_and_default_destination_rules() -> None:
    assert "at least one of 'http'" in messages(RouteTableSpec, "{hosts: [a.example.com]}")
    empty_forward = "{hosts: [a.b], http: [{forwardTo: {}}]}"
    assert "defaultDestination" in messages(RouteTableSpec, empty_forward)
    text = f"{{hosts: [a.b], defaultDestination: {RATINGS}}}, http: [{{forwardTo: {{}}}}]}}"
    fallback = load(RouteTableSpec, text)
    assert fallback.default_destination is not None


def test_delegated_table_rules() -> None:
    child = load(RouteTableSpec, "{http: [{directResponse: {status: 404}}]}")
    assert child.hosts == []
    text = "{failureMode: ROUTE_REPLACEMENT, http: [{directResponse: {status: 404}}]}"
    assert "must not set 'failureMode'" in messages(RouteTableSpec, text)


def test_workload_selectors_select_by_labels_only() -> None:
    text = (
        "{hosts: [a.b], workloadSelectors: [{selector: {labels: {app: a}}}, "
        "{selector: {namespace: x}}], http: [{directResponse: {status: 200}}]}"
    )
    [err] = errors(RouteTableSpec, text)
    assert err["loc"] == ("workloadSelectors", 1) and "labels only" in err["msg"]


def test_empty_subset_is_refused() -> None:
    assert "empty map" in messages(RouteTableSpec, route_table(f"[{RATINGS}, subset: {{}}}}]"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{hosts: [a.b], ports: []}", "at least 1 item"),
        ("{hosts: ['*.global'], ports: [{number: 80, protocol: HTTP}]}", "wildcard"),
        ("{hosts: [], ports: [{number: 80, protocol: HTTP}]}", "at least 1 item"),
        (
            "{hosts: [a.b], ports: [{number: 80, protocol: HTTP}, {number: 80, protocol: TCP}]}",
            "[80] appear more than once",
        ),
        ("{hosts: [a.b, a.b], ports: [{number: 80, protocol: HTTP}]}", "['a.b'] appear more"),
        ("{hosts: [a.b], ports: [{number: 80, protocol: HTTP, targetPort: {name: x}}]}", "needs"),
    ],
)
def test_virtual_destination_rules(text: str, expected: str) -> None:
    assert expected in messages(VirtualDestinationSpec, text)


def test_missing_ports_is_a_schema_error() -> None:
    [err] = errors(VirtualDestinationSpec, "{hosts: [a.b]}")
    assert err["loc"] == ("ports",) and err["type"] == "missing"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5x", "'5x' is not a duration"),
        ("1.5ms", "not a whole number of milliseconds"),
        ("500us", "at least 1ms"),
        ("-1s", "negative"),
        ("5", "'5' is not a duration"),
    ],
)
def test_bad_durations(value: str, expected: str) -> None:
    [err] = errors(RetryTimeoutPolicySpec, f"config: {{requestTimeout: '{value}'}}")
    assert err["loc"] == ("config", "requestTimeout") and err["type"] == "value_error"
    assert expected in err["msg"]


def test_duration_must_be_a_string() -> None:
    [err] = errors(FaultInjectionPolicySpec, "config: {delay: {fixedDelay: 2}}")
    assert err["loc"] == ("config", "delay", "fixedDelay")


@pytest.mark.parametrize(
    ("value", "nanos"),
    [("0.5s", SECOND // 2), ("2m", 120 * SECOND), ("1h30m", 5400 * SECOND), ("250ms", SECOND // 4)],
)
def test_durations_parse_to_nanoseconds(value: str, nanos: int) -> None:
    spec = load(RetryTimeoutPolicySpec, f"config: {{retries: {{perTryTimeout: {value}}}}}")
    assert spec.config.retries is not None and spec.config.retries.per_try_timeout == nanos


def test_retry_rules() -> None:
    assert "set 'retries', 'requestTimeout' or both" in messages(
        RetryTimeoutPolicySpec, "config: {}"
    )
    assert "field required" in messages(RetryTimeoutPolicySpec, "applyToRoutes: []").lower()
    no_retries = "config: {retries: {attempts: 0, perTryTimeout: 1s}}"
    assert "'attempts: 0'" in messages(RetryTimeoutPolicySpec, no_retries)
    assert "comma-separated" in messages(
        RetryTimeoutPolicySpec, "config: {retries: {retryOn: '5xx,,reset'}}"
    )


def test_fault_rules() -> None:
    assert "set 'delay', 'abort' or both" in messages(FaultInjectionPolicySpec, "config: {}")
    [err] = errors(FaultInjectionPolicySpec, "config: {abort: {httpStatus: 503, percentage: 150}}")
    assert err["loc"] == ("config", "abort", "percentage")


def test_config_enabled_must_be_set_on_every_sibling() -> None:
    text = "workloadClusters: [{name: c1, namespaces: [{name: a, configEnabled: true}, {name: b}]}]"
    [err] = errors(WorkspaceSpec, text)
    assert err["loc"] == ("workloadClusters", 0) and "configEnabled" in err["msg"]
    both = (
        "workloadClusters: [{namespaces: [{name: a, configEnabled: true}, "
        "{name: b, configEnabled: false}]}]"
    )
    assert load(WorkspaceSpec, both).workload_clusters[0].namespaces[1].config_enabled is False
    clusters = "workloadClusters: [{name: c1, configEnabled: false}, {name: c2}]"
    assert "configEnabled" in messages(WorkspaceSpec, clusters)


def test_port_selector_is_number_or_name() -> None:
    with pytest.raises(pydantic.ValidationError, match="exactly one of 'number', 'name'"):
        PortSelector.model_validate({"number": 80, "name": "http"})
    with pytest.raises(pydantic.ValidationError, match="found none"):
        PortSelector.model_validate({})
    with pytest.raises(pydantic.ValidationError, match="less than or equal to 65535"):
        PortSelector.model_validate({"number": 70000})


def test_listener_rules() -> None:
    base = "{port: {number: 443}, http: {}, "
    ok = load(
        VirtualGatewaySpec,
        f"listeners: [{base}tls: {{mode: SIMPLE, secretName: cert}}, appProtocol: https}}]",
    )
    assert ok.listeners[0].tls is not None and ok.listeners[0].tls.mode == "SIMPLE"
    cases = {
        f"{base}tls: {{mode: SIMPLE, secretName: c}}, httpsRedirect: true}}": "at most one",
        f"{base}tls: {{mode: SIMPLE}}}}": "needs 'secretName'",
        f"{base}appProtocol: TCP}}": "does not fit",
        "{port: {number: 443}, tcp: {}, httpsRedirect: true}": "only for http",
        "{port: {number: 443}, tcp: {}, http: {}}": "at most one",
    }
    for listener, expected in cases.items():
        assert expected in messages(VirtualGatewaySpec, f"listeners: [{listener}]"), listener
    assert "at least 1 item" in messages(VirtualGatewaySpec, "listeners: []")


def test_failover_weights_must_reach_100() -> None:
    text = (
        "config: {localityMappings: [{from: {region: a}, "
        "to: [{region: b, weight: 60}, {region: c, weight: 60}]}]}"
    )
    assert "'to' locality weights sum to 120" in messages(FailoverPolicySpec, text)


def test_models_are_frozen() -> None:
    spec = load(KubernetesClusterSpec, "{}")
    with pytest.raises(pydantic.ValidationError):
        spec.cluster_domain = "x"


# -- registry ------------------------------------------------------------------------------------


def test_registry() -> None:
    assert models.spec_model("networking.gloo.solo.io", "RouteTable") is RouteTableSpec
    assert models.spec_model("admin.gloo.solo.io", "KubernetesCluster") is KubernetesClusterSpec
    assert models.spec_model("security.policy.gloo.solo.io", "CORSPolicy") is None
    assert len(models.SUPPORTED) >= 11
    assert frozenset({"v2"}) == models.SUPPORTED_VERSIONS
    assert not set(models.SUPPORTED) & models.KNOWN_UNSUPPORTED
    assert ("security.policy.gloo.solo.io", "CORSPolicy") in models.KNOWN_UNSUPPORTED
    assert ("trafficcontrol.policy.gloo.solo.io", "RateLimitPolicy") in models.KNOWN_UNSUPPORTED
    for group, _ in [*models.SUPPORTED, *models.KNOWN_UNSUPPORTED]:
        assert models.is_gloo_group(group), group
    assert not models.is_gloo_group("networking.istio.io")
    assert not models.is_gloo_group("apps")

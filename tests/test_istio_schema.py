"""Tests for tests/support/istio_schema.py, the oracle every emitted Istio object must pass.

The oracle is only useful if it fails for the right reason, so each failure case asserts the JSON
path and the rule it names, and the CEL table below proves celpy evaluates every rule form the
emitted kinds carry, both ways.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import celpy.evaluation
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import istio_schema, k8s_cel

# The kinds mesh-gitops emits (DESIGN.md §6 and the Gloo Mesh output set).
EMITTED_KINDS = {
    "DestinationRule",
    "EnvoyFilter",
    "Gateway",
    "ServiceEntry",
    "Sidecar",
    "VirtualService",
    "WorkloadEntry",
    "AuthorizationPolicy",
    "PeerAuthentication",
}


def _meta(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": "bookinfo",
        "labels": {"app.kubernetes.io/managed-by": "mesh-gitops", "reconciler": ""},
        "annotations": {"mesh-gitops.io/source": "workspaces/bookinfo.yaml@0a1b2c3"},
    }


VIRTUAL_SERVICE: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": _meta("reviews"),
    "spec": {
        "hosts": ["reviews.bookinfo.svc.cluster.local"],
        "gateways": ["mesh", "istio-gateways/north-south"],
        "http": [
            {
                "name": "canary",
                "match": [{"uri": {"prefix": "/v2"}, "headers": {"x-canary": {"exact": "1"}}}],
                "route": [
                    {
                        "destination": {
                            "host": "reviews",
                            "subset": "v1",
                            "port": {"number": 9080},
                        },
                        "weight": 90,
                    },
                    {"destination": {"host": "reviews", "subset": "v2"}, "weight": 10},
                ],
                "timeout": "0.500s",
                "retries": {"attempts": 3, "perTryTimeout": "2s", "retryOn": "5xx,reset"},
                "fault": {"delay": {"percentage": {"value": 0.5}, "fixedDelay": "5s"}},
            }
        ],
    },
}
DESTINATION_RULE: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "DestinationRule",
    "metadata": _meta("reviews"),
    "spec": {
        "host": "reviews.bookinfo.svc.cluster.local",
        "trafficPolicy": {
            "connectionPool": {"tcp": {"maxConnections": 100, "connectTimeout": "30ms"}},
            "outlierDetection": {"consecutive5xxErrors": 5, "interval": "10s"},
            "portLevelSettings": [{"port": {"number": 9080}, "tls": {"mode": "ISTIO_MUTUAL"}}],
        },
        "subsets": [
            {"name": "v1", "labels": {"version": "v1"}},
            {"name": "v2", "labels": {"version": "v2"}},
        ],
    },
}
SERVICE_ENTRY: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "ServiceEntry",
    "metadata": _meta("reviews-global"),
    "spec": {
        "hosts": ["reviews.global"],
        "addresses": ["240.0.0.10"],
        "ports": [{"number": 9080, "name": "http", "protocol": "HTTP", "targetPort": 9080}],
        "location": "MESH_INTERNAL",
        "resolution": "STATIC",
        "workloadSelector": {"labels": {"app": "reviews"}},
    },
}
WORKLOAD_ENTRY: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "WorkloadEntry",
    "metadata": _meta("reviews-cluster2"),
    "spec": {
        "address": "10.1.2.3",
        "ports": {"http": 15443},
        "labels": {"app": "reviews"},
        "network": "cluster2",
        "locality": "us-east1/us-east1-b",
        "weight": 1,
    },
}
GATEWAY: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "Gateway",
    "metadata": _meta("north-south"),
    "spec": {
        "selector": {"istio": "ingressgateway"},
        "servers": [
            {
                "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                "hosts": ["bookinfo/*.example.com"],
                "tls": {"mode": "SIMPLE", "credentialName": "bookinfo-cert"},
            }
        ],
    },
}
VALID = [VIRTUAL_SERVICE, DESTINATION_RULE, SERVICE_ENTRY, WORKLOAD_ENTRY, GATEWAY]


def _with(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of `obj` with the value at a dotted path (`spec.http.0.timeout`) replaced."""
    out = copy.deepcopy(obj)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node: Any = out
    for part in parents:
        node = node[part]
    node[last] = value
    return out


@pytest.mark.parametrize("obj", VALID, ids=lambda o: o["kind"])
def test_valid_objects_have_no_problems(obj: dict[str, Any]) -> None:
    assert istio_schema.validate(obj) == []


def test_unknown_spec_field_is_named_by_path() -> None:
    obj = _with(VIRTUAL_SERVICE, "spec.http.0.route.0.destination.subsett", "v1")
    assert istio_schema.validate(obj) == [
        "spec.http[0].route[0].destination.subsett: unknown field (not in the Istio schema; "
        "the API server would silently prune it)"
    ]


def test_port_number_as_string_is_a_type_problem() -> None:
    obj = _with(VIRTUAL_SERVICE, "spec.http.0.route.0.destination.port.number", "9080")
    assert istio_schema.validate(obj) == [
        'spec.http[0].route[0].destination.port.number: expected integer, got "9080"'
    ]


@pytest.mark.parametrize("weight", [90.0, True])
def test_integer_fields_refuse_floats_and_bools(weight: object) -> None:
    problems = istio_schema.validate(_with(VIRTUAL_SERVICE, "spec.http.0.route.0.weight", weight))
    assert problems == [
        f"spec.http[0].route[0].weight: expected integer, got {str(weight).lower()}"
    ]


def test_int32_out_of_range_is_caught() -> None:
    path = "spec.trafficPolicy.connectionPool.tcp.maxConnections"
    assert istio_schema.validate(_with(DESTINATION_RULE, path, 2**31 - 1)) == []
    assert istio_schema.validate(_with(DESTINATION_RULE, path, 2**31)) == [
        f"{path}: 2147483648 is out of range for int32 [-2147483648, 2147483647]"
    ]


def test_cel_duration_rule_names_path_rule_and_message() -> None:
    problems = istio_schema.validate(_with(VIRTUAL_SERVICE, "spec.http.0.timeout", "0s"))
    assert problems == [
        "spec.http[0].timeout: rule \"duration(self) >= duration('1ms')\" evaluated to false: "
        "must be a valid duration greater than 1ms"
    ]


def test_unparseable_duration_is_a_rule_error() -> None:
    # "1d" is not a Go duration; celpy alone would accept it.
    (problem,) = istio_schema.validate(_with(VIRTUAL_SERVICE, "spec.http.0.timeout", "1d"))
    assert problem.startswith("spec.http[0].timeout: rule \"duration(self) >= duration('1ms')\"")
    assert "could not be evaluated" in problem


def test_service_entry_with_selector_and_endpoints_breaks_its_rule() -> None:
    obj = _with(SERVICE_ENTRY, "spec.endpoints", [{"address": "10.1.2.3"}])
    assert istio_schema.validate(obj) == [
        "spec: rule '(has(self.workloadSelector) ? 1 : 0) + (has(self.endpoints) ? 1 : 0) <= 1' "
        "evaluated to false: only one of WorkloadSelector or Endpoints can be set"
    ]


def test_oneof_fields_name_the_conflict() -> None:
    obj = _with(VIRTUAL_SERVICE, "spec.http.0.match.0.uri", {"prefix": "/v2", "exact": "/v2"})
    assert istio_schema.validate(obj) == [
        "spec.http[0].match[0].uri: at most one of exact, prefix, regex may be set "
        "(got exact, prefix)"
    ]


def test_null_on_a_non_nullable_field_is_refused() -> None:
    obj = _with(VIRTUAL_SERVICE, "spec.http.0.timeout", None)
    assert istio_schema.validate(obj) == [
        "spec.http[0].timeout: null is not allowed (the API server would drop the field)"
    ]


def test_duplicate_list_map_key_is_caught() -> None:
    ports = [{"number": 9080, "name": "http"}, {"number": 9081, "name": "http"}]
    problems = istio_schema.validate(_with(SERVICE_ENTRY, "spec.ports", ports))
    assert problems == ["spec.ports[1]: duplicate list-map key name='http' (same as item 0)"]


@pytest.mark.parametrize(
    ("api_version", "kind", "expected"),
    [
        (
            "networking.istio.io/v1",
            "VirtualServce",
            "kind: no served CRD for VirtualServce in networking.istio.io/v1 in "
            "istio-crds.gen.yaml",
        ),
        (
            "networking.istio.io/v2",
            "VirtualService",
            "apiVersion: VirtualService is served as networking.istio.io/v1, v1alpha3, v1beta1, "
            "not networking.istio.io/v2",
        ),
        (
            "networking.istio.io/v1",
            "EnvoyFilter",
            "apiVersion: EnvoyFilter is served as networking.istio.io/v1alpha3, "
            "not networking.istio.io/v1",
        ),
        ("v1", "Service", 'apiVersion: "v1" is not <group>/<version>'),
    ],
)
def test_unknown_kind_or_api_version(api_version: str, kind: str, expected: str) -> None:
    obj = {**VIRTUAL_SERVICE, "apiVersion": api_version, "kind": kind}
    assert istio_schema.validate(obj) == [expected]


def test_served_older_version_validates() -> None:
    obj = {**VIRTUAL_SERVICE, "apiVersion": "networking.istio.io/v1beta1"}
    assert istio_schema.validate(obj) == []


def test_uppercase_name_is_not_a_dns_subdomain() -> None:
    (problem,) = istio_schema.validate(_with(VIRTUAL_SERVICE, "metadata.name", "Reviews"))
    assert problem.startswith('metadata.name: "Reviews" is not a DNS-1123 subdomain')


@pytest.mark.parametrize(
    ("path", "value", "where", "why"),
    [
        ("metadata.namespace", "book.info", "metadata.namespace", "is not a DNS-1123 label"),
        ("metadata.namespace", None, "metadata.namespace", "required field missing"),
        ("metadata.name", "a" * 254, "metadata.name", "at most 253 characters"),
        ("metadata.labels", {"app/x/y": "v"}, 'metadata.labels["app/x/y"]', "at most one '/'"),
        ("metadata.labels", {"Bad_/x": "v"}, 'metadata.labels["Bad_/x"]', "prefix before '/'"),
        ("metadata.labels", {"app": 3}, "metadata.labels.app", "value must be a string, got 3"),
        ("metadata.annotations", {"-x": "y"}, 'metadata.annotations["-x"]', "key name must be"),
        ("metadata.uid", "0000", "metadata.uid", "unexpected field"),
    ],
)
def test_metadata_problems_are_named(path: str, value: Any, where: str, why: str) -> None:
    obj = _with(VIRTUAL_SERVICE, path, value)
    if value is None:
        del obj["metadata"]["namespace"]
    (problem,) = istio_schema.validate(obj)
    assert problem.startswith(f"{where}: ") and why in problem, problem


def test_label_value_over_63_characters() -> None:
    obj = _with(VIRTUAL_SERVICE, "metadata.labels", {"version": "v" * 63})
    assert istio_schema.validate(obj) == []
    (problem,) = istio_schema.validate(_with(obj, "metadata.labels.version", "v" * 64))
    assert problem.startswith('metadata.labels.version: value "vvvv')
    assert "must be empty or 1-63 alphanumerics" in problem


def test_annotations_over_256_kib_in_total() -> None:
    notes = {f"note-{i}": "x" * 65536 for i in range(4)}
    (problem,) = istio_schema.validate(_with(VIRTUAL_SERVICE, "metadata.annotations", notes))
    assert problem == "metadata.annotations: 262168 bytes in total, over the 256 KiB limit"


def test_status_must_be_absent_and_spec_present() -> None:
    with_status = {**VIRTUAL_SERVICE, "status": {}}
    assert istio_schema.validate(with_status) == [
        "status: must be absent (status belongs to the cluster, not to us)"
    ]
    without_spec = {k: v for k, v in VIRTUAL_SERVICE.items() if k != "spec"}
    assert istio_schema.validate(without_spec) == ["spec: required field missing"]


def test_values_that_are_not_plain_json_are_refused() -> None:
    obj = _with(VIRTUAL_SERVICE, "spec.hosts", ("reviews",))
    assert istio_schema.validate(obj) == ["spec.hosts: tuple is not a JSON value"]


def test_validate_all_prefixes_kind_namespace_and_name() -> None:
    bad = _with(GATEWAY, "spec.servers.0.port.number", "443")
    assert istio_schema.validate_all([VIRTUAL_SERVICE, bad]) == [
        'Gateway bookinfo/north-south: spec.servers[0].port.number: expected integer, got "443"'
    ]


@settings(deadline=None)  # the first example compiles the VirtualService schema
@given(st.integers(min_value=0, max_value=5000))
def test_timeout_rule_boundary_is_one_millisecond(micros: int) -> None:
    # Protobuf JSON durations as translators emit them ("0.000999s"), so the rule's duration()
    # must follow Go, not celpy's looser parser, right at the boundary.
    timeout = f"{micros / 1e6:.6f}s"
    problems = istio_schema.validate(_with(VIRTUAL_SERVICE, "spec.http.0.timeout", timeout))
    assert (problems == []) == (micros >= 1000), (timeout, problems)


def test_missing_crd_file_raises_saying_where_it_looked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "istio-crds.gen.yaml"
    monkeypatch.setenv(istio_schema.ENV_VAR, str(missing))
    with pytest.raises(FileNotFoundError, match="CI must provide") as raised:
        istio_schema.crd_path()
    assert str(missing) in str(raised.value)


def test_crd_file_is_found_outside_the_project() -> None:
    path = istio_schema.crd_path()
    root = Path(istio_schema.__file__).resolve().parents[2]
    assert path.is_file() and not path.resolve().is_relative_to(root)


# One passing and one failing `self` for every distinct rule the emitted kinds declare. Keys are
# the rule text with whitespace collapsed; the coverage test below keeps the table complete.
RULE_CASES: dict[str, tuple[Any, Any]] = {
    "duration(self) >= duration('1ms')": ("0.001s", "999999ns"),
    'self.all(key, !key.contains("*"))': ({"app": "x"}, {"app*": "x"}),
    "self.all(key, key.size() != 0)": ({"app": "x"}, {"": "x"}),
    '!self.contains("*")': ("reviews", "rev*"),
    "self.size() == 0": ("", "other"),
    "0 < self && self <= 65535": (65535, 65536),
    'self != "*"': ("*.example.com", "*"),
    "(has(self.workloadSelector) ? 1 : 0) + (has(self.targetRefs) ? 1 : 0) <= 1": (
        {"workloadSelector": {}},
        {"workloadSelector": {}, "targetRefs": []},
    ),
    'has(self.context) ? ((self.context == "WAYPOINT") ? has(self.waypoint) : !has(self.waypoint))'
    " : !has(self.waypoint)": ({"context": "WAYPOINT", "waypoint": {}}, {"context": "WAYPOINT"}),
    "(has(self.tlsCertificates) ? 1 : 0) + (has(self.credentialNames) ? 1 : 0) <= 1": (
        {"credentialNames": ["a"]},
        {"credentialNames": ["a"], "tlsCertificates": [{}]},
    ),
    "(has(self.credentialName) ? 1 : 0) + (has(self.credentialNames) ? 1 : 0) <= 1": (
        {"credentialName": "a"},
        {"credentialName": "a", "credentialNames": ["b"]},
    ),
    "(has(self.credentialNames) ? 1 : 0) + (has(self.tlsCertificates) ? 1 : 0) <= 1": (
        {"tlsCertificates": [{}]},
        {"credentialNames": ["a"], "tlsCertificates": [{}]},
    ),
    "(has(self.workloadSelector) ? 1 : 0) + (has(self.endpoints) ? 1 : 0) <= 1": (
        {"endpoints": []},
        {"endpoints": [], "workloadSelector": {}},
    ),
    '!((has(self.addresses) ? self.addresses : []).exists(k, k.contains("/")) && '
    '!((has(self.resolution) ? self.resolution : "NONE") in ["STATIC", "NONE"]))': (
        {"addresses": ["10.0.0.0/8"]},
        {"addresses": ["10.0.0.0/8"], "resolution": "DNS"},
    ),
    '((has(self.resolution) ? self.resolution : "NONE") == "NONE") ? !has(self.endpoints) : true': (
        {"resolution": "STATIC", "endpoints": []},
        {"endpoints": []},
    ),
    '((has(self.resolution) ? self.resolution : "") == "DNS_ROUND_ROBIN") ? '
    "((has(self.endpoints) ? self.endpoints : []).size() <= 1) : true": (
        {"resolution": "DNS", "endpoints": [{}, {}]},
        {"resolution": "DNS_ROUND_ROBIN", "endpoints": [{}, {}]},
    ),
    "has(self.address) || has(self.network)": ({"network": "n1"}, {"ports": {}}),
    '(has(self.address) ? self.address : "").startsWith("unix://") ? !has(self.ports) : true': (
        {"address": "10.0.0.1", "ports": {}},
        {"address": "unix:///sock", "ports": {}},
    ),
    'self.startsWith("unix://") ? (self.substring(7, 8) == "/" || self.substring(7, 8) == "@") '
    ": true": ("unix://@abstract", "unix://relative/sock"),
    'self.startsWith("unix://") ? !self.endsWith("/") : true': ("unix:///sock", "unix:///dir/"),
    'self.all(key, size(key) < 63 && key.matches("^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$"))': (
        {"http-web": 80},
        {"http-": 80},
    ),
    "self.all(l1, self.exists_one(l2, l1.number == l2.number))": (
        [{"number": 80}, {"number": 443}],
        [{"number": 80}, {"number": 443}, {"number": 80}],
    ),
    "(has(self.selector) ? 1 : 0) + (has(self.targetRef) ? 1 : 0) + "
    "(has(self.targetRefs) ? 1 : 0) <= 1": ({"targetRefs": []}, {"selector": {}, "targetRef": {}}),
    "(has(self.serviceAccounts) || has(self.notServiceAccounts)) ? (!has(self.principals) && "
    "!has(self.notPrincipals) && !has(self.namespaces) && !has(self.notNamespaces)) : true": (
        {"principals": ["p"], "namespaces": ["n"]},
        {"notServiceAccounts": ["a"], "notNamespaces": ["n"]},
    ),
    "has(self.portLevelMtls) ? (((has(self.selector) && has(self.selector.matchLabels)) ? "
    "self.selector.matchLabels : {}).size() > 0) : true": (
        {"portLevelMtls": {}, "selector": {"matchLabels": {"app": "x"}}},
        {"portLevelMtls": {}, "selector": {}},
    ),
    "self.all(key, 0 < int(key) && int(key) <= 65535)": ({"8080": {}}, {"65536": {}}),
}


def _norm(rule: str) -> str:
    return " ".join(rule.split())


def test_rule_table_covers_every_rule_of_the_emitted_kinds() -> None:
    declared = {
        _norm(r) for where, _, r in istio_schema.all_rules() if where.split()[1] in EMITTED_KINDS
    }
    assert declared == set(RULE_CASES)


@pytest.mark.parametrize("rule", sorted(RULE_CASES))
def test_celpy_evaluates_each_rule_both_ways(rule: str) -> None:
    passing, failing = RULE_CASES[rule]
    assert istio_schema.evaluate_rule(rule, passing) is None
    assert istio_schema.evaluate_rule(rule, failing) == "evaluated to false"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ({"x": {}}, "could not be evaluated"),  # int("x") errors, as in cel-go
        ({"8_0": {}}, "could not be evaluated"),  # Python's int() would take it; Go's would not
        ({"0": {}}, "evaluated to false"),
    ],
)
def test_port_key_rule_follows_go_integer_parsing(value: Any, reason: str) -> None:
    result = istio_schema.evaluate_rule("self.all(key, 0 < int(key) && int(key) <= 65535)", value)
    assert result is not None and result.startswith(reason)


@pytest.mark.parametrize(
    ("text", "holds"),
    [
        ("1ms", True),
        ("0.5s", True),
        ("1h30m", True),
        ("1000us", True),
        ("1000µs", True),
        ("0", False),
        ("-5s", False),
        (".s", None),
        ("5", None),
        ("1d", None),
        ("3000000h", None),
    ],
)
def test_duration_follows_go_parse_duration(text: str, holds: bool | None) -> None:
    result = istio_schema.evaluate_rule("duration(self) >= duration('1ms')", text)
    if holds is None:
        assert result is not None and result.startswith("could not be evaluated")
    else:
        assert (result is None) == holds, result


@pytest.mark.parametrize(
    ("url", "holds"),
    [
        ("oci://ghcr.io/acme/filter:1.0", True),
        ("https://example.com/filter.wasm", True),
        ("file:///opt/filter.wasm", True),
        ("ghcr.io/acme/filter:1.0", True),  # no scheme: the rule retries with "http://"
        ("ftp://example.com/filter.wasm", False),
    ],
)
def test_url_library_functions_for_wasm_plugin_rule(url: str, holds: bool) -> None:
    (rule,) = {
        r
        for where, path, r in istio_schema.all_rules()
        if where.endswith(" WasmPlugin") and path == "spec.url"
    }
    assert (istio_schema.evaluate_rule(rule, url) is None) == holds


def test_every_function_a_rule_calls_is_available() -> None:
    macros = {"has", "all", "exists", "exists_one", "map", "filter"}
    known = macros | set(celpy.evaluation.base_functions) | set(k8s_cel.CEL_FUNCTIONS)
    called = {
        name
        for _, _, rule in istio_schema.all_rules()
        for name in re.findall(r"([A-Za-z_]\w*)\s*\(", rule)
    }
    assert called <= known, called - known

"""Test support: evaluate Kubernetes `x-kubernetes-validations` CEL rules with celpy.

The API server evaluates the CEL rules a CRD schema declares with cel-go and Kubernetes' own CEL
libraries. celpy is not cel-go: Kubernetes' `substring`, `url`, `isURL` and `getScheme` are
missing, and celpy's `duration()` and `int()` accept strings Go refuses. `CEL_FUNCTIONS` supplies
Go-faithful versions (time.ParseDuration, strconv.ParseInt, cel-go's strings extension and
url.ParseRequestURI). `evaluate_rule` evaluates one rule with `self` bound to a value, caching
results by value; `rule_tree` and `walk_rules` run every rule of a schema where it is declared,
as the API server does, and also check that list-map keys are unique.

Used by tests/support/istio_schema.py (the oracle every emitted Istio object must pass, which
re-exports `evaluate_rule`) and by tests/test_istio_schema.py, which checks every rule form of the
emitted kinds both ways and that every function any rule in the CRD file calls is provided. Like
istio_schema, this module imports nothing from `gitops/`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeAlias

import celpy
import celpy.evaluation
from celpy import celtypes

__all__ = [
    "CEL_FUNCTIONS",
    "MAPPING_TYPES",
    "JsonPath",
    "RuleNode",
    "evaluate_rule",
    "is_json_integer",
    "is_json_number",
    "rule_tree",
    "walk_rules",
]

JsonPath: TypeAlias = tuple[str | int, ...]  # keys and list indices, outermost first
MAPPING_TYPES = (dict, Mapping)  # dict first: the ABC check is slow on hot paths


def is_json_integer(value: object) -> bool:
    # jsonschema would take 1.0; JSON `1.0` is a float and Istio's protobuf decoding refuses it.
    return isinstance(value, int) and not isinstance(value, bool)


def is_json_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# ----------------------------------------------------------------- Go-faithful functions


_GO_DURATION_UNITS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9}
_GO_DURATION_UNITS |= {"m": 60 * 10**9, "h": 3600 * 10**9}  # µs: micro sign and Greek mu
_GO_DURATION_PART = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]*)")


def _go_duration(text: object) -> celtypes.DurationType:
    """`duration()` by Go's time.ParseDuration, as Kubernetes CEL does.

    celpy's own takes `1d` and refuses `0` and `µs`. timedelta keeps microseconds, so nanoseconds
    are truncated towards zero, which keeps comparisons with whole microseconds (the file's only
    form is `>= duration('1ms')`) exact.
    """
    if isinstance(text, timedelta):
        return celtypes.DurationType(text)
    s = str(text)
    sign, body = (-1, s[1:]) if s[:1] == "-" else (1, s[1:] if s[:1] == "+" else s)
    if body == "0":
        return celtypes.DurationType(0)
    total, pos = 0, 0
    while pos < len(body) or pos == 0:
        m = _GO_DURATION_PART.match(body, pos)
        assert m is not None  # every group is optional
        whole, frac, unit = m.group(1), m.group(2) or "", m.group(3)
        if not (whole or frac) or unit not in _GO_DURATION_UNITS:
            raise ValueError(f"invalid duration {s!r}")
        scale = _GO_DURATION_UNITS[unit]
        total += int(whole or 0) * scale + int(frac or 0) * scale // 10 ** len(frac)
        pos = m.end()
    if total > 2**63 - (sign > 0):  # time.Duration is an int64 of nanoseconds
        raise ValueError(f"invalid duration {s!r}: overflow")
    return celtypes.DurationType(timedelta(microseconds=sign * (total // 1000)))


def _go_int(value: object) -> celtypes.IntType:
    # Python's int() also takes " 80" and "8_0"; Go's strconv.ParseInt does not.
    if isinstance(value, str) and not re.fullmatch(r"[+-]?\d+", value):
        raise ValueError(f"cannot convert {value!r} to int")
    return celtypes.IntType(value)


def _substring(s: str, start: int, end: int | None = None) -> celtypes.StringType:
    stop = len(s) if end is None else end
    if not 0 <= start <= stop <= len(s):  # cel-go's strings extension errors, never clamps
        raise IndexError(f"substring({start}, {stop}) out of range for length {len(s)}")
    return celtypes.StringType(s[start:stop])


_URL = re.compile(r"(?:([A-Za-z][A-Za-z0-9+.-]*):)?([^?]*)(\?.*)?", re.DOTALL)
_URL_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+(%[^\]]*)?\]|[-\w.~!$&'()*+,;=%\"<>]*)(:\d*)?")


def _request_uri_scheme(raw: str) -> str | None:
    """Scheme if Go's url.ParseRequestURI (behind Kubernetes' `url()`) accepts `raw`, else None."""
    m = _URL.fullmatch(raw)
    if not raw or m is None or any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        return None
    scheme, rest = (m.group(1) or "").lower(), m.group(2)
    if raw == "*" or (scheme and not rest.startswith("/")):
        return scheme  # "*" and opaque URLs ("mailto:x") parse
    if not rest.startswith("/") or re.search(r"%(?![0-9A-Fa-f]{2})", rest):
        return None  # a request URI is absolute or an absolute path; escapes must be valid
    if scheme and rest.startswith("//"):
        authority = rest[2:].split("/", 1)[0]
        if not _URL_HOST.fullmatch(authority.rpartition("@")[2]):
            return None
    return scheme


def _url(raw: str) -> celtypes.StringType:
    if _request_uri_scheme(raw) is None:
        raise ValueError(f"URL parse error: {raw!r}")
    return celtypes.StringType(raw)


CEL_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "duration": _go_duration,
    "int": _go_int,
    "substring": _substring,
    "url": _url,
    "isURL": lambda raw: celtypes.BoolType(_request_uri_scheme(raw) is not None),
    "getScheme": lambda url: celtypes.StringType(_request_uri_scheme(url) or ""),
}


# ----------------------------------------------------------------- evaluation


_CEL_ENV = celpy.Environment()


@functools.cache
def _program(rule: str) -> celpy.Runner:
    return _CEL_ENV.program(_CEL_ENV.compile(rule), functions=CEL_FUNCTIONS)


def _freeze(value: Any) -> Any:
    """A hashable image of a JSON value (bool, int and float kept apart) to key the rule cache."""
    if isinstance(value, str) or value is None:
        return value
    if isinstance(value, MAPPING_TYPES):
        return ("m", tuple(sorted((k, _freeze(v)) for k, v in value.items())))
    if isinstance(value, list):
        return ("l", tuple(_freeze(v) for v in value))
    return ({bool: "b", int: "i", float: "d"}[type(value)], value)


def _thaw(frozen: Any) -> Any:
    if isinstance(frozen, str):
        return celtypes.StringType(frozen)
    if frozen is None:
        return None
    tag, value = frozen
    if tag == "m":
        return celtypes.MapType({celtypes.StringType(k): _thaw(v) for k, v in value})
    if tag == "l":
        return celtypes.ListType([_thaw(v) for v in value])
    return {"b": celtypes.BoolType, "i": celtypes.IntType, "d": celtypes.DoubleType}[tag](value)


@functools.lru_cache(maxsize=1 << 16)
def _evaluate(rule: str, frozen: Any) -> str | None:
    # celpy's interpreter costs 0.1-1 ms a rule; rules are pure, so results are cached by value.
    try:
        result = _program(rule).evaluate({"self": _thaw(frozen)})
    except Exception as error:  # CELEvalError from celpy, plain errors from CEL_FUNCTIONS
        detail = (
            error.args[0]
            if isinstance(error, celpy.evaluation.CELEvalError) and error.args
            else error
        )
        return f"could not be evaluated ({str(detail)[:160]})"
    if isinstance(result, celtypes.BoolType):
        return None if result else "evaluated to false"
    return f"gave {result!r}, not a bool"


_SELF = re.compile(r"\bself\b")
_SELF_FIELD = re.compile(r"\bself\.([A-Za-z_]\w*)\b(?!\s*\()")  # `self.f`, not `self.f(...)`


@functools.cache
def _fields_read(rule: str) -> frozenset[str] | None:
    """Fields a rule reads off `self` if it reads nothing else (None: it uses `self` whole)."""
    fields = _SELF_FIELD.findall(rule)
    return frozenset(fields) if len(fields) == len(_SELF.findall(rule)) else None


def evaluate_rule(rule: str, value: Any) -> str | None:
    """Evaluate one CEL rule with `self` bound to `value`: None if it holds, else why not."""
    fields = _fields_read(rule)
    if fields is not None and isinstance(value, MAPPING_TYPES):
        # The rule cannot tell the difference, and the cache key stays small (an EnvoyFilter
        # spec can be a megabyte) and hits whenever the fields it reads repeat.
        value = {k: v for k, v in value.items() if k in fields}
    return _evaluate(rule, _freeze(value))


# ----------------------------------------------------------------- every rule of a schema


@dataclass(frozen=True)
class RuleNode:
    """A schema pruned to what the rule walk needs: rules, list-map keys, the way down to them."""

    type: str | None
    rules: tuple[tuple[str, str], ...]  # (rule, message)
    list_map_keys: tuple[str, ...]
    properties: Mapping[str, RuleNode]
    items: RuleNode | None
    values: RuleNode | None  # additionalProperties


def rule_tree(node: Mapping[str, Any]) -> RuleNode | None:
    """The rules of a structural schema node and of everything under it; None if it has none."""
    props = {k: sub for k, v in node.get("properties", {}).items() if (sub := rule_tree(v))}
    each, extra = node.get("items"), node.get("additionalProperties")
    items = rule_tree(each) if isinstance(each, Mapping) else None
    values = rule_tree(extra) if isinstance(extra, Mapping) else None
    rules = tuple(
        (r["rule"], r.get("message", "")) for r in node.get("x-kubernetes-validations", ())
    )
    is_map = node.get("x-kubernetes-list-type") == "map"
    keys = tuple(node.get("x-kubernetes-list-map-keys", ())) if is_map else ()
    if props or items or values or rules or keys:
        return RuleNode(node.get("type"), rules, keys, props, items, values)
    return None


_JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, MAPPING_TYPES),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": is_json_integer,
    "number": is_json_number,
    "boolean": lambda v: isinstance(v, bool),
}


def walk_rules(node: RuleNode, value: Any, path: JsonPath, out: list[tuple[JsonPath, str]]) -> None:
    """Append (where, what) to `out` for each rule `value` breaks and each repeated list-map key."""
    # Rules run only where a value is present and of the declared type, as in Kubernetes; a
    # type mismatch is already reported by jsonschema.
    if value is None or (node.type is not None and not _JSON_TYPES[node.type](value)):
        return
    for rule, message in node.rules:
        if (why := evaluate_rule(rule, value)) is not None:
            out.append((path, f"rule {rule!r} {why}: {message}"))
    if isinstance(value, MAPPING_TYPES):
        for name, item in value.items():
            # Structural schemas never declare both properties and additionalProperties.
            if (child := node.properties.get(name, node.values)) is not None:
                walk_rules(child, item, (*path, name), out)
    elif isinstance(value, list):
        seen: dict[tuple[Any, ...], int] = {}
        for index, item in enumerate(value):
            if node.list_map_keys and isinstance(item, Mapping):
                key = tuple(_freeze(item.get(k)) for k in node.list_map_keys)
                if key in seen:
                    named = ", ".join(f"{k}={item.get(k)!r}" for k in node.list_map_keys)
                    problem = f"duplicate list-map key {named} (same as item {seen[key]})"
                    out.append(((*path, index), problem))
                seen.setdefault(key, index)
            if node.items is not None:
                walk_rules(node.items, item, (*path, index), out)

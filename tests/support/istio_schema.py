"""Test support: check emitted Istio objects against Istio's own CRD schemas.

DESIGN.md §6 requires every object the translators emit to validate against
`schemas/istio-crds.gen.yaml` (Istio's CRDs, generated from istio/api). Translator tests and the
golden-case tests call `validate` / `validate_all` on whatever the pipeline emitted. This module
is an independent oracle, so it imports nothing from `gitops/`.

"Valid" means what the API server would accept, made stricter where the server would quietly
change the object instead of refusing it:
  - `apiVersion`/`kind` name a served version of a CRD in the file;
  - metadata passes ObjectMeta validation (names, label and annotation syntax, sizes) and carries
    only name, namespace, labels and annotations;
  - `spec` passes jsonschema against the version's structural schema, where every object that
    declares `properties` is closed and `null` is refused on non-nullable fields (the server
    would prune both silently, dropping something we meant to set);
  - every `x-kubernetes-validations` CEL rule holds, evaluated with celpy where it is declared.

celpy is not cel-go. Kubernetes' `substring`, `url`, `isURL` and `getScheme` are missing, and
celpy's `duration()` and `int()` accept strings Go refuses. `_CEL_FUNCTIONS` supplies Go-faithful
versions; tests/test_istio_schema.py checks every rule form of the emitted kinds both ways and that
every function any rule in the file calls is provided.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import celpy
import celpy.evaluation
import jsonschema  # type: ignore[import-untyped]
import yaml
from celpy import celtypes

__all__ = ["all_rules", "crd_path", "evaluate_rule", "validate", "validate_all"]

ENV_VAR = "MESH_GITOPS_ISTIO_CRDS"
_PROJECT_ROOT = Path(__file__).resolve().parents[2]
_DEFAULT_PATH = _PROJECT_ROOT.parent / "shared" / "schemas" / "istio-crds.gen.yaml"

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_QUALIFIED_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")
_ANNOTATIONS_MAX_BYTES = 256 * 1024  # TotalAnnotationSizeLimitB in apimachinery
_INT_RANGES = {
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}
_METADATA_FIELDS = ("name", "namespace", "labels", "annotations")
_MAPPING = (dict, Mapping)  # dict first: the ABC check is slow on hot paths


def crd_path() -> Path:
    """The CRD file: `$MESH_GITOPS_ISTIO_CRDS`, else `../shared/schemas/` beside the project."""
    configured = os.environ.get(ENV_VAR)
    path = Path(configured) if configured else _DEFAULT_PATH
    if not path.is_file():
        source = f"${ENV_VAR}" if configured else f"the default; set ${ENV_VAR} to override"
        raise FileNotFoundError(
            f"Istio CRD schemas not found at {path} ({source}). CI must provide "
            "../shared/schemas/istio-crds.gen.yaml next to the project root: emitted objects "
            "cannot be validated without it, and this check never passes silently."
        )
    return path


@functools.cache
def _schemas() -> dict[tuple[str, str, str], Mapping[str, Any]]:
    """openAPIV3Schema of every served version, by (group, version, kind); loaded once."""
    path = crd_path()
    with path.open("rb") as f:
        docs = [d for d in yaml.load_all(f, Loader=yaml.CSafeLoader) if d]
    schemas = {}
    for doc in docs:
        if doc.get("kind") != "CustomResourceDefinition":
            raise ValueError(f"{path}: unexpected {doc.get('kind')!r} document")
        group, kind = doc["spec"]["group"], doc["spec"]["names"]["kind"]
        for version in doc["spec"]["versions"]:
            if version.get("served"):
                schemas[group, version["name"], kind] = version["schema"]["openAPIV3Schema"]
    return schemas


def all_rules() -> list[tuple[str, str, str]]:
    """Every CEL rule declared under `spec`, as (`group/version Kind`, schema path, rule)."""
    found: list[tuple[str, str, str]] = []

    def walk(node: Mapping[str, Any], where: str, path: str) -> None:
        found.extend((where, path, r["rule"]) for r in node.get("x-kubernetes-validations", ()))
        for name, child in node.get("properties", {}).items():
            walk(child, where, f"{path}.{name}")
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), Mapping):
                walk(node[key], where, f"{path}[*]")

    for (group, version, kind), schema in sorted(_schemas().items()):
        walk(schema["properties"]["spec"], f"{group}/{version} {kind}", "spec")
    return found


# ----------------------------------------------------------------- structural schema -> jsonschema


def _at_most_one(oneof: list[Mapping[str, Any]]) -> list[str] | None:
    """Fields of istio/api's oneof idiom `[not anyOf [required a, ...], required a, ...]`."""
    fields = [sub["required"][0] for sub in oneof[1:] if list(sub) == ["required"]]
    idiom = [{"required": [f]} for f in fields]
    return (
        fields if len(fields) == len(oneof) - 1 and oneof[0] == {"not": {"anyOf": idiom}} else None
    )


def _to_json_schema(node: Mapping[str, Any]) -> dict[str, Any]:
    """Rewrite one OpenAPI v3 structural schema node as a Draft 7 JSON Schema."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: _to_json_schema(child) for name, child in value.items()}
        elif key in ("items", "not") or (key == "additionalProperties" and isinstance(value, dict)):
            out[key] = _to_json_schema(value)
        elif key == "oneOf" and (fields := _at_most_one(value)) is not None:
            out["x-at-most-one"] = fields  # same meaning, a fraction of jsonschema's work
        elif key in ("oneOf", "anyOf", "allOf"):
            out[key] = [_to_json_schema(child) for child in value]
        elif key not in ("description", "default", "example", "nullable") and key[:2] != "x-":
            out[key] = value
    if node.get("x-kubernetes-int-or-string") is True:
        out["type"] = ["integer", "string"]
    if node.get("nullable") is True and "type" in out:
        out["type"] = [*([out["type"]] if isinstance(out["type"], str) else out["type"]), "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    if (
        "properties" in node
        and "additionalProperties" not in node
        and node.get("x-kubernetes-preserve-unknown-fields") is not True
    ):
        out["additionalProperties"] = False
    if node.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    for bound in ("minimum", "maximum"):
        exclusive = f"exclusive{bound.title()}"
        if out.get(exclusive) is True:  # OpenAPI 3.0's boolean form; Draft 7 wants the number
            out[exclusive] = out.pop(bound)
        elif out.get(exclusive) is False:
            del out[exclusive]
    return out


def _is_integer(_: object, value: object) -> bool:
    # jsonschema would take 1.0; JSON `1.0` is a float and Istio's protobuf decoding refuses it.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(_: object, value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _at_most_one_keyword(
    _: Any, fields: list[str], instance: Any, __: Any
) -> Iterator[jsonschema.ValidationError]:
    given = [f for f in fields if isinstance(instance, Mapping) and f in instance]
    if len(given) > 1:
        yield jsonschema.ValidationError(
            f"at most one of {', '.join(fields)} may be set (got {', '.join(given)})"
        )


_Validator = jsonschema.validators.extend(
    jsonschema.Draft7Validator,
    validators={"x-at-most-one": _at_most_one_keyword},
    type_checker=jsonschema.Draft7Validator.TYPE_CHECKER.redefine_many(
        {
            "integer": _is_integer,
            "number": _is_number,
            "object": lambda _, v: isinstance(v, _MAPPING),
        }
    ),
)
_FORMATS = jsonschema.FormatChecker(formats=())
for _name, (_low, _high) in _INT_RANGES.items():
    _FORMATS.checks(_name)(lambda v, lo=_low, hi=_high: not _is_integer(None, v) or lo <= v <= hi)


def _is_base64(value: object) -> bool:
    try:  # Go's base64.StdEncoding: padded, nothing outside the alphabet
        return not isinstance(value, str) or base64.b64decode(value, validate=True) is not None
    except binascii.Error:
        return False


def _is_rfc3339(value: object) -> bool:
    return not isinstance(value, str) or _RFC3339.fullmatch(value) is not None


_FORMATS.checks("byte")(_is_base64)
_FORMATS.checks("date-time")(_is_rfc3339)


# ----------------------------------------------------------------- CEL, Kubernetes flavour


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


_CEL_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "duration": _go_duration,
    "int": _go_int,
    "substring": _substring,
    "url": _url,
    "isURL": lambda raw: celtypes.BoolType(_request_uri_scheme(raw) is not None),
    "getScheme": lambda url: celtypes.StringType(_request_uri_scheme(url) or ""),
}
_CEL_ENV = celpy.Environment()


@functools.cache
def _program(rule: str) -> celpy.Runner:
    return _CEL_ENV.program(_CEL_ENV.compile(rule), functions=_CEL_FUNCTIONS)


def _freeze(value: Any) -> Any:
    """A hashable image of a JSON value (bool, int and float kept apart) to key the rule cache."""
    if isinstance(value, str) or value is None:
        return value
    if isinstance(value, _MAPPING):
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
    except Exception as error:  # CELEvalError from celpy, plain errors from _CEL_FUNCTIONS
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
    if fields is not None and isinstance(value, _MAPPING):
        # The rule cannot tell the difference, and the cache key stays small (an EnvoyFilter
        # spec can be a megabyte) and hits whenever the fields it reads repeat.
        value = {k: v for k, v in value.items() if k in fields}
    return _evaluate(rule, _freeze(value))


@dataclass(frozen=True)
class _RuleNode:
    """A schema pruned to what the rule walk needs: rules, list-map keys, the way down to them."""

    type: str | None
    rules: tuple[tuple[str, str], ...]  # (rule, message)
    list_map_keys: tuple[str, ...]
    properties: Mapping[str, _RuleNode]
    items: _RuleNode | None
    values: _RuleNode | None  # additionalProperties


def _rule_tree(node: Mapping[str, Any]) -> _RuleNode | None:
    props = {k: sub for k, v in node.get("properties", {}).items() if (sub := _rule_tree(v))}
    each, extra = node.get("items"), node.get("additionalProperties")
    items = _rule_tree(each) if isinstance(each, Mapping) else None
    values = _rule_tree(extra) if isinstance(extra, Mapping) else None
    rules = tuple(
        (r["rule"], r.get("message", "")) for r in node.get("x-kubernetes-validations", ())
    )
    is_map = node.get("x-kubernetes-list-type") == "map"
    keys = tuple(node.get("x-kubernetes-list-map-keys", ())) if is_map else ()
    if props or items or values or rules or keys:
        return _RuleNode(node.get("type"), rules, keys, props, items, values)
    return None


_JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, _MAPPING),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: _is_integer(None, v),
    "number": lambda v: _is_number(None, v),
    "boolean": lambda v: isinstance(v, bool),
}


def _walk_rules(node: _RuleNode, value: Any, path: tuple[str | int, ...], out: list[str]) -> None:
    # Rules run only where a value is present and of the declared type, as in Kubernetes; a
    # type mismatch is already reported by jsonschema.
    if value is None or (node.type is not None and not _JSON_TYPES[node.type](value)):
        return
    for rule, message in node.rules:
        if (why := evaluate_rule(rule, value)) is not None:
            out.append(f"{_fmt(path)}: rule {rule!r} {why}: {message}")
    if isinstance(value, _MAPPING):
        for name, item in value.items():
            # Structural schemas never declare both properties and additionalProperties.
            if (child := node.properties.get(name, node.values)) is not None:
                _walk_rules(child, item, (*path, name), out)
    elif isinstance(value, list):
        seen: dict[tuple[Any, ...], int] = {}
        for index, item in enumerate(value):
            if node.list_map_keys and isinstance(item, Mapping):
                key = tuple(_freeze(item.get(k)) for k in node.list_map_keys)
                if key in seen:
                    named = ", ".join(f"{k}={item.get(k)!r}" for k in node.list_map_keys)
                    out.append(
                        f"{_fmt((*path, index))}: duplicate list-map key {named} "
                        f"(same as item {seen[key]})"
                    )
                seen.setdefault(key, index)
            if node.items is not None:
                _walk_rules(node.items, item, (*path, index), out)


# ----------------------------------------------------------------- problems, by part of the object


@functools.cache
def _compiled(group: str, version: str, kind: str) -> tuple[Any, _RuleNode | None]:
    """jsonschema validator and rule tree for one kind's `spec`, built on first use."""
    spec_schema = _schemas()[group, version, kind]["properties"]["spec"]
    json_schema = _to_json_schema(spec_schema)
    _Validator.check_schema(json_schema)
    return _Validator(json_schema, format_checker=_FORMATS), _rule_tree(spec_schema)


def _fmt(path: Iterable[str | int]) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _IDENT.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text


def _short(value: Any) -> str:
    text = json.dumps(value, default=repr)
    return text if len(text) <= 80 else text[:77] + "..."


def _schema_problems(error: jsonschema.ValidationError) -> list[str]:
    path: tuple[str | int, ...] = ("spec", *error.absolute_path)
    instance, keyword, expected = error.instance, error.validator, error.validator_value
    if keyword == "additionalProperties" and expected is False:
        known = error.schema.get("properties", {})
        return [
            f"{_fmt((*path, name))}: unknown field (not in the Istio schema; the API server "
            "would silently prune it)"
            for name in instance
            if name not in known
        ]
    if keyword == "required":
        return [
            f"{_fmt((*path, n))}: required field missing" for n in expected if n not in instance
        ]
    if keyword == "type" and instance is None:
        return [f"{_fmt(path)}: null is not allowed (the API server would drop the field)"]
    if keyword == "type":
        return [f"{_fmt(path)}: expected {expected}, got {_short(instance)}"]
    if keyword == "format" and expected in _INT_RANGES:
        low, high = _INT_RANGES[expected]
        return [f"{_fmt(path)}: {instance} is out of range for {expected} [{low}, {high}]"]
    return [f"{_fmt(path)}: {error.message[:200]}"]


def _json_shape(value: Any, path: tuple[str | int, ...], out: list[str]) -> None:
    """Emitted objects are written as YAML/JSON: string keys, plain JSON scalars, finite numbers."""
    if isinstance(value, _MAPPING):
        for key, item in value.items():
            if isinstance(key, str):
                _json_shape(item, (*path, key), out)
            else:
                out.append(f"{_fmt(path)}: key {key!r} is a {type(key).__name__}, not a string")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _json_shape(item, (*path, index), out)
    elif isinstance(value, float) and not math.isfinite(value):
        out.append(f"{_fmt(path)}: {value} is not representable in JSON")
    elif value is not None and type(value) not in (str, int, float, bool):
        # Exact types: yaml.SafeDumper refuses subclasses such as enums.
        out.append(f"{_fmt(path)}: {type(value).__name__} is not a JSON value")


def _qualified_name_problem(key: str) -> str | None:
    *prefix, name = key.split("/")
    if len(prefix) > 1:
        return "may contain at most one '/'"
    if prefix and not (len(prefix[0]) <= 253 and _DNS_SUBDOMAIN.fullmatch(prefix[0])):
        return "prefix before '/' must be a DNS-1123 subdomain of at most 253 characters"
    if len(name) > 63 or not _QUALIFIED_NAME.fullmatch(name):
        return "name must be 1-63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric"
    return None


def _metadata_problems(meta: Any) -> list[str]:
    if not isinstance(meta, Mapping):
        return ["metadata: required object missing"]
    out: list[str] = []
    for field, pattern, limit, what in (
        ("name", _DNS_SUBDOMAIN, 253, "DNS-1123 subdomain (lowercase alphanumerics, '-' and '.'"),
        ("namespace", _DNS_LABEL, 63, "DNS-1123 label (lowercase alphanumerics and '-'"),
    ):
        value = meta.get(field)
        if value is None:
            out.append(f"metadata.{field}: required field missing")
        elif not isinstance(value, str) or len(value) > limit or not pattern.fullmatch(value):
            out.append(
                f"metadata.{field}: {_short(value)} is not a {what}, at most {limit} characters)"
            )
    for field in ("labels", "annotations"):
        entries = meta.get(field, {})
        if not isinstance(entries, Mapping):
            out.append(f"metadata.{field}: expected a map of strings")
            continue
        for key, value in entries.items():
            where = _fmt(("metadata", field, key))
            # ObjectMeta validation lowercases annotation keys before checking them.
            if why := _qualified_name_problem(key.lower() if field == "annotations" else key):
                out.append(f"{where}: key {why}")
            if not isinstance(value, str):
                out.append(f"{where}: value must be a string, got {_short(value)}")
            elif (
                field == "labels"
                and value
                and not (len(value) <= 63 and _QUALIFIED_NAME.fullmatch(value))
            ):
                out.append(
                    f"{where}: value {_short(value)} must be empty or 1-63 alphanumerics, "
                    "'-', '_' or '.', starting and ending alphanumeric"
                )
        size = sum(len(k.encode()) + len(str(v).encode()) for k, v in entries.items())
        if field == "annotations" and size > _ANNOTATIONS_MAX_BYTES:
            out.append(f"metadata.annotations: {size} bytes in total, over the 256 KiB limit")
    out.extend(
        f"{_fmt(('metadata', k))}: unexpected field (emitted objects set only "
        f"{', '.join(_METADATA_FIELDS)})"
        for k in meta
        if k not in _METADATA_FIELDS
    )
    return out


def _resolve_kind(api_version: Any, kind: Any) -> tuple[str, str, str] | str:
    """(group, version, kind) of a served CRD version, or the problem with apiVersion/kind."""
    if not isinstance(api_version, str) or api_version.count("/") != 1:
        return f"apiVersion: {_short(api_version)} is not <group>/<version>"
    if not isinstance(kind, str):
        return f"kind: {_short(kind)} is not a string"
    group, version = api_version.split("/")
    if (group, version, kind) in _schemas():
        return group, version, kind
    served = [v for g, v, k in _schemas() if (g, k) == (group, kind)]
    if served:
        return f"apiVersion: {kind} is served as {group}/{', '.join(served)}, not {api_version}"
    return f"kind: no served CRD for {kind} in {api_version} in istio-crds.gen.yaml"


def validate(obj: Mapping[str, Any]) -> list[str]:
    """Every way `obj` fails Istio's CRD schema, as `<json path>: <problem>`; [] means valid."""
    problems: list[str] = []
    _json_shape(obj, (), problems)
    if problems:  # everything below assumes JSON-shaped data
        return problems
    problems.extend(_metadata_problems(obj.get("metadata")))
    problems.extend(
        f"{_fmt((k,))}: unexpected top-level field"
        for k in obj
        if k not in ("apiVersion", "kind", "metadata", "spec", "status")
    )
    if "status" in obj:
        problems.append("status: must be absent (status belongs to the cluster, not to us)")
    target = _resolve_kind(obj.get("apiVersion"), obj.get("kind"))
    spec = obj.get("spec")
    if isinstance(target, str) or not isinstance(spec, Mapping):
        spec_problem = "spec: " + ("required field missing" if spec is None else "not an object")
        return [*problems, target if isinstance(target, str) else spec_problem]
    validator, rules = _compiled(*target)
    spec_problems = [p for error in validator.iter_errors(spec) for p in _schema_problems(error)]
    if rules is not None:
        _walk_rules(rules, spec, ("spec",), spec_problems)
    return problems + sorted(spec_problems)


def validate_all(objs: Iterable[Mapping[str, Any]]) -> list[str]:
    """`validate` over many objects, each problem prefixed `Kind namespace/name: `."""
    problems: list[str] = []
    for obj in objs:
        meta = obj.get("metadata")
        meta = meta if isinstance(meta, Mapping) else {}
        prefix = f"{obj.get('kind', '?')} {meta.get('namespace', '?')}/{meta.get('name', '?')}: "
        problems.extend(prefix + problem for problem in validate(obj))
    return problems

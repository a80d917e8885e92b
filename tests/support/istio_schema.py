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

The CEL rules are evaluated by tests/support/k8s_cel.py, which makes celpy behave like the
API server's cel-go (see its docstring); `evaluate_rule` is re-exported from there.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import yaml

from tests.support.k8s_cel import (
    MAPPING_TYPES,
    JsonPath,
    RuleNode,
    evaluate_rule,
    is_json_integer,
    is_json_number,
    rule_tree,
    walk_rules,
)

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
            "integer": lambda _, v: is_json_integer(v),
            "number": lambda _, v: is_json_number(v),
            "object": lambda _, v: isinstance(v, MAPPING_TYPES),
        }
    ),
)
_FORMATS = jsonschema.FormatChecker(formats=())
for _name, (_low, _high) in _INT_RANGES.items():
    _FORMATS.checks(_name)(lambda v, lo=_low, hi=_high: not is_json_integer(v) or lo <= v <= hi)


def _is_base64(value: object) -> bool:
    try:  # Go's base64.StdEncoding: padded, nothing outside the alphabet
        return not isinstance(value, str) or base64.b64decode(value, validate=True) is not None
    except binascii.Error:
        return False


def _is_rfc3339(value: object) -> bool:
    return not isinstance(value, str) or _RFC3339.fullmatch(value) is not None


_FORMATS.checks("byte")(_is_base64)
_FORMATS.checks("date-time")(_is_rfc3339)


# ----------------------------------------------------------------- problems, by part of the object


@functools.cache
def _compiled(group: str, version: str, kind: str) -> tuple[Any, RuleNode | None]:
    """jsonschema validator and rule tree for one kind's `spec`, built on first use."""
    spec_schema = _schemas()[group, version, kind]["properties"]["spec"]
    json_schema = _to_json_schema(spec_schema)
    _Validator.check_schema(json_schema)
    return _Validator(json_schema, format_checker=_FORMATS), rule_tree(spec_schema)


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
    if isinstance(value, MAPPING_TYPES):
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
        broken: list[tuple[JsonPath, str]] = []
        walk_rules(rules, spec, ("spec",), broken)
        spec_problems.extend(f"{_fmt(path)}: {problem}" for path, problem in broken)
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

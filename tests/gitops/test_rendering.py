"""YAML output: the golden format, round trips through both PyYAML loaders, determinism.

`gitops.rendering` writes every `OUT/<cluster>.yaml` and every golden file, so these tests
pin the exact text of a typical object and prove, for arbitrary JSON-like input, that the
text loads back as the same values (with the same types) in libyaml and in pure PyYAML.
"""

from __future__ import annotations

import copy
import enum
import io
import json
import math
import random
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from gitops.rendering import dump, dump_all, write_all

LOADERS = [
    pytest.param(lambda text: yaml.load(text, Loader=yaml.CSafeLoader), id="libyaml"),
    pytest.param(yaml.safe_load, id="pure"),
]


def load_both(text: str) -> list[Any]:
    """The single document in `text`, as libyaml and pure PyYAML read it."""
    return [yaml.load(text, Loader=yaml.CSafeLoader), yaml.safe_load(text)]


def assert_same(got: Any, want: Any, path: str = "$") -> None:
    """Equality that also checks types (1 == 1.0 == True in Python) and treats NaN as NaN."""
    assert type(got) is type(want), f"{path}: {type(got).__name__} != {type(want).__name__}"
    if isinstance(want, dict):
        assert list(got) == list(want) or set(got) == set(want), f"{path}: keys differ"
        for key, value in want.items():
            assert_same(got[key], value, f"{path}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), f"{path}: lengths differ"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{path}[{i}]")
    elif isinstance(want, float):
        assert math.isnan(got) if math.isnan(want) else repr(got) == repr(want), path
    else:
        assert got == want, path


# -- the golden format ---------------------------------------------------------------------

VIRTUAL_SERVICE: dict[str, Any] = {
    "kind": "VirtualService",
    "apiVersion": "networking.istio.io/v1",
    "metadata": {
        "name": "reviews",
        "namespace": "bookinfo",
        "labels": {"app.kubernetes.io/name": "reviews", "app": "reviews", "version": "v1"},
        "annotations": {},
    },
    "spec": {
        "hosts": ["reviews.bookinfo.svc.cluster.local", "*.example.com"],
        "gateways": [],
        "http": [
            {
                "name": "canary",
                "match": [
                    {"uri": {"prefix": "/api/v2"}, "headers": {"x-canary": {"exact": "yes"}}}
                ],
                "route": [
                    {"destination": {"host": "reviews", "subset": "v2"}, "weight": 10},
                    {"destination": {"host": "reviews", "subset": "v1"}, "weight": 90},
                ],
                "timeout": "10s",
                "retries": {"attempts": 3, "retryOn": "5xx,reset"},
                "fault": {"delay": {"percentage": {"value": 0.5}, "fixedDelay": "5s"}},
                "mirror": None,
                "corsPolicy": {"allowCredentials": False},
            }
        ],
        "ports": {"9080": "http", "8443": 8443},
        "description": "line one\nline two",
    },
}

VIRTUAL_SERVICE_YAML = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  annotations: {}
  labels:
    app: reviews
    app.kubernetes.io/name: reviews
    version: v1
  name: reviews
  namespace: bookinfo
spec:
  description: "line one\\nline two"
  gateways: []
  hosts:
  - reviews.bookinfo.svc.cluster.local
  - "*.example.com"
  http:
  - corsPolicy:
      allowCredentials: false
    fault:
      delay:
        fixedDelay: 5s
        percentage:
          value: 0.5
    match:
    - headers:
        x-canary:
          exact: "yes"
      uri:
        prefix: /api/v2
    mirror: null
    name: canary
    retries:
      attempts: 3
      retryOn: "5xx,reset"
    route:
    - destination:
        host: reviews
        subset: v2
      weight: 10
    - destination:
        host: reviews
        subset: v1
      weight: 90
    timeout: 10s
  ports:
    "8443": 8443
    "9080": http
"""


def test_virtual_service_renders_in_the_golden_format() -> None:
    assert dump(VIRTUAL_SERVICE) == VIRTUAL_SERVICE_YAML
    for loaded in load_both(VIRTUAL_SERVICE_YAML):
        assert_same(loaded, VIRTUAL_SERVICE)


def test_documents_are_separated_by_dashes_and_end_with_a_newline() -> None:
    assert dump({}) == "{}\n"
    assert dump({"a": 1}) == "a: 1\n"
    assert dump_all([]) == ""
    assert dump_all([{"a": 1}, {}, {"b": [[], {}]}]) == "---\na: 1\n---\n{}\n---\nb:\n- []\n- {}\n"


def test_nested_sequences_and_mappings_in_sequences() -> None:
    doc = {"l": [[1, [2, 3]], [{"a": 1, "b": [{"c": 2, "d": 3}]}], {"e": [4]}]}
    assert dump(doc) == (
        "l:\n- - 1\n  - - 2\n    - 3\n- - a: 1\n    b:\n    - c: 2\n      d: 3\n- e:\n  - 4\n"
    )
    for loaded in load_both(dump(doc)):
        assert_same(loaded, doc)


@pytest.mark.parametrize(
    "value",
    ["reviews.bookinfo.svc.cluster.local", "app.kubernetes.io/name", "/api/v1", "v1", "10s",
     "1.2.3-rc1", "spiffe://cluster.local/ns/a/sa/b", "ISTIO_MUTUAL", "a=b", "x*y", "a~b"],
)  # fmt: skip
def test_ordinary_identifiers_stay_plain(value: str) -> None:
    assert dump({value: value}) == f"{value}: {value}\n"
    for loaded in load_both(dump({value: value})):
        assert_same(loaded, {value: value})


# -- strings that must be quoted -----------------------------------------------------------

NASTY = [
    "yes", "No", "NO", "on", "OFF", "y", "N", "true", "False", "~", "null", "Null", "",
    "0x1F", "0o17", "017", "0b101", "1_000", "1e3", "1E3", "1e+3", ".5", "5.", "-1", "+1", "1.0",
    "12:30", "1:20:30", "2001-12-14", "2001-12-14t21:59:43.10-05:00", ".inf", "-.Inf", ".NaN",
    "-", "- a", "a: b", "a:", "a #b", "#", "@x", "`x", "%x", "*x", "&x", "!x", "|", ">", "'",
    '"', " lead", "trail ", "a\nb", "\t", "\r\n", "\u2028", "\u2029", "\x85", "\ufeff", "\x7f",
    "\x00", "\x1b[0m", "\ufffe", "=", "<<", "?", "? x", "[", "]", "{}", ",", "a,b", "---",
    "...", "a b", "é", "😀", "\\", "\\n", "key: value # c", "1d", "1a", "0xg",
]  # fmt: skip


@pytest.mark.parametrize("text", NASTY, ids=repr)
def test_nasty_strings_round_trip_as_values_keys_and_items(text: str) -> None:
    doc = {text: text, "list": [text, {text: [text]}], "nested": {text: {text: text}}}
    rendered = dump(doc)
    for loaded in load_both(rendered):
        assert_same(loaded, doc)
    many = dump_all([doc, {"k": text}])
    for loader in (yaml.CSafeLoader, yaml.SafeLoader):
        assert list(yaml.load_all(many, Loader=loader)) == [doc, {"k": text}]


@pytest.mark.parametrize("text", ["yes", "null", "0x1F", "12:30", "2001-12-14", "1e3", "<<", "="])
def test_strings_a_loader_would_retype_are_double_quoted(text: str) -> None:
    assert dump({"v": text}) == f'v: "{text}"\n'


@pytest.mark.parametrize(
    ("text", "escaped"),
    [("\u2028", "\\u2028"), ("\u2029", "\\u2029"), ("\x85", "\\u0085"), ("\ufeff", "\\ufeff"),
     ("\x7f", "\\u007f"), ("\x00", "\\u0000"), ("\n", "\\n"), ("é😀", "é😀")],
)  # fmt: skip
def test_characters_yaml_rejects_literally_are_escaped(text: str, escaped: str) -> None:
    assert dump({"v": text}) == f'v: "{escaped}"\n'


@pytest.mark.parametrize("key", ["k" * 1001, "é" * 600, "😀" * 300, "a b" * 400])
def test_keys_too_long_for_an_implicit_key_round_trip(key: str) -> None:
    doc = {key: "v", "m": {key: {"a": 1, "b": [1, 2]}}, "l": [{key: [{"c": 2}], "z": 0}]}
    rendered = dump(doc)
    assert "? " in rendered
    for loaded in load_both(rendered):
        assert_same(loaded, doc)


def test_a_key_at_the_implicit_limit_stays_implicit() -> None:
    key = "k" * 1000
    assert dump({key: 1}) == f"{key}: 1\n"


# -- numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    [0, -7, 10**30, 0.0, -0.0, 0.5, 1.5e300, 1e20, 1e-05, 5e-324, -2.5e-10, 1e16, 123456789.0,
     float("inf"), float("-inf"), float("nan")],
    ids=repr,
)  # fmt: skip
def test_numbers_reload_with_their_type(number: float) -> None:
    doc = {"n": number, "l": [number]}
    for loaded in load_both(dump(doc)):
        assert_same(loaded, doc)


def test_special_floats_use_yaml_spellings() -> None:
    assert dump({"a": float("inf"), "b": float("-inf"), "c": float("nan"), "d": 1e20}) == (
        "a: .inf\nb: -.inf\nc: .nan\nd: 1.0e+20\n"
    )


def test_bools_and_null() -> None:
    assert dump({"on": True, "off": False, "none": None}) == (
        'none: null\n"off": false\n"on": true\n'
    )


def test_enum_members_render_as_their_values() -> None:
    class Mode(enum.StrEnum):
        STRICT = "STRICT"

    class Port(enum.IntEnum):
        HTTP = 80

    assert dump({"mode": Mode.STRICT, "port": Port.HTTP, "t": (1, "a")}) == (
        "mode: STRICT\nport: 80\nt:\n- 1\n- a\n"
    )


@pytest.mark.parametrize(
    "bad",
    [{1: "a"}, {"a": {1, 2}}, {"a": b"x"}, {"a": object()}],
    ids=["key", "set", "bytes", "obj"],
)
def test_values_outside_json_are_refused(bad: dict[Any, Any]) -> None:
    with pytest.raises(TypeError):
        dump(bad)


def test_a_document_must_be_a_mapping() -> None:
    with pytest.raises(TypeError, match="mapping"):
        dump_all([["not", "a", "mapping"]])  # type: ignore[list-item]


# -- arbitrary JSON-like values ------------------------------------------------------------

#: Text likely to sit on the plain/quoted boundary, mixed with arbitrary Unicode (Hypothesis
#: excludes surrogates by default, and includes control characters).
yamlish_text = st.text(alphabet="yYnNoO01289.:-_ #eExX+~=<>/\t'\"abz,*&!%@`|?[]{}\n\x85\u2028")
texts = st.one_of(st.text(), yamlish_text, st.sampled_from(NASTY))
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), texts)
json_like = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4)
)
documents = st.dictionaries(texts, json_like, max_size=6)


@given(documents)
@settings(max_examples=300)
def test_any_document_round_trips_through_libyaml_and_pure_pyyaml(doc: dict[str, Any]) -> None:
    rendered = dump(doc)
    assert rendered.endswith("\n")
    assert not rendered.startswith("---")
    for loaded in load_both(rendered):
        assert_same(loaded, doc)


@given(st.lists(documents, max_size=4))
@settings(max_examples=100)
def test_any_documents_round_trip_through_load_all(docs: list[dict[str, Any]]) -> None:
    rendered = dump_all(docs)
    assert rendered.count("---\n") >= len(docs)
    for loader in (yaml.CSafeLoader, yaml.SafeLoader):
        loaded = list(yaml.load_all(rendered, Loader=loader))
        assert_same(loaded, docs)


def shuffled(value: Any, rng: random.Random) -> Any:
    """A deep copy of `value` with every dict's insertion order shuffled."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [shuffled(v, rng) for v in value]
    return value


@given(st.lists(documents, min_size=1, max_size=3), st.randoms(use_true_random=False))
@settings(max_examples=100)
def test_insertion_order_does_not_change_the_bytes(
    docs: list[dict[str, Any]], rng: random.Random
) -> None:
    assert dump_all(shuffled(docs, rng)) == dump_all(docs)
    assert dump(shuffled(docs[0], rng)) == dump(docs[0])


def test_virtual_service_insertion_order_does_not_change_the_bytes() -> None:
    for seed in range(10):
        assert dump(shuffled(VIRTUAL_SERVICE, random.Random(seed))) == VIRTUAL_SERVICE_YAML


# -- shared sub-objects --------------------------------------------------------------------


def embed(shared: Any) -> list[dict[str, Any]]:
    """Documents that hold `shared` at several indents, under keys and as list items."""
    return [
        {"a": shared, "b": [shared, shared], "c": {"d": {"e": shared}}},
        {"l": [[shared], {"x": shared, "y": [shared]}], "z": shared},
        {"a": shared, "m": [{"k": 1, "v": shared}, shared]},
        {"deep": [[[shared, shared]]], "a": shared},
    ]


@given(json_like)
@settings(max_examples=200)
def test_shared_objects_render_like_fresh_copies(shared: Any) -> None:
    docs = embed(shared) * 3
    rendered = dump_all(docs)
    assert rendered == dump_all(copy.deepcopy(docs))
    assert_same(list(yaml.load_all(rendered, Loader=yaml.CSafeLoader)), docs)


def test_shared_labels_render_like_fresh_copies() -> None:
    labels = {f"label-{i}.example.com/key": f"value-{i}" for i in range(14)}
    ports = [{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "grpc", "port": 90}]
    docs = [
        {"metadata": {"name": f"obj-{i}", "labels": labels}, "spec": {"ports": ports, "i": i}}
        for i in range(200)
    ]
    docs.append({"spec": {"items": [labels, ports, {"nested": labels}]}})
    rendered = dump_all(docs)
    assert rendered == dump_all(copy.deepcopy(docs))
    assert rendered.count("label-13.example.com/key: value-13\n") == 202


def test_memo_bounds_do_not_change_the_output() -> None:
    # More memoised containers than the memo holds: it is cleared part-way and must
    # still give the bytes of an unshared rendering.
    labels = {"app": "a", "team": "t", "tier": "x"}
    docs = [{"m": {"i": i, "j": str(i), "k": [i, i, i]}, "labels": labels} for i in range(40_000)]
    assert dump_all(docs) == dump_all(copy.deepcopy(docs))


# -- streaming -----------------------------------------------------------------------------


def test_write_all_streams_the_same_text_in_chunks() -> None:
    docs = [
        {"metadata": {"name": f"svc-{i}", "labels": {"a": "b"}}, "spec": {"hosts": [f"h{i}"]}}
        for i in range(5000)
    ]
    calls: list[str] = []
    written = write_all(docs, calls.append)
    text = "".join(calls)
    assert text == dump_all(docs)
    assert written == len(text)
    # Streamed, but not piecemeal: several chunks, each holding many documents.
    assert 2 <= len(calls) <= len(docs) // 50


def test_write_all_into_a_text_file_object() -> None:
    buf = io.StringIO()
    assert write_all([VIRTUAL_SERVICE, {}], buf.write) == len(buf.getvalue())
    assert (
        buf.getvalue()
        == dump_all([VIRTUAL_SERVICE, {}])
        == f"---\n{VIRTUAL_SERVICE_YAML}---\n{{}}\n"
    )


def test_write_all_with_nothing_to_write() -> None:
    calls: list[str] = []
    assert write_all(iter([]), calls.append) == 0
    assert calls == []


def test_output_is_json_compatible_for_json_input() -> None:
    # The rendered text carries exactly what json.dumps would: same values after a reload.
    doc = json.loads(json.dumps(VIRTUAL_SERVICE))
    assert yaml.load(dump(doc), Loader=yaml.CSafeLoader) == doc

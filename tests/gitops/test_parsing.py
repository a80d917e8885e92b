"""Guarded YAML parsing (`gitops.parsing`): hostile or broken bytes become diagnostics with
the file and line, never exceptions, crashes or silent skips; `locate` finds field lines.

Payloads that could crash the interpreter (deep nesting) are parsed in a child process, so
a regression fails one test instead of killing the run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from gitops import parsing
from gitops.diagnostics import Diagnostic, Source
from gitops.reasons import Reason

FILE = "mesh/file.yaml"


def parse(text: str | bytes) -> parsing.ParsedFile:
    return parsing.parse(FILE, text.encode() if isinstance(text, str) else text)


def only_problem(parsed: parsing.ParsedFile) -> Diagnostic:
    """The single file-level diagnostic of a broken file (which then has no documents)."""
    assert parsed.broken
    assert parsed.documents == ()
    assert len(parsed.diagnostics) == 1, parsed.diagnostics
    return parsed.diagnostics[0]


def docs(parsed: parsing.ParsedFile) -> list[tuple[int, int, Any]]:
    assert not parsed.broken, parsed.diagnostics
    return [(d.index, d.line, d.data) for d in parsed.documents]


# -- documents and their lines ------------------------------------------------------------


def test_multi_document_file_gives_each_document_its_index_and_1_based_start_line() -> None:
    text = (
        "# leading comment\n"  # 1
        "\n"  # 2
        "kind: A\n"  # 3  document 0
        "---\n"  # 4
        "kind: B\n"  # 5  document 1 starts at its first content line
        "...\n"  # 6
        "---\n"  # 7
        "\n"  # 8
        "\n"  # 9
        "- kind: C\n"  # 10 document 2 (a list is still a document)
    )
    assert docs(parse(text)) == [
        (0, 3, {"kind": "A"}),
        (1, 5, {"kind": "B"}),
        (2, 10, [{"kind": "C"}]),
    ]


def test_empty_and_null_documents_are_skipped_but_keep_their_index() -> None:
    text = "---\n---\n~\n---\n# only a comment\n---\nkind: A\n"
    # Documents 0 (empty), 1 (null) and 2 (comment) are skipped; the index of the rest
    # still counts them, because `locate` addresses documents by that index.
    assert docs(parse(text)) == [(3, 7, {"kind": "A"})]
    assert parsing.locate(text.encode(), 3, ["kind"]) == 7


@pytest.mark.parametrize("text", ["", "\n\n", "# nothing here\n", "---\n...\n", "~\n"])
def test_files_without_content_have_no_documents_and_are_not_broken(text: str) -> None:
    parsed = parse(text)
    assert parsed.documents == ()
    assert parsed.diagnostics == ()
    assert not parsed.broken


def test_plain_scalars_resolve_as_in_yaml_but_timestamps_stay_strings() -> None:
    text = (
        "created: 2024-05-01T12:00:00Z\n"
        "day: 2024-05-01\n"
        "spaced: 2001-12-14 21:59:43.10 -5\n"
        "list: [2024-05-01, 1, 1.5, true, null, '2']\n"
    )
    [(_, _, data)] = docs(parse(text))
    assert data == {
        "created": "2024-05-01T12:00:00Z",
        "day": "2024-05-01",
        "spaced": "2001-12-14 21:59:43.10 -5",
        "list": ["2024-05-01", 1, 1.5, True, None, "2"],
    }


# -- duplicate keys ---------------------------------------------------------------------


def test_top_level_duplicate_key_excludes_its_document_but_not_the_next_ones() -> None:
    text = "kind: A\nname: x\nkind: B\n---\nkind: C\n"
    parsed = parse(text)
    assert not parsed.broken  # a document-level problem: the file itself is readable
    first, second = parsed.documents
    assert first.problems == (
        Diagnostic(
            Reason.DuplicateKey,
            "key 'kind' appears more than once in the same mapping",
            Source(FILE, 3),
        ),
    )
    assert (second.index, second.line, second.data, second.problems) == (1, 5, {"kind": "C"}, ())


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        ("spec:\n  http:\n  - name: a\n    port: 1\n    name: b\n", 5, "name"),
        ("spec:\n  a: {x: 1, y: 2, x: 3}\n", 2, "x"),
        ("spec:\n  labels:\n    app: a\n    'app': b\n", 4, "app"),
        ("a: 1\n---\nb:\n  c: 1\n  d:\n    e: 1\n    e: 2\n", 7, "e"),
    ],
    ids=["in-list-item", "flow-mapping", "quoted-and-plain", "second-document"],
)
def test_nested_duplicate_key_reports_the_line_of_the_repeated_key(
    text: str, line: int, key: str
) -> None:
    parsed = parse(text)
    problems = [p for d in parsed.documents for p in d.problems]
    assert [(p.reason, p.source, key in p.message) for p in problems] == [
        (Reason.DuplicateKey, Source(FILE, line), True)
    ]


def test_the_same_key_in_sibling_mappings_is_not_a_duplicate() -> None:
    parsed = parse("a: {name: x}\nb: {name: y}\nlist: [{name: 1}, {name: 2}]\n")
    assert [d.problems for d in parsed.documents] == [()]


def test_keys_that_resolve_to_the_same_value_are_duplicates() -> None:
    # `true` and `yes` are the same boolean key in YAML 1.1 (PyYAML's resolver), `1` and
    # `0x1` the same integer: the mapping silently keeps one value, exactly what
    # DuplicateKey exists to refuse.
    for text in ("true: a\nyes: b\n", "1: a\n0x1: b\n"):
        parsed = parse(text)
        problems = [p for d in parsed.documents for p in d.problems]
        assert [(p.reason, p.source) for p in problems] == [
            (Reason.DuplicateKey, Source(FILE, 2))
        ], text


def test_merge_keys_are_not_duplicates_and_are_merged() -> None:
    text = (
        "base: &base {a: 1, b: 2}\n"
        "more: &more {c: 3}\n"
        "one:\n  <<: *base\n  b: 20\n"
        "two:\n  <<: *base\n  <<: *more\n"
        "three:\n  <<: [*base, *more]\n"
    )
    parsed = parse(text)
    [doc] = parsed.documents
    assert doc.problems == ()
    assert doc.data["one"] == {"a": 1, "b": 20}
    assert doc.data["two"] == {"a": 1, "b": 2, "c": 3}
    assert doc.data["three"] == {"a": 1, "b": 2, "c": 3}


# -- anchors and aliases ----------------------------------------------------------------


def _laughs(levels: int) -> str:
    """The 'billion laughs' shape: each level is a list of nine aliases of the one before."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_refused_as_an_alias_bomb() -> None:
    text = _laughs(10)
    problem = only_problem(parse(text))
    assert problem.reason is Reason.YamlAliasBomb
    assert problem.source is not None and problem.source.file == FILE
    # The line named is the one holding the alias that crossed the limit.
    assert "*" in text.splitlines()[problem.source.line - 1]
    assert f"more than {parsing.MAX_ALIAS_EXPANSION:,} nodes" in problem.message


def test_the_expansion_limit_is_what_refuses_an_alias_document(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Four levels expand to about 9**4 = 6,561 nodes: under the real limit they load ...
    text = _laughs(4)
    [(_, _, data)] = docs(parse(text))
    assert len(data["l3"]) == 9 and data["l3"][0][0][0] == ["lol"] * 9
    # ... and the same document is refused as soon as the limit is below its size.
    monkeypatch.setattr(parsing, "MAX_ALIAS_EXPANSION", 5_000)
    problem = only_problem(parse(text))
    assert problem.reason is Reason.YamlAliasBomb
    assert "more than 5,000 nodes" in problem.message


def test_alias_bomb_in_a_later_document_names_that_document_and_its_line() -> None:
    text = "kind: fine\n---\n" + _laughs(10)
    problem = only_problem(parse(text))
    assert problem.reason is Reason.YamlAliasBomb
    assert problem.source is not None and problem.source.line >= 3
    assert "*" in text.splitlines()[problem.source.line - 1]
    assert "(document 2)" in problem.message


def _merge_bomb(levels: int) -> str:
    """Merge keys instead of lists: every level merges nine copies of the level below.

    The anchors are defined inside the value being merged, so nothing is constructed
    before the whole merged mapping has been flattened.
    """

    def level(k: int) -> str:
        if k == 0:
            return "{" + ", ".join(f"k{i}: v" for i in range(9)) + "}"
        return f"{{<<: [&m{k} {level(k - 1)}" + f", *m{k}" * 8 + "]}"

    return f"top: {level(levels)}\n"


def test_merge_key_alias_bomb_is_refused_before_it_is_expanded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each level multiplies the merged mapping by nine. The limit must stop the expansion
    # itself, not only the construction after it: otherwise a file under 500 bytes with eight
    # levels builds lists of 9**9 = 387 million pairs (gigabytes) before it is refused.
    # Measured as memory, not time: refusing a two-level and a four-level bomb must cost
    # about the same.
    monkeypatch.setattr(parsing, "MAX_ALIAS_EXPANSION", 1_000)
    peaks = []
    for levels in (2, 4):
        tracemalloc.start()
        try:
            parsed = parse(_merge_bomb(levels))
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        assert only_problem(parsed).reason is Reason.YamlAliasBomb
    small, large = peaks
    assert large < 4 * small, f"peak memory grew from {small:,} to {large:,} bytes"


@pytest.mark.parametrize("text", ["&a [*a]\n", "&a {self: *a}\n", "x: &a [1, [2, *a]]\n"])
def test_recursive_alias_is_refused(text: str) -> None:
    problem = only_problem(parse(text))
    assert problem.reason is Reason.YamlAliasBomb
    assert "cycle" in problem.message
    assert problem.source == Source(FILE, 1)


def test_harmless_aliases_are_expanded() -> None:
    text = (
        "defaults: &dest {ref: {name: reviews}, port: {number: 9080}}\n"
        "routes:\n- forwardTo: *dest\n- forwardTo: *dest\n"
        "hosts: &h [a.example.com]\nsame: *h\n"
    )
    [(_, _, data)] = docs(parse(text))
    dest = {"ref": {"name": "reviews"}, "port": {"number": 9080}}
    assert data["routes"] == [{"forwardTo": dest}, {"forwardTo": dest}]
    assert data["same"] == ["a.example.com"]


# -- encoding ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "line", "byte"),
    [
        (b"a: 1\nb: 2\nc: caf\xe9\n", 3, "0xe9"),  # Latin-1
        (b"a: 1\nb: \xff\n", 2, "0xff"),
        (b"a: 1\n\nb: \xe2\x82", 3, "0xe2"),  # truncated multi-byte sequence at the end
        (b"\xff\xfea\x00:\x00 \x001\x00\n\x00", 1, "0xff"),  # UTF-16 with its BOM
    ],
    ids=["latin-1", "stray-byte", "truncated", "utf-16"],
)
def test_invalid_utf8_names_the_line_of_the_first_bad_byte(
    data: bytes, line: int, byte: str
) -> None:
    problem = only_problem(parse(data))
    assert problem.reason is Reason.InvalidEncoding
    assert problem.source == Source(FILE, line)
    assert byte in problem.message


def test_utf8_bom_is_accepted_and_lines_are_unchanged() -> None:
    parsed = parse("\ufeffkind: A\n---\nkind: B\nname: café\n".encode())
    assert docs(parsed) == [(0, 1, {"kind": "A"}), (1, 3, {"kind": "B", "name": "café"})]


# -- syntax and tags --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("a: 1\nb: c: d\n", 2),
        ("a:\n\tb: 1\n", 2),
        ("a: 1\n b: 2\n", 2),
        ("a: 1\nb: 'open\n", 3),
        ("a: *undefined\n", 1),
        ("ok: 1\n---\nok: 2\n---\nc: [1, 2\nd: 3\n", 6),
        ("a: 1\nb: \x00\n", 2),
    ],
    ids=[
        "mapping-in-plain",
        "tab",
        "bad-indent",
        "open-quote",
        "undefined-alias",
        "later-doc",
        "nul",
    ],
)
def test_syntax_error_makes_the_whole_file_unusable_and_names_the_line(
    text: str, line: int
) -> None:
    problem = only_problem(parse(text))
    assert problem.reason is Reason.YamlSyntaxError
    assert problem.source == Source(FILE, line)
    assert problem.message


@pytest.mark.parametrize(
    "template",
    [
        "ok: 1\nrun: !!python/object/apply:os.mkdir [{path}]\n",
        "ok: 1\nrun: !!python/object/new:os.mkdir [{path}]\n",
        "ok: 1\nrun: !!python/name:os.mkdir\n",
        "ok: 1\nrun: !!python/module:os\n",
        "ok: 1\nref: !Ref {path}\n",
        "ok: 1\nref: !<tag:example.com,2024:thing> {path}\n",
    ],
    ids=["apply", "new", "name", "module", "local-tag", "global-tag"],
)
def test_unknown_and_python_tags_are_refused_and_never_constructed(
    template: str, tmp_path: Path
) -> None:
    target = tmp_path / "created-by-yaml"
    problem = only_problem(parse(template.format(path=json.dumps(str(target)))))
    assert problem.reason is Reason.YamlSyntaxError
    assert problem.source == Source(FILE, 2)
    assert "tag" in problem.message
    assert not target.exists()


@pytest.mark.parametrize(
    "value",
    [
        "!!int x",
        "!!int",
        "!!int 0x",
        "!!float x",
        "!!float",
        "!!bool maybe",
        "!!set [a, b]",
    ],
)
def test_standard_tag_with_a_malformed_value_is_a_diagnostic_not_an_exception(value: str) -> None:
    problem = only_problem(parse(f"ok: 1\nbad: {value}\n"))
    assert problem.reason is Reason.YamlSyntaxError
    assert problem.source == Source(FILE, 2)


def test_standard_tags_with_good_values_are_constructed() -> None:
    [(_, _, data)] = docs(parse("a: !!int '12'\nb: !!str 1\nc: !!float 2\nd: !!bool yes\n"))
    assert data == {"a": 12, "b": "1", "c": 2.0, "d": True}


# -- nesting ----------------------------------------------------------------------------

_CHILD = """
import json, sys
from gitops import parsing
parsed = parsing.parse("deep.yaml", sys.stdin.buffer.read())
print(json.dumps({
    "documents": len(parsed.documents),
    "diagnostics": [[d.reason.name, d.source.line, d.message] for d in parsed.diagnostics],
}))
"""


def _parse_in_child(data: bytes) -> dict[str, Any]:
    """Parse in a separate interpreter, so a C-stack overflow fails the test, not the run."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD], input=data, capture_output=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"parser died (exit {done.returncode}): {done.stderr[-500:]!r}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _dash_lines(lines: int) -> bytes:
    # 255 compact `- ` per line (just under any run-length filter), each line continuing the
    # innermost item of the previous one: 255 more levels per line.
    return b"\n".join(b" " * (510 * i) + b"- " * 255 for i in range(lines)) + b"x\n"


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (b"[" * 100_000, 1),
        (b"{a: " * 50_000, 1),
        (b"- " * 100_000 + b"x\n", 1),
        (b"kind: A\n---\nspec:\n  x: " + b"[" * 30_000 + b"]" * 30_000 + b"\n", 4),
        (b"? " * 40_000 + b"x\n", 1),
        (b"- ? " * 20_000 + b"x\n", 1),
        (_dash_lines(100), 4),  # 3 x 255 levels on lines 1-3, level 1,001 on line 4
    ],
    ids=[
        "flow-lists",
        "flow-maps",
        "compact-dashes",
        "later-doc",
        "compact-keys",
        "dash-key-pairs",
        "dash-runs-on-many-lines",
    ],
)
def test_deep_nesting_is_refused_without_crashing_the_interpreter(data: bytes, line: int) -> None:
    result = _parse_in_child(data)
    assert result["documents"] == 0
    [[reason, found_line, message]] = result["diagnostics"]
    assert (reason, found_line) == ("YamlSyntaxError", line)
    assert f"deeper than {parsing.MAX_DEPTH}" in message


def test_block_nesting_deeper_than_the_limit_is_refused_too() -> None:
    # One space of indentation per level: 1,500 levels fit in about 1 MiB, well under the
    # size cap, so block style does not bound the depth below MAX_DEPTH.
    levels = parsing.MAX_DEPTH + 500
    text = "".join(" " * i + "a:\n" for i in range(levels)) + " " * levels + "x\n"
    parsed = parse(text)
    # Compared field by field: the repr of a 1,500-level document overflows the recursion
    # limit, which would hide the assertion message.
    assert len(parsed.documents) == 0
    assert [
        (d.reason, f"deeper than {parsing.MAX_DEPTH}" in d.message) for d in parsed.diagnostics
    ] == [(Reason.YamlSyntaxError, True)]


def test_nesting_within_the_limit_and_brackets_in_strings_are_accepted() -> None:
    depth = parsing.MAX_DEPTH - 1
    [(_, _, data)] = docs(parse("[" * depth + "]" * depth))
    for _ in range(depth - 1):
        assert isinstance(data, list) and len(data) == 1
        data = data[0]
    assert data == []
    quoted = '"' + "[" * 5_000 + '"\n'
    assert docs(parse(quoted)) == [(0, 1, "[" * 5_000)]
    assert docs(parse("- " * 255 + "x\n"))[0][1] == 1


# -- locate -----------------------------------------------------------------------------

SOURCE = b"""\
apiVersion: networking.gloo.solo.io/v2
kind: RouteTable
metadata:
  name: reviews
spec:
  hosts: [a.example.com,
          b.example.com]
  http:
  - name: first
    matchers:
    - uri: {prefix: /}
  - name: second
    forwardTo:
      destinations:
      - ref: {name: reviews}
---
---
kind: Other
spec: {x: 1}
"""


@pytest.mark.parametrize(
    ("index", "path", "line"),
    [
        (0, [], 1),
        (0, ["kind"], 2),
        (0, ["metadata", "name"], 4),
        (0, ["spec", "hosts", 1], 7),
        (0, ["spec", "http", 0, "matchers", 0, "uri", "prefix"], 11),
        (0, ["spec", "http", 1], 12),
        (0, ["spec", "http", 1, "forwardTo", "destinations", 0, "ref", "name"], 15),
        (2, ["spec", "x"], 19),
    ],
)
def test_locate_finds_keys_and_list_items(index: int, path: list[str | int], line: int) -> None:
    assert parsing.locate(SOURCE, index, path) == line


@pytest.mark.parametrize(
    ("path", "line"),
    [
        (["spec", "missing", "deeper"], 5),  # the deepest part that exists: `spec`
        (["spec", "http", 7, "name"], 8),  # index out of range: the list's key
        (["spec", "http", "name"], 8),  # a key where a list is
        (["spec", "http", 1, "name", "x"], 12),  # past a scalar: the last key found
        (["metadata", 0], 3),  # an index where a mapping is
    ],
)
def test_locate_falls_back_to_the_deepest_existing_part(path: list[str | int], line: int) -> None:
    assert parsing.locate(SOURCE, 0, path) == line


@pytest.mark.parametrize(
    ("data", "index"),
    [(SOURCE, 9), (b"a: [\n", 0), (b"a: \xff\n", 0)],
    ids=["no-such-document", "syntax-error", "bad-encoding"],
)
def test_locate_returns_0_when_the_document_cannot_be_read(data: bytes, index: int) -> None:
    assert parsing.locate(data, index, ["a"]) == 0


def test_tagged_timestamps_stay_text() -> None:
    # Kubernetes reads YAML through JSON, where a timestamp is a string, tagged or not.
    [(_, _, data)] = docs(parse("a: !!timestamp 2024-01-01\nb: 2024-01-01T00:00:00Z\n"))
    assert data == {"a": "2024-01-01", "b": "2024-01-01T00:00:00Z"}

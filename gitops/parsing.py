"""Guarded YAML parsing: bytes of one file in, documents with line numbers out.

The first stage every file goes through, for config repositories
(`gitops.loading`) and discovery snapshots (`gitops.discovery`) alike. Hostile
or broken content becomes a `Diagnostic`, never an exception and never a silent
skip:

- bytes that are not UTF-8 (`InvalidEncoding`, with the line of the first bad byte);
- YAML that does not parse, unknown tags, nesting too deep (`YamlSyntaxError`): the
  whole file is unusable, because what follows the error cannot be known;
- anchors/aliases that expand beyond `MAX_ALIAS_EXPANSION` nodes (`YamlAliasBomb`);
- duplicate mapping keys (`DuplicateKey`), which YAML forbids but PyYAML accepts.

The fast path is libyaml (`CSafeLoader`); only construction hooks are Python.
Timestamps stay strings, as in Kubernetes (sigs.k8s.io/yaml goes through JSON).
Field line numbers for schema errors are found on demand by `locate`, which
re-composes just that file (errors are rare, parsing is hot).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from gitops.diagnostics import Diagnostic, Source
from gitops.reasons import Reason

#: A document whose aliases expand to more nodes than this is refused (billion laughs).
MAX_ALIAS_EXPANSION = 100_000
#: Deeper nesting is refused. Beyond our own limit, PyYAML's C composer recurses per level
#: and overflows the C stack (a segfault, not an exception) somewhere past 20,000 levels.
MAX_DEPTH = 1000

_BRACKET = re.compile(r"[\[\]{}]")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
_Y = "tag:yaml.org,2002:"
#: Config is plain data: these tags only (no !!binary, !!set, !!python/..., custom tags).
_ALLOWED_TAGS = frozenset(
    _Y + t for t in ("str", "int", "float", "bool", "null", "seq", "map", "merge", "timestamp")
)
#: What explicit tags with bad values raise inside PyYAML's scalar constructors.
_CONSTRUCT_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError)


class _Refused(Exception):
    """Content that must not be loaded; carries the reason and the line of the node."""

    def __init__(self, reason: Reason, message: str, line: int) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.line = line


@dataclass(frozen=True, slots=True)
class Document:
    """One YAML document: its 0-based index in the file, 1-based start line, and value."""

    index: int
    line: int
    data: Any
    #: Problems inside this document alone (duplicate keys); the document must not be used.
    problems: tuple[Diagnostic, ...] = ()


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """The documents of one file, or the reason the whole file is unusable."""

    path: str
    documents: tuple[Document, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()

    @property
    def broken(self) -> bool:
        """True when the file as a whole could not be read (nothing in it is used)."""
        return bool(self.diagnostics)


def _resolvers_without_timestamps() -> dict[Any, list[tuple[str, Any]]]:
    table: dict[Any, list[tuple[str, Any]]] = {}
    for first, entries in yaml.CSafeLoader.yaml_implicit_resolvers.items():
        kept = [(tag, rx) for tag, rx in entries if tag != _Y + "timestamp"]
        if kept:
            table[first] = kept
    return table


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1 if node.start_mark is not None else 0


def _checked(tag: str, construct: Any) -> Any:
    """A scalar constructor whose crashes on bad values (`!!int x`) become YAML errors
    carrying the node's position."""

    def checked(loader: yaml.SafeLoader, node: Node) -> Any:
        try:
            return construct(loader, node)
        except _CONSTRUCT_ERRORS as exc:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"cannot read the {tag} value: {exc or type(exc).__name__}",
                node.start_mark,
            ) from None

    return checked


def _timestamp_as_text(loader: yaml.SafeLoader, node: Node) -> Any:
    # Kubernetes reads YAML through JSON: timestamps are strings, even when tagged.
    return loader.construct_scalar(node)  # type: ignore[arg-type]


def _constructors() -> dict[Any, Any]:
    """Only plain-data tags get a constructor. Any other tag (`!!binary`, `!!set`,
    `!!python/...`, custom ones) falls to the undefined-tag constructor: a YAML error
    with its position, never a constructed object."""
    table: dict[Any, Any] = {None: yaml.SafeLoader.yaml_constructors[None]}
    for tag, construct in yaml.SafeLoader.yaml_constructors.items():
        if tag in _ALLOWED_TAGS:
            short = tag.removeprefix(_Y)
            if short == "timestamp":
                construct = _timestamp_as_text
            table[tag] = construct if short in ("seq", "map") else _checked(short, construct)
    return table


class _Loader(yaml.CSafeLoader):
    """libyaml parser + safe constructor limited to plain data, recording document lines
    and duplicate keys."""

    yaml_implicit_resolvers = _resolvers_without_timestamps()
    yaml_constructors = _constructors()

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.doc_line = 0
        self.duplicates: list[tuple[int, str]] = []

    def construct_document(self, node: Node) -> Any:
        self.doc_line = _line(node)
        self.duplicates = []
        return super().construct_document(node)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        # flatten_mapping removes merge keys from this very list (and builds a new one with
        # the merged pairs), so afterwards `pairs` holds exactly the explicit pairs.
        pairs = node.value
        count = len(pairs)
        mapping = super().construct_mapping(node, deep=deep)
        if len(mapping) != count:  # duplicates collapsed, or merge keys added pairs
            self._find_duplicates(pairs)
        return mapping

    def _find_duplicates(self, pairs: list[tuple[Node, Node]]) -> None:
        raw: set[tuple[str, str]] = set()
        values: set[Any] = set()
        for key_node, _ in pairs:
            if not isinstance(key_node, ScalarNode):
                continue
            key = (key_node.tag, key_node.value)
            value = self.construct_object(key_node)
            # The same text twice, or two spellings of one key (`true:` and `yes:`).
            if key in raw or value in values:
                self.duplicates.append((_line(key_node), key_node.value))
            raw.add(key)
            values.add(value)


class _AliasCountingLoader(_Loader):
    """Used only for files that contain both '&' and '*': bounds alias expansion."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._sizes: dict[int, int] = {}
        self._expanded = 0

    def construct_document(self, node: Node) -> Any:
        self._expanded = 0
        return super().construct_document(node)

    def _size(self, node: Node) -> int:
        # Expanded size of a node graph, memoised by identity: shared subtrees are measured
        # once, but count in full wherever they are referenced. A node reached again while
        # it is being measured is a cycle (`&a [*a]`), which nothing downstream can walk.
        known = self._sizes.get(id(node))
        if known is not None:
            if known < 0:
                raise _Refused(
                    Reason.YamlAliasBomb,
                    "an alias refers to a node that contains it (a cycle)",
                    _line(node),
                )
            return known
        self._sizes[id(node)] = -1
        total = 1
        if isinstance(node, SequenceNode):
            total += sum(self._size(child) for child in node.value)
        elif isinstance(node, MappingNode):
            total += sum(self._size(k) + self._size(v) for k, v in node.value)
        total = min(total, MAX_ALIAS_EXPANSION + 1)
        self._sizes[id(node)] = total
        return total

    def _spend(self, node: Node) -> None:
        self._expanded += self._size(node)
        if self._expanded > MAX_ALIAS_EXPANSION:
            raise _Refused(
                Reason.YamlAliasBomb,
                f"aliases expand to more than {MAX_ALIAS_EXPANSION:,} nodes",
                _line(node),
            )

    def flatten_mapping(self, node: MappingNode) -> None:
        # Merge keys (`<<: *a`) copy the merged pairs before anything is constructed, so a
        # nested merge bomb must be measured here, before PyYAML expands it.
        for key_node, value_node in node.value:
            if key_node.tag == _Y + "merge":
                merged = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for sub in merged:
                    self._spend(sub)
        super().flatten_mapping(node)

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        if node in self.constructed_objects or node in self.recursive_objects:
            self._spend(node)
        return super().construct_object(node, deep=deep)


def _line_of_offset(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def decode(path: str, data: bytes) -> tuple[str | None, Diagnostic | None]:
    """UTF-8 text of a file (BOM stripped), or an `InvalidEncoding` diagnostic."""
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = _line_of_offset(data, exc.start)
        return None, Diagnostic(
            Reason.InvalidEncoding,
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            Source(path, line),
        )


def _error_line(exc: yaml.YAMLError, text: str) -> int:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None:
        return int(mark.line) + 1
    position = getattr(exc, "position", None)
    if isinstance(position, int):
        return text.count("\n", 0, position) + 1
    return 0


def _describe(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None)
    context = getattr(exc, "context", None)
    if problem:
        return f"{context}, {problem}" if context else str(problem)
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _may_nest_deeply(text: str) -> bool:
    """Cheap bound on nesting depth; False means the file cannot reach MAX_DEPTH.

    Every block level needs an indicator (`- `, `? `, `key:`) either further right on its
    line or on a more indented line, so block depth is at most about twice the longest line;
    flow levels need a bracket each (plus an implicit single-pair mapping per bracket).
    """
    longest = max(map(len, text.splitlines()), default=0)
    brackets = text.count("[") + text.count("{")
    flow = brackets
    if 2 * longest + 2 * brackets >= MAX_DEPTH and brackets:
        flow = max(accumulate(_STEP[b] for b in _BRACKET.findall(text)))
    return 2 * longest + 2 * flow + 2 >= MAX_DEPTH


def _too_deep(text: str) -> int:
    """Line of the first node nested deeper than MAX_DEPTH, or 0 (iterative event scan)."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.CSafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                return int(mark.line) + 1 if mark is not None else 1
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return 0


def parse(path: str, data: bytes) -> ParsedFile:
    """Parse one file into documents; never raises for bad content."""
    text, bad_encoding = decode(path, data)
    if text is None:
        assert bad_encoding is not None
        return ParsedFile(path, diagnostics=(bad_encoding,))
    try:
        deep_line = _too_deep(text) if _may_nest_deeply(text) else 0
    except yaml.YAMLError:
        deep_line = 0  # the real parse below reports the syntax error with its line
    if deep_line:
        return ParsedFile(
            path,
            diagnostics=(
                Diagnostic(
                    Reason.YamlSyntaxError,
                    f"nesting is deeper than {MAX_DEPTH} levels",
                    Source(path, deep_line),
                ),
            ),
        )
    loader_class = _AliasCountingLoader if "&" in text and "*" in text else _Loader
    loader = loader_class(text)
    documents: list[Document] = []
    try:
        index = 0
        while loader.check_data():  # type: ignore[no-untyped-call]
            value = loader.get_data()
            problems = tuple(
                Diagnostic(
                    Reason.DuplicateKey,
                    f"key {key!r} appears more than once in the same mapping",
                    Source(path, line),
                )
                for line, key in loader.duplicates
            )
            if value is not None or problems:
                documents.append(Document(index, loader.doc_line, value, problems))
            index += 1
    except _Refused as exc:
        return ParsedFile(
            path,
            diagnostics=(
                Diagnostic(
                    exc.reason,
                    f"{exc.message} (document {index + 1})",
                    Source(path, exc.line or loader.doc_line),
                ),
            ),
        )
    except yaml.YAMLError as exc:
        return ParsedFile(
            path,
            diagnostics=(
                Diagnostic(
                    Reason.YamlSyntaxError, _describe(exc), Source(path, _error_line(exc, text))
                ),
            ),
        )
    except MemoryError:
        return ParsedFile(
            path,
            diagnostics=(
                Diagnostic(Reason.YamlAliasBomb, "the file expands beyond memory", Source(path)),
            ),
        )
    except RecursionError:
        return ParsedFile(
            path,
            diagnostics=(
                Diagnostic(Reason.YamlSyntaxError, "nesting is too deep", Source(path, 0)),
            ),
        )
    finally:
        loader.dispose()
    return ParsedFile(path, tuple(documents))


def locate(data: bytes, index: int, path: Sequence[str | int]) -> int:
    """1-based line of `path` (keys and list indexes) inside document `index` of a file.

    Returns the line of the deepest part of the path that exists (the key line for
    mapping entries), or 0 if the document cannot be re-read. Slow path: errors only.
    """
    text, _ = decode("", data)
    if text is None:
        return 0
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.CSafeLoader))
    except yaml.YAMLError:
        return 0
    if index >= len(nodes) or nodes[index] is None:
        return 0
    node: Node = nodes[index]
    line = node.start_mark.line + 1
    for part in path:
        if isinstance(node, MappingNode) and isinstance(part, str):
            for key_node, value_node in node.value:
                if isinstance(key_node, ScalarNode) and key_node.value == part:
                    line = key_node.start_mark.line + 1
                    node = value_node
                    break
            else:
                return line
        elif isinstance(node, SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line

"""Deterministic, fast YAML text for rendered Istio objects.

Where it sits: the last pure step of `render`. The translators hand over, per workload
cluster, a list of Istio objects as plain JSON-like values; this module turns them into the
project's golden YAML format. `gitops render` streams a cluster's objects to
`OUT/<cluster>.yaml` through `write_all`, golden tests compare that text byte for byte;
`dump` gives one object's text. Identical input gives identical text: keys are sorted, and
nothing depends on dict insertion order, object identity or the memos' state.

Why hand-rolled: PyYAML's CSafeDumper manages ~3.6 MB/s (reference/perf-anchors.md), and a
fleet renders ~1.2 million objects; the render budget is ~2.5x `json.dumps`. The format is
deliberately small, which keeps the emitter small and its output obviously loadable:

- block style, 2-space indent, keys in `sorted()` order, kubectl-style sequences (the `- `
  of a list under a key sits in the key's column; a mapping item opens on the dash line);
- `{}` / `[]` for empty containers, `null`, `true`/`false`, decimal ints, floats that reload
  as floats (`.inf`, `-.inf`, `.nan`, `1.0e+20`);
- a string is plain only when a conservative allow-list says YAML 1.1 (PyYAML) and YAML 1.2
  loaders both read it back as that same string; everything else is double-quoted with JSON
  escapes, plus `\\uXXXX` for what YAML does not accept literally inside double quotes.
  No block scalars: a multi-line string is one quoted line, which keeps every scalar on
  the line of its key or dash.

Speed comes from two memos that live for one `dump`/`dump_all`/`write_all` call: rendered
strings, and rendered containers keyed by `id()` (translators share one labels dict among
thousands of objects). The container memo holds a reference to each object it has seen, so
an id cannot be reused by another object while the call runs; both memos are bounded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

__all__ = ["dump", "dump_all", "write_all"]

#: Plain scalars starting with a letter or '/': the characters allowed here never start a
#: YAML token inside a block plain scalar, and ':' is only an indicator before a space or at
#: the end (spaces are not allowed, a trailing ':' is excluded).
_PLAIN_WORD: Final = re.compile(r"[A-Za-z/][A-Za-z0-9._/+@*=~:-]*(?<!:)")
#: Plain scalars starting with a digit (durations such as `10s`, versions such as `1.2.3-rc1`):
#: no ':' (sexagesimals, timestamps) and no sign characters...
_PLAIN_DIGIT: Final = re.compile(r"[0-9][A-Za-z0-9._/-]*")
#: ...and at least one letter that no YAML 1.1/1.2 number can contain (e/E exponents, x/o/b
#: radix prefixes, a-f hex digits are all excluded), so the scalar cannot resolve to a number.
_NON_NUMERIC_LETTER: Final = re.compile(r"[g-np-wyzG-NP-WYZ]")
#: Words YAML 1.1 resolves to booleans or null (compared lower-cased: quoting a harmless
#: `nULL` costs nothing, missing a `Yes` breaks a manifest).
_RESERVED_WORDS: Final = frozenset({"y", "n", "yes", "no", "true", "false", "on", "off", "null"})
#: What `json.dumps(..., ensure_ascii=False)` leaves literal but YAML double-quoted scalars
#: may not hold: C0/C1 controls json does not escape (DEL, U+0080-U+009F, including NEL, a
#: YAML 1.1 line break), the 1.1 line/paragraph separators, the BOM, the non-characters
#: U+FFFE/U+FFFF and lone surrogates (not printable; they cannot even be encoded as UTF-8).
_NOT_LITERAL: Final = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]")
#: libyaml and PyYAML refuse an implicit key longer than 1024 characters (YAML 1.2 section
#: 7.4.2); longer rendered keys use the explicit `? key` form. Counted in UTF-8 bytes so the
#: limit holds whether a loader counts characters or bytes.
_MAX_IMPLICIT_KEY: Final = 1000
#: Memo bounds. When a memo outgrows its bound it is cleared (dropping its references), which
#: keeps memory flat for generator inputs at the cost of re-rendering a few shared objects.
_MAX_SCALARS: Final = 1 << 16
_MAX_CONTAINERS: Final = 1 << 16
#: Containers with fewer entries are re-rendered rather than memoised: the bookkeeping costs
#: about what rendering one or two lines does, and a big shared subtree below a small
#: wrapper is memoised in its own right (measured with bench/emit_yaml.py: ~4% faster).
_MIN_MEMO_ENTRIES: Final = 3
#: `write_all` hands `write` one chunk once this many pieces (lines, or cached containers)
#: have piled up: ~150 KB per call in bench/emit_yaml.py, big enough to amortise the call,
#: small enough that a cluster's text is never held twice in memory.
_CHUNK_PIECES: Final = 4096


def dump(obj: Mapping[str, Any]) -> str:
    """One document, without a leading `---`, ending with a newline."""
    out: list[str] = []
    _Emitter(out).document(obj)
    return "".join(out)


def dump_all(objs: Iterable[Mapping[str, Any]]) -> str:
    """Several documents, each opened by a `---` line; `""` for no documents."""
    out: list[str] = []
    emit = _Emitter(out).document
    for obj in objs:
        out.append("---\n")
        emit(obj)
    return "".join(out)


def write_all(objs: Iterable[Mapping[str, Any]], write: Callable[[str], object]) -> int:
    """Stream `dump_all(objs)` to `write` in chunks; returns the number of characters written.

    `write` is typically a text file's `write`; the text is exactly `dump_all(objs)`, so a
    file written here and a golden rendered in memory agree byte for byte.
    """
    out: list[str] = []
    emit = _Emitter(out).document
    written = 0
    for obj in objs:
        out.append("---\n")
        emit(obj)
        if len(out) >= _CHUNK_PIECES:
            chunk = "".join(out)
            out.clear()
            write(chunk)
            written += len(chunk)
    if out:
        chunk = "".join(out)
        write(chunk)
        written += len(chunk)
    return written


def _is_plain(s: str) -> bool:
    """Whether `s` can be written unquoted and reads back as the same string everywhere."""
    if _PLAIN_WORD.fullmatch(s):
        return s.lower() not in _RESERVED_WORDS
    return _PLAIN_DIGIT.fullmatch(s) is not None and _NON_NUMERIC_LETTER.search(s) is not None


def _quote(s: str) -> str:
    """`s` as a YAML double-quoted scalar (JSON string syntax is a subset of it)."""
    quoted = json.dumps(s, ensure_ascii=False)
    if not quoted.isascii() or "\x7f" in quoted:
        quoted = _NOT_LITERAL.sub(lambda m: f"\\u{ord(m.group()):04x}", quoted)
    return quoted


def _render_str(s: str) -> str:
    return s if _is_plain(s) else _quote(s)


def _render_float(f: float) -> str:
    if f != f:
        return ".nan"
    if f in (float("inf"), float("-inf")):
        return ".inf" if f > 0 else "-.inf"
    text = float.__repr__(f)
    # repr gives `1e+20`; YAML 1.1 (PyYAML) only reads a float with a '.' in the mantissa.
    if "." not in text:
        text = text.replace("e", ".0e")
    return text


class _Rendered:
    """A container's cached text at one position; `obj` pins the id for the whole call."""

    __slots__ = ("first", "obj", "pad", "text")

    def __init__(self, obj: object, pad: str, first: str, text: str) -> None:
        self.obj = obj
        self.pad = pad
        self.first = first
        self.text = text

    def reprefixed(self, first: str) -> str:
        """The text with another first-line prefix (same container, now a list item)."""
        return first + self.text[len(self.first) :]


class _Emitter:
    """Appends the text of documents to `pieces`; the memos live as long as the emitter.

    Containers are written at a position given by two prefixes: `pad` starts every line of
    the container, `first` replaces it on the first line (a mapping or list that is itself a
    list item opens on its parent's dash line, so there `first` ends in `- `).
    """

    def __init__(self, pieces: list[str]) -> None:
        # The caller may empty `pieces` between documents (`write_all`), never inside one:
        # the container memo slices it from where a container started.
        self._pieces = pieces
        self._scalars: dict[str, str] = {}
        self._keys: dict[str, str] = {}
        self._containers: dict[int, object] = {}

    def document(self, obj: Mapping[str, Any]) -> None:
        if not isinstance(obj, Mapping):
            raise TypeError(f"a document must be a mapping, not {type(obj).__name__}")
        if obj:
            self._mapping(obj, "", "")
        else:
            self._pieces.append("{}\n")

    # -- scalars -------------------------------------------------------------------------

    def _str(self, s: str) -> str:
        r = self._scalars.get(s)
        if r is None:
            r = _render_str(str.__str__(s))
            if len(self._scalars) >= _MAX_SCALARS:
                self._scalars.clear()
            self._scalars[s] = r
        return r

    def _key(self, k: object) -> str | None:
        """The rendered key, or None when it is too long for an implicit key."""
        if not isinstance(k, str):
            raise TypeError(f"mapping keys must be str, not {type(k).__name__}: {k!r}")
        r = _render_str(str.__str__(k))
        if len(r) > _MAX_IMPLICIT_KEY // 4 and len(r.encode()) > _MAX_IMPLICIT_KEY:
            return None
        if len(self._keys) >= _MAX_SCALARS:
            self._keys.clear()
        self._keys[k] = r
        return r

    def _scalar(self, v: object) -> str | None:
        """Rendered form of a scalar, or None if `v` is a container."""
        if isinstance(v, str):
            return self._str(v)
        if v is None:
            return "null"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return int.__repr__(v)  # not str(): an IntEnum would print its name
        if isinstance(v, float):
            return _render_float(v)
        if isinstance(v, Mapping):
            return None if v else "{}"
        if isinstance(v, Sequence) and not isinstance(v, bytes | bytearray):
            return None if v else "[]"
        raise TypeError(f"cannot render {type(v).__name__} as YAML: {v!r}")

    # -- containers ----------------------------------------------------------------------

    def _mapping(self, d: Mapping[str, Any], pad: str, first: str) -> None:
        pieces = self._pieces
        containers = self._containers
        entry = containers.get(id(d))
        if type(entry) is _Rendered and entry.pad == pad:
            pieces.append(entry.text if entry.first == first else entry.reprefixed(first))
            return
        start = len(pieces)
        append = pieces.append
        keys = self._keys
        scalars = self._scalars
        inner = pad + "  "
        lead = first
        for k in sorted(d):
            v = d[k]
            rk = keys.get(k)
            if rk is None:
                rk = self._key(k)
                if rk is None:
                    self._explicit_entry(k, v, pad, lead)
                    lead = pad
                    continue
            t = type(v)
            if t is str:
                rv = scalars.get(v)
                if rv is None:
                    rv = self._str(v)
                append(f"{lead}{rk}: {rv}\n")
            elif t is dict:
                if v:
                    append(f"{lead}{rk}:\n")
                    self._mapping(v, inner, inner)
                else:
                    append(f"{lead}{rk}: {{}}\n")
            elif t is list:
                if v:
                    append(f"{lead}{rk}:\n")
                    self._sequence(v, pad, pad)
                else:
                    append(f"{lead}{rk}: []\n")
            elif t is int:
                append(f"{lead}{rk}: {v}\n")
            else:
                rv = self._scalar(v)
                if rv is not None:
                    append(f"{lead}{rk}: {rv}\n")
                else:
                    append(f"{lead}{rk}:\n")
                    if isinstance(v, Mapping):
                        self._mapping(v, inner, inner)
                    else:
                        self._sequence(v, pad, pad)
            lead = pad
        # Remember every container once; keep the text of those seen a second time.
        if entry is None:
            if len(d) < _MIN_MEMO_ENTRIES:
                return
            if len(containers) >= _MAX_CONTAINERS:
                containers.clear()
            containers[id(d)] = d
        elif entry is d:
            containers[id(d)] = _Rendered(d, pad, first, "".join(pieces[start:]))

    def _explicit_entry(self, k: str, v: Any, pad: str, lead: str) -> None:
        """A `? key` / `: value` pair, for keys too long to be implicit (rare, not memoised)."""
        self._pieces.append(f"{lead}? {_render_str(k)}\n")
        rv = self._scalar(v)
        if rv is not None:
            self._pieces.append(f"{pad}: {rv}\n")
        else:
            self._pieces.append(f"{pad}:\n")
            if isinstance(v, Mapping):
                self._mapping(v, pad + "  ", pad + "  ")
            else:
                self._sequence(v, pad, pad)

    def _sequence(self, items: Sequence[Any], pad: str, first: str) -> None:
        pieces = self._pieces
        containers = self._containers
        entry = containers.get(id(items))
        if type(entry) is _Rendered and entry.pad == pad:
            pieces.append(entry.text if entry.first == first else entry.reprefixed(first))
            return
        start = len(pieces)
        append = pieces.append
        scalars = self._scalars
        inner = pad + "  "
        lead = first
        for v in items:
            t = type(v)
            if t is str:
                rv = scalars.get(v)
                if rv is None:
                    rv = self._str(v)
                append(f"{lead}- {rv}\n")
            elif t is dict:
                if v:
                    self._mapping(v, inner, lead + "- ")
                else:
                    append(f"{lead}- {{}}\n")
            else:
                rv = self._scalar(v)
                if rv is not None:
                    append(f"{lead}- {rv}\n")
                elif isinstance(v, Mapping):
                    self._mapping(v, inner, lead + "- ")
                else:
                    self._sequence(v, inner, lead + "- ")
            lead = pad
        # Remember every container once; keep the text of those seen a second time.
        if entry is None:
            if len(items) < _MIN_MEMO_ENTRIES:
                return
            if len(containers) >= _MAX_CONTAINERS:
                containers.clear()
            containers[id(items)] = items
        elif entry is items:
            containers[id(items)] = _Rendered(items, pad, first, "".join(pieces[start:]))

"""Reading a config file into plain data plus a map from key paths to (line, column).

The limits on hostile input (size, nesting, aliases, digits) are in guards.py.

No numpy here. YAML is read as YAML 1.2 (so ``eps: 1e-5`` is a number, ``yes`` is a string),
with duplicate keys as errors and no Python tags; TOML with the standard library's parser.
Every failure is a SpecError located in the file.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SpecError, quote, shorten
from .guards import MAX_BYTES, MAX_DEPTH, MAX_NODES, check_depth, guard_nesting, guard_numbers

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

KeyPath = tuple  # of str (mapping keys) and int (list indices)


YAML_SUFFIXES = (".yaml", ".yml")
TOML_SUFFIXES = (".toml",)


@dataclass
class Document:
    """A parsed config: plain data (dict/list/str/int/float/bool/None) and where each key stands."""

    path: str
    data: Any
    fmt: str
    positions: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)

    def locate(self, keypath: KeyPath) -> tuple[int | None, int | None]:
        """Line and column (1-based) of a key path, or of its nearest located ancestor."""
        keypath = tuple(keypath)
        while keypath:
            if keypath in self.positions:
                return self.positions[keypath]
            keypath = keypath[:-1]
        return None, None

    def error(self, message: str, keypath: KeyPath = ()) -> SpecError:
        line, col = self.locate(keypath)
        return SpecError(message, file=self.path, line=line, col=col,
                         key=format_keypath(keypath) or None)


def format_keypath(keypath: KeyPath) -> str:
    out = ""
    for part in keypath:
        part = part if isinstance(part, int) else shorten(str(part))   # a key may be huge
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def load_document(path: str | Path, display: str | None = None) -> Document:
    """Read and parse one config file (format from its suffix)."""
    p = Path(path)
    name = display or str(path)
    from ..files import FileRefused, read_bounded

    try:
        raw = read_bounded(p, MAX_BYTES, "config file")
    except FileRefused as exc:
        raise SpecError(str(exc), file=name) from None
    fmt = "toml" if p.suffix.lower() in TOML_SUFFIXES else "yaml"
    return parse_bytes(raw, fmt, name)


def parse_bytes(raw: bytes, fmt: str, path: str = "<config>") -> Document:
    if len(raw) > MAX_BYTES:
        raise SpecError(f"file is {len(raw)} bytes; a config may be at most {MAX_BYTES} bytes", file=path)
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise SpecError("the file is UTF-16 text; save it as UTF-8", file=path)
    if b"\x00" in raw:
        raise SpecError("binary data (NUL bytes), not a text config file: a spec is YAML or TOML "
                        "text saved as UTF-8", file=path)
    try:
        text = raw.decode("utf-8-sig")  # a UTF-8 byte-order mark is accepted
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError(f"not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save the file as UTF-8",
                        file=path, line=line, col=col) from None
    return parse_text(text, fmt, path)


def parse_text(text: str, fmt: str, path: str = "<config>") -> Document:
    text = text.replace("\r\n", "\n")
    if not text.strip() or all(not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()):
        raise SpecError("the file is empty: a spec needs at least `input:` and `layers:`", file=path)
    guard_nesting(text, fmt, path)
    guard_numbers(text, path)
    doc = _parse_toml(text, path) if fmt == "toml" else _parse_yaml(text, path)
    if not isinstance(doc.data, dict):
        kind = ("a list" if isinstance(doc.data, list) else "an empty document (null)"
                if doc.data is None else f"a single value ({quote(doc.data)})")
        raise SpecError(f"the top level must be a mapping of keys (name, input, layers, ...), not {kind}",
                        file=path, line=1, col=1)
    return doc


# -- YAML -------------------------------------------------------------------------------------------

#: What the reader's terse messages usually mean, appended to them.
_YAML_HINTS = [
    ("expected <block end>", ": indentation is inconsistent; keys of one mapping start in the same column"),
    ("mapping values are not allowed", ": a value contains `: `; put quotes around it"),
    ("end of stream", ": a quote, `[` or `{` opened above is never closed"),
    ("expected ',' or '}'", ": a `{` is not closed with `}` before this point"),
    ("expected ',' or ']'", ": a `[` is not closed with `]` before this point"),
    ("undefined alias", ": an `*alias` needs an `&anchor` defined earlier in the file"),
]
_TOML_HINTS = [
    ("Invalid value", ": after `=` put a value: a \"string\", a number, true/false or [a, list]"),
    ("Illegal character '\\n'", ": a string is not closed with a quote before the end of the line"),
    ("Unclosed array", ": a `[` is not closed with `]`"),
    ("Unclosed inline table", ": a `{` is not closed with `}`"),
]


_KEY_LINE = re.compile(r"^(?P<lead>[ ]*(?:-[ ]+)*)(?P<key>[A-Za-z_][\w.-]*)[ ]*:(?:[ ]|$)")


def _deeper_key(text: str, mark) -> str | None:
    """A `key:` line indented deeper than the plain value above it: YAML reads the key as more of
    that value, and then stops at its colon. Said as the indentation it is, not as a quoting problem."""
    if mark is None:
        return None
    lines = text.splitlines()
    if not 0 <= mark.line < len(lines):
        return None
    here = _KEY_LINE.match(lines[mark.line])
    # the colon YAML stopped at is this line's first one, right after a key
    if here is None or lines[mark.line].find(":", here.end("key")) != mark.column:
        return None
    above = next((line for line in reversed(lines[:mark.line])
                  if line.strip() and not line.lstrip().startswith("#")), None)
    previous = _KEY_LINE.match(above) if above is not None else None
    if previous is None or len(previous["lead"]) >= len(here["lead"]):
        return None
    return (f": `{here['key']}:` is indented deeper (column {len(here['lead']) + 1}) than "
            f"`{previous['key']}:` above it (column {len(previous['lead']) + 1}), so YAML reads it "
            "as part of that value; keys of one mapping start in the same column")


def _parse_yaml(text: str, path: str) -> Document:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    try:
        tree = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        if "duplicate key" in problem:
            problem = problem.split(" with value")[0] + " (each key may appear once)"
        if "expected a single document" in problem or "but found another document" in (exc.problem or ""):
            problem = "more than one YAML document (---): put one network in each file"
        if "\\t" in problem or "'\\t'" in problem:
            problem = "tab character: YAML indentation must use spaces"
        indented = _deeper_key(text, mark) if "mapping values are not allowed" in problem else None
        problem += indented or next((hint for clue, hint in _YAML_HINTS if clue in problem), "")
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        raise SpecError(f"invalid YAML: {problem}", file=path, line=line, col=col) from None
    except RecursionError:
        raise SpecError(f"nested more than {MAX_DEPTH} levels deep: a spec needs only a few levels",
                        file=path) from None
    except (YAMLError, ValueError, OverflowError) as exc:
        # a scalar the reader cannot convert (its message names no position)
        raise SpecError(f"invalid YAML: {exc}", file=path) from None
    except TypeError:
        # a mapping or list used as a key (`? {a: 1}`, `[a, b]: 1`) cannot be hashed
        m = re.search(r"^[ -]*\?(?=[ \t]|$)", text, re.M)
        line = text.count("\n", 0, m.start()) + 1 if m else None
        col = len(m.group(0)) if m else None
        raise SpecError("invalid YAML: a mapping or list used as a key; keys must be plain names "
                        "such as `input:`", file=path, line=line, col=col) from None
    doc = Document(path=path, data=None, fmt="yaml")
    budget = [MAX_NODES]
    doc.data = _plain(tree, (), doc, budget, {})
    return doc


def _plain(node: Any, keypath: KeyPath, doc: Document, budget: list[int],
           seen: dict[int, tuple[Any, int]]) -> Any:
    """Convert ruamel's round-trip nodes to plain Python, recording positions; bounded in size.

    An alias is the same node object again: it is converted once and then charged its expanded
    size without walking it, so a "billion laughs" file is refused after a few thousand steps.
    """
    from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar

    known = seen.get(id(node)) if isinstance(node, (CommentedMap, CommentedSeq)) else None
    budget[0] -= known[1] if known else 1
    if budget[0] < 0:
        raise doc.error(f"the document expands to more than {MAX_NODES:,} values (YAML aliases "
                        "that multiply?): refused; write the spec out plainly", keypath)
    if known:
        return known[0]
    start = budget[0] + 1
    if len(keypath) > MAX_DEPTH:
        raise doc.error(f"nested more than {MAX_DEPTH} levels deep", keypath)
    if isinstance(node, TaggedScalar) or (getattr(node, "tag", None) is not None
                                         and getattr(getattr(node, "tag", None), "value", None)
                                         and str(node.tag.value).startswith(("!", "tag:yaml.org,2002:python"))):
        tag = getattr(getattr(node, "tag", None), "value", "?")
        raise doc.error(f"YAML tag {tag} is not allowed: configs hold plain data only", keypath)
    if isinstance(node, CommentedMap):
        out = {}
        for key in node:
            if not isinstance(key, str):
                line, col = node.lc.key(key)
                raise SpecError(f"keys must be plain names such as `input:`, got {quote(key)}", file=doc.path,
                                line=line + 1, col=col + 1, key=format_keypath(keypath) or None)
            line, col = node.lc.key(key)
            doc.positions[keypath + (key,)] = (line + 1, col + 1)
            out[key] = _plain(node[key], keypath + (key,), doc, budget, seen)
        seen[id(node)] = (out, start - budget[0])
        return out
    if isinstance(node, CommentedSeq):
        out_list = []
        for i, item in enumerate(node):
            line, col = node.lc.item(i)
            doc.positions[keypath + (i,)] = (line + 1, col + 1)
            out_list.append(_plain(item, keypath + (i,), doc, budget, seen))
        seen[id(node)] = (out_list, start - budget[0])
        return out_list
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    # timestamps and other YAML scalars are not part of the schema; keep their text
    return str(node)


# -- TOML -------------------------------------------------------------------------------------------

_TOML_POS = re.compile(r"\(at line (\d+), column (\d+)\)")
_TABLE = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*=")


def _parse_toml(text: str, path: str) -> Document:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _TOML_POS.search(msg)
        line, col = (int(m.group(1)), int(m.group(2))) if m else (None, None)
        msg = _TOML_POS.sub("", msg).strip()
        if "Cannot overwrite a value" in msg or "Cannot declare" in msg:
            msg += " (a key or table defined twice?)"
        msg += next((hint for clue, hint in _TOML_HINTS if clue in msg), "")
        raise SpecError(f"invalid TOML: {msg}", file=path, line=line, col=col) from None
    except RecursionError:
        raise SpecError(f"nested more than {MAX_DEPTH} levels deep: a spec needs only a few levels",
                        file=path) from None
    except (ValueError, OverflowError) as exc:
        raise SpecError(f"invalid TOML: {exc}", file=path) from None
    doc = Document(path=path, data=data, fmt="toml")
    _toml_positions(text, doc)
    try:
        check_depth(data, 0, doc.path)
    except RecursionError:
        raise SpecError(f"nested more than {MAX_DEPTH} levels deep", file=path) from None
    return doc


def _toml_positions(text: str, doc: Document) -> None:
    """Best-effort line numbers for tables, array-of-tables entries and their simple keys.

    tomllib keeps no positions; this scan covers the usual layout of a spec ([input],
    [[layers]], key = value). Anything it misses falls back to the dotted key path alone.
    """
    table: KeyPath = ()
    counts: dict[KeyPath, int] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        m = _TABLE.match(line)
        if m:
            parts = tuple(p.strip().strip("\"'") for p in m.group(2).split("."))
            if m.group(1) == "[[":
                i = counts.get(parts, 0)
                counts[parts] = i + 1
                table = parts + (i,)
            else:
                table = parts
            doc.positions.setdefault(table, (lineno, 1))
            continue
        k = _KEY.match(line)
        if k:
            doc.positions.setdefault(table + (k.group(1),), (lineno, k.start(1) + 1))

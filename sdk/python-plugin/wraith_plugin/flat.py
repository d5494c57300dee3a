"""The flat batch layout that crosses the plugin boundary (``wit/types.wit``).

This module is the Python twin of the ``wraith-event`` crate's ``flat`` and
``path`` modules: it encodes JSON events into leaves the way the gateway does,
and applies a plugin's edits to them the way the gateway does. The native test
harness (:mod:`wraith_plugin.testing`) runs plugins through it, so a test in
plain CPython sees what the gateway would store.

JSON here is read into a small tree that keeps what the gateway keeps: object
keys in document order and numbers as the gateway writes them back
(:class:`Number`). Nothing in a running component uses this tree; a plugin
only ever sees leaves.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any, Iterator, List, Optional, Tuple, Union

LEAF_WORDS = 5
EVENT_WORDS = 2
EDIT_WORDS = 7

# Value kinds, as numbered in wit/types.wit.
NULL, FALSE, TRUE, NUMBER, STRING, JSON = 0, 1, 2, 3, 4, 5
# Edit operations.
OP_SET, OP_REMOVE = 0, 1

_U64_END = 1 << 64
_I64_MIN = -(1 << 63)
_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_INDEX = re.compile(r"\+?[0-9]+")
_JSON_SPACE = " \t\n\r"


class FlatError(ValueError):
    """A malformed edit, path or value (the gateway refuses the whole answer)."""


class PathError(FlatError):
    """A path that does not parse."""


# --- numbers ---------------------------------------------------------------


def _format_f64(value: float) -> str:
    """Write a float the way the gateway does (serde_json: shortest
    round-trip digits, fixed notation for exponents -5 to 15, ``1.0``,
    ``0.001``, ``1e-7``, ``1.5e+300``)."""
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign, digits, exp = Decimal(repr(value)).as_tuple()
    ds = "".join(map(str, digits)).rstrip("0")
    exp += len(digits) - len(ds)
    length = len(ds)
    kk = length + exp  # 10^(kk-1) <= |value| < 10^kk
    neg = "-" if sign else ""
    if 0 <= exp and kk <= 16:
        return f"{neg}{ds}{'0' * exp}.0"
    if 0 < kk <= 16:
        return f"{neg}{ds[:kk]}.{ds[kk:]}"
    if -5 < kk <= 0:
        return f"{neg}0.{'0' * -kk}{ds}"
    exponent = f"e{'+' if kk > 0 else ''}{kk - 1}"
    if length == 1:
        return f"{neg}{ds}{exponent}"
    return f"{neg}{ds[0]}.{ds[1:]}{exponent}"


class Number:
    """A JSON number as the gateway keeps it: integers that fit 64 bits exactly
    as written, every other number as the shortest text of its double."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = canonical_number(text)

    def value(self) -> Union[int, float]:
        return int(self.text) if _INTEGER.fullmatch(self.text) else float(self.text)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Number) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"Number({self.text!r})"


def canonical_number(text: str) -> str:
    """The text the gateway stores for the JSON number ``text``."""
    t = text.strip(_JSON_SPACE)
    if not _NUMBER.fullmatch(t):
        raise FlatError(f"{text!r} is not a JSON number")
    if _INTEGER.fullmatch(t):
        v = int(t)
        if t.startswith("-"):
            if v != 0 and v >= _I64_MIN:
                return str(v)
        elif v < _U64_END:
            return str(v)
    f = float(t)
    if math.isinf(f):
        raise FlatError(f"number {text} is out of range")
    return _format_f64(f)


def number_text(value: Union[int, float]) -> Optional[str]:
    """The text a plugin sends for a Python number (``None`` for NaN and
    infinities, which JSON cannot hold)."""
    if isinstance(value, bool):
        raise TypeError("a bool is not a number")
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return None
    return repr(float(value))


# --- JSON trees ------------------------------------------------------------


def _no_constant(name: str) -> Any:
    raise FlatError(f"{name} is not JSON")


def loads(text: Union[str, bytes]) -> Any:
    """Parse JSON text into a tree: dicts in document order, :class:`Number`
    for numbers."""
    try:
        return json.loads(
            text,
            parse_int=Number,
            parse_float=Number,
            parse_constant=_no_constant,
        )
    except json.JSONDecodeError as e:
        raise FlatError(f"not valid JSON: {e}") from None


def from_python(value: Any) -> Any:
    """Turn plain Python values (as ``json.loads`` gives them) into a tree."""
    if isinstance(value, Number) or value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        text = number_text(value)
        if text is None:
            raise FlatError(f"{value!r} is not a JSON number")
        return Number(text)
    if isinstance(value, dict):
        return {str(k): from_python(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [from_python(v) for v in value]
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def to_python(tree: Any) -> Any:
    """A tree as plain Python values (numbers as ``int`` or ``float``)."""
    if isinstance(tree, Number):
        return tree.value()
    if isinstance(tree, dict):
        return {k: to_python(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [to_python(v) for v in tree]
    return tree


def dumps(tree: Any) -> str:
    """Compact JSON text of a tree, keys in order, numbers as kept."""
    if isinstance(tree, Number):
        return tree.text
    if isinstance(tree, dict):
        return "{" + ",".join(f"{_dump_str(k)}:{dumps(v)}" for k, v in tree.items()) + "}"
    if isinstance(tree, list):
        return "[" + ",".join(dumps(v) for v in tree) + "]"
    if tree is None:
        return "null"
    if tree is True:
        return "true"
    if tree is False:
        return "false"
    if isinstance(tree, str):
        return _dump_str(tree)
    raise TypeError(f"{type(tree).__name__} is not a JSON value")


def _dump_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


# --- paths -----------------------------------------------------------------

Segment = Union[str, int]


def escape_key(key: str) -> str:
    """A key as written in a path: ``.``, ``[``, ``]`` and ``\\`` escaped."""
    if not any(c in key for c in ".[]\\"):
        return key
    return "".join("\\" + c if c in ".[]\\" else c for c in key)


def join(segments: List[Segment]) -> str:
    """Render segments as a path (``context.os``, ``tags[0]``)."""
    out = ""
    for seg in segments:
        if isinstance(seg, int):
            out += f"[{seg}]"
        else:
            out += ("." if out else "") + escape_key(seg)
    return out


def parse_path(path: str) -> List[Segment]:
    """Parse a path into keys (``str``) and indices (``int``)."""
    if not path:
        raise PathError("path is empty")
    out: List[Segment] = []
    i, n = 0, len(path)
    expect_key = True
    while i < n:
        c = path[i]
        if c == "[":
            end = path.find("]", i + 1)
            digits = path[i + 1 : end] if end >= 0 else ""
            if end < 0 or not _INDEX.fullmatch(digits) or int(digits) >= _U64_END:
                raise PathError(f"path {path!r} has a bad array index at byte {_byte(path, i)}")
            out.append(int(digits))
            i = end + 1
            expect_key = False
        elif c == ".":
            if expect_key:
                raise PathError(f"path {path!r} has an empty key at byte {_byte(path, i)}")
            i += 1
            expect_key = True
            if i == n:
                raise PathError(f"path {path!r} has an empty key at byte {_byte(path, i)}")
        else:
            key = []
            start = i
            while i < n and path[i] not in ".[":
                if path[i] == "\\":
                    i += 1
                    if i == n:
                        raise PathError(f"path {path!r} ends inside an escape")
                key.append(path[i])
                i += 1
            if not key:
                raise PathError(f"path {path!r} has an empty key at byte {_byte(path, start)}")
            out.append("".join(key))
            expect_key = False
    return out


def _byte(path: str, i: int) -> int:
    return len(path[:i].encode())


def path_set(root: Any, segments: List[Segment], new: Any) -> Any:
    """Set the value at a path, creating objects and arrays along the way; a
    scalar in the way is replaced by the container the path needs; arrays are
    padded with nulls. Returns the new root (a root replaced by an empty path)."""
    if not segments:
        return new
    holder = [root]
    cur_get, cur_set = (lambda: holder[0]), (lambda v: holder.__setitem__(0, v))
    for n, seg in enumerate(segments[:-1]):
        next_is_index = isinstance(segments[n + 1], int)
        cur_get, cur_set = _child(cur_get, cur_set, seg, next_is_index)
    last = segments[-1]
    cur = cur_get()
    if isinstance(last, int):
        if not isinstance(cur, list):
            cur = []
            cur_set(cur)
        if last < len(cur):
            cur[last] = new
        else:
            cur.extend([None] * (last - len(cur)))
            cur.append(new)
    else:
        if not isinstance(cur, dict):
            cur = {}
            cur_set(cur)
        cur[last] = new
    return holder[0]


def _child(get, set_, seg: Segment, next_is_index: bool):
    cur = get()
    if isinstance(seg, int):
        if not isinstance(cur, list):
            cur = []
            set_(cur)
        if seg >= len(cur):
            cur.extend([None] * (seg - len(cur)))
            cur.append([] if next_is_index else {})
        arr = cur
        return (lambda: arr[seg]), (lambda v: arr.__setitem__(seg, v))
    if not isinstance(cur, dict):
        cur = {}
        set_(cur)
    obj = cur
    if seg not in obj:
        obj[seg] = [] if next_is_index else {}
    return (lambda: obj[seg]), (lambda v: obj.__setitem__(seg, v))


def path_remove(root: Any, segments: List[Segment]) -> None:
    """Remove the value at a path if it is there."""
    if not segments:
        return
    cur = root
    for seg in segments[:-1]:
        if isinstance(seg, int) and isinstance(cur, list) and seg < len(cur):
            cur = cur[seg]
        elif isinstance(seg, str) and isinstance(cur, dict) and seg in cur:
            cur = cur[seg]
        else:
            return
    last = segments[-1]
    if isinstance(last, int) and isinstance(cur, list) and last < len(cur):
        del cur[last]
    elif isinstance(last, str) and isinstance(cur, dict):
        cur.pop(last, None)


# --- encoding and applying -------------------------------------------------


class FlatBatch:
    """A batch in the flat layout: ``data``, ``leaves`` and ``events``."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.leaves: List[int] = []
        self.events: List[int] = []

    @classmethod
    def encode(cls, events: List[Any]) -> "FlatBatch":
        """Flatten events (trees) the way the gateway does."""
        b = cls()
        for e in events:
            first = len(b.leaves) // LEAF_WORDS
            b._push(e, "")
            b.events += [first, len(b.leaves) // LEAF_WORDS - first]
        return b

    def _push(self, v: Any, path: str) -> None:
        if isinstance(v, dict) and v:
            for k, item in v.items():
                self._push(item, (path + "." if path else "") + escape_key(k))
        elif isinstance(v, list) and v:
            for i, item in enumerate(v):
                self._push(item, f"{path}[{i}]")
        elif isinstance(v, dict):
            self._leaf(path, JSON, b"{}")
        elif isinstance(v, list):
            self._leaf(path, JSON, b"[]")
        elif v is None:
            self._leaf(path, NULL, b"")
        elif v is False:
            self._leaf(path, FALSE, b"")
        elif v is True:
            self._leaf(path, TRUE, b"")
        elif isinstance(v, Number):
            self._leaf(path, NUMBER, v.text.encode())
        elif isinstance(v, str):
            self._leaf(path, STRING, v.encode())
        else:
            raise TypeError(f"{type(v).__name__} is not a JSON value (use flat.from_python)")

    def _leaf(self, path: str, kind: int, value: bytes) -> None:
        p = path.encode()
        p_off = len(self.data)
        self.data += p
        v_off = len(self.data)
        self.data += value
        self.leaves += [p_off, len(p), kind, v_off, len(value)]


def decode_value(kind: int, text: str) -> Any:
    """A leaf or edit value as a tree (what the gateway stores for it)."""
    if kind == NULL:
        return None
    if kind == FALSE:
        return False
    if kind == TRUE:
        return True
    if kind == NUMBER:
        return Number(text)
    if kind == STRING:
        return text
    if kind == JSON:
        return loads(text)
    raise FlatError(f"unknown value kind {kind}")


def apply_edits(events: List[Any], edits: List[int], data: bytes) -> List[bool]:
    """Apply a plugin's edits to the events (trees) in place, as the gateway
    does: every edit is checked before any is applied, so a malformed answer
    leaves the events untouched. Returns, per event, whether it changed."""
    if len(edits) % EDIT_WORDS:
        raise FlatError(f"edit list length {len(edits)} is not a multiple of {EDIT_WORDS}")
    planned: List[Tuple[int, List[Segment], Any, bool]] = []
    for n in range(len(edits) // EDIT_WORDS):
        event, op, p_off, p_len, kind, v_off, v_len = edits[n * EDIT_WORDS : (n + 1) * EDIT_WORDS]
        if event >= len(events):
            raise FlatError(f"edit {n} names event {event}, but the batch has {len(events)} events")

        def slice_(off: int, length: int) -> bytes:
            if off + length > len(data):
                raise FlatError(f"edit {n} points outside its data ({off}+{length} > {len(data)})")
            return bytes(data[off : off + length])

        try:
            path = slice_(p_off, p_len).decode()
        except UnicodeDecodeError:
            raise FlatError(f"edit {n}: value is not valid UTF-8") from None
        try:
            segments = parse_path(path)
        except PathError as e:
            raise FlatError(f"edit {n}: {e}") from None
        if op == OP_SET:
            try:
                value = decode_value(kind, slice_(v_off, v_len).decode())
            except (UnicodeDecodeError, FlatError) as e:
                raise FlatError(f"edit {n}: {e}") from None
            planned.append((event, segments, value, True))
        elif op == OP_REMOVE:
            planned.append((event, segments, None, False))
        else:
            raise FlatError(f"edit {n} has unknown operation {op}")
    changed = [False] * len(events)
    for event, segments, value, is_set in planned:
        changed[event] = True
        if is_set:
            events[event] = path_set(events[event], segments, value)
        else:
            path_remove(events[event], segments)
    return changed


def iter_leaves(
    data: bytes, leaves: List[int], first: int, count: int
) -> Iterator[Tuple[str, int, str]]:
    """``(path, kind, text)`` of each leaf of one event."""
    for leaf in range(first, first + count):
        p_off, p_len, kind, v_off, v_len = leaves[leaf * LEAF_WORDS : leaf * LEAF_WORDS + LEAF_WORDS]
        yield (
            bytes(data[p_off : p_off + p_len]).decode(errors="replace"),
            kind,
            bytes(data[v_off : v_off + v_len]).decode(errors="replace"),
        )

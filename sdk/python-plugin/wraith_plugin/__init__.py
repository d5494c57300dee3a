"""Write plugins for the Wraith telemetry gateway in Python.

A plugin is a class with ``init(config)`` and ``process(event)``: built once
from the operator's config, it decides about each event of every batch — keep
it (possibly changed), drop it, reject it to the dead-letter queue, or route it
to a named destination::

    import re
    import wraith_plugin as wp

    EMAIL = re.compile(r"[\\w.+-]+@[\\w-]+\\.[\\w.]+")

    class Scrub(wp.Plugin):
        def init(self, config):
            self.mask = config.str("mask", default="[email]")

        def process(self, event):
            for path, text in event.strings():
                if EMAIL.search(text):
                    event.set(path, EMAIL.sub(self.mask, text))
                    wp.counter("emails_masked")
            return wp.keep()

    Plugin = wp.export(Scrub)

``componentize-py`` turns the module into a component (``Plugin`` is what it
exports); :class:`wraith_plugin.testing.Harness` runs the same class in plain
CPython on JSON events, through the same batch layout and edit application as
the gateway.

Paths are dotted (``context.os``, ``tags[0]``, ``frames[2].file``); a ``.``,
``[``, ``]`` or ``\\`` inside a key is escaped with a backslash (``a\\.b``).
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterator, List, Optional, Tuple

from . import flat

__all__ = [
    "Config",
    "ConfigError",
    "Event",
    "Plugin",
    "Verdict",
    "counter",
    "drop",
    "export",
    "keep",
    "log",
    "reject",
    "route",
]

_MISSING = object()


# --- verdicts ----------------------------------------------------------------


class Verdict:
    """What a plugin decided about one event: ``keep``, ``drop``, ``reject``
    or ``route``, with the reason or destination."""

    __slots__ = ("kind", "value")

    def __init__(self, kind: str, value: Optional[str] = None) -> None:
        if kind not in ("keep", "drop", "reject", "route"):
            raise ValueError(f"unknown verdict {kind!r}")
        if kind != "keep" and not isinstance(value, str):
            raise TypeError(f"{kind} needs a string")
        self.kind = kind
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Verdict) and (other.kind, other.value) == (self.kind, self.value)

    def __hash__(self) -> int:
        return hash((self.kind, self.value))

    def __repr__(self) -> str:
        return f"{self.kind}()" if self.kind == "keep" else f"{self.kind}({self.value!r})"


_KEEP = Verdict("keep")


def keep() -> Verdict:
    """Keep the event, with any edits."""
    return _KEEP


def drop(reason: str) -> Verdict:
    """Drop the event on purpose (sampling, filtering); counted, not stored.
    Edits made to it are discarded."""
    return Verdict("drop", reason)


def reject(reason: str) -> Verdict:
    """The event is invalid: it goes to the dead-letter queue with this reason.
    Edits made to it are discarded."""
    return Verdict("reject", reason)


def route(destination: str) -> Verdict:
    """Keep the event (with its edits) and send it to this destination
    (``[a-z0-9_-]``, at most 64 bytes) instead of the default one."""
    return Verdict("route", destination)


# --- config ------------------------------------------------------------------


class ConfigError(Exception):
    """Why a plugin refused its config: the offending field (dotted path, empty
    for the config as a whole) and what is wrong with it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


_TYPES = {
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    list: "a list",
    dict: "a table",
}


class Config:
    """The operator's config for a plugin (a JSON object).

    Read every setting in ``init`` with the typed getters; each names the
    field in its error. Once ``init`` returns, a key that was never read is
    refused as an unknown field (a typo in ``plugins.toml`` is caught at load),
    unless the plugin called :meth:`allow_unknown`.
    """

    def __init__(self, value: Any, prefix: str = "") -> None:
        if not isinstance(value, dict):
            raise ConfigError(prefix.rstrip("."), f"expected a table, got {_describe(value)}")
        self._value = value
        self._prefix = prefix
        self._read: set = set()
        self._children: List["Config"] = []
        self._allow_unknown = False

    @property
    def raw(self) -> Dict[str, Any]:
        """The config as parsed JSON."""
        return self._value

    def _field(self, key: str) -> str:
        return self._prefix + flat.escape_key(key)

    def get(self, key: str, default: Any = None) -> Any:
        """The raw value at ``key``, or ``default``."""
        self._read.add(key)
        return self._value.get(key, default)

    def _typed(self, key: str, types: tuple, default: Any) -> Any:
        self._read.add(key)
        if key not in self._value:
            if default is _MISSING:
                raise ConfigError(self._field(key), f"missing field `{key}`")
            return default
        v = self._value[key]
        if isinstance(v, bool) and bool not in types or not isinstance(v, types):
            raise ConfigError(self._field(key), f"expected {_TYPES[types[0]]}, got {_describe(v)}")
        return v

    def str(self, key: str, default: Any = _MISSING) -> Any:
        """A string setting (required unless ``default`` is given)."""
        return self._typed(key, (str,), default)

    def path(self, key: str, default: Any = _MISSING) -> Any:
        """A string setting that must be an event path (``context.os``)."""
        v = self._typed(key, (str,), default)
        if isinstance(v, str):
            try:
                flat.parse_path(v)
            except flat.PathError as e:
                raise ConfigError(self._field(key), f"not a path: {e}") from None
        return v

    def bool(self, key: str, default: Any = _MISSING) -> Any:
        """A boolean setting."""
        return self._typed(key, (bool,), default)

    def int(self, key: str, default: Any = _MISSING, *, min: Optional[int] = None, max: Optional[int] = None) -> Any:
        """An integer setting, optionally bounded."""
        v = self._typed(key, (int,), default)
        if isinstance(v, int) and not isinstance(v, bool):
            if min is not None and v < min or max is not None and v > max:
                bounds = f"between {min} and {max}" if min is not None and max is not None else (
                    f"at least {min}" if min is not None else f"at most {max}"
                )
                raise ConfigError(self._field(key), f"must be {bounds}, got {v}")
        return v

    def number(self, key: str, default: Any = _MISSING) -> Any:
        """A number setting (integer or not)."""
        return self._typed(key, (float, int), default)

    def str_list(self, key: str, default: Any = _MISSING) -> Any:
        """A list of strings."""
        v = self._typed(key, (list,), default)
        if key in self._value:
            for i, item in enumerate(v):
                if not isinstance(item, str):
                    raise ConfigError(f"{self._field(key)}[{i}]", f"expected a string, got {_describe(item)}")
        return v

    def section(self, key: str, required: bool = False) -> "Config":
        """A nested table, as a :class:`Config` whose errors name
        ``key.field`` (an empty table when absent and not required)."""
        self._read.add(key)
        if key not in self._value and required:
            raise ConfigError(self._field(key), f"missing field `{key}`")
        child = Config(self._value.get(key, {}), self._field(key) + ".")
        self._children.append(child)
        return child

    def allow_unknown(self) -> None:
        """Accept keys the plugin did not read."""
        self._allow_unknown = True

    def check_unknown(self) -> None:
        """Refuse the first key that was never read (the SDK calls this after
        ``init``)."""
        if not self._allow_unknown:
            for key in self._value:
                if key not in self._read:
                    known = ", ".join(f"`{k}`" for k in sorted(self._read))
                    hint = f", expected one of {known}" if known else ", this plugin takes no settings"
                    raise ConfigError(self._field(key), f"unknown field `{key}`{hint}")
        for child in self._children:
            child.check_unknown()


def _describe(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return f"boolean `{json.dumps(v)}`"
    if isinstance(v, (int, float)):
        return f"number `{v}`"
    if isinstance(v, str):
        return f"string {json.dumps(v)}"
    if isinstance(v, list):
        return "a list"
    return "a table"


# --- events ------------------------------------------------------------------


class Event:
    """One event of the batch being processed.

    Reads see the event as it arrived plus this plugin's own edits to the
    same path; edits are recorded and applied by the gateway after the plugin
    answers (and discarded if the verdict drops or rejects the event).
    """

    __slots__ = ("index", "_leaves", "_edits", "_first_edit")

    def __init__(self, index: int, leaves: List[Tuple[str, int, str]], edits: "_Edits") -> None:
        self.index = index
        self._leaves = leaves
        self._edits = edits
        self._first_edit = len(edits.words)

    def _mine(self, path: str) -> Any:
        e = self._edits
        for n in range(len(e.words) - flat.EDIT_WORDS, self._first_edit - 1, -flat.EDIT_WORDS):
            w = e.words[n : n + flat.EDIT_WORDS]
            if e.data[w[2] : w[2] + w[3]].decode() == path:
                if w[1] == flat.OP_REMOVE:
                    return None
                return (w[4], e.data[w[5] : w[5] + w[6]].decode())
        return _MISSING

    def _find(self, path: str) -> Optional[Tuple[int, str]]:
        mine = self._mine(path)
        if mine is not _MISSING:
            return mine
        for p, kind, text in self._leaves:
            if p == path:
                return (kind, text)
        return None

    def get(self, path: str, default: Any = None) -> Any:
        """The value of the leaf at ``path`` (a string, number, bool, ``None``
        for null, ``{}``/``[]`` for an empty container), or ``default``. Only
        leaves have values: ``get("context")`` of a non-empty object is
        ``default``."""
        found = self._find(path)
        return default if found is None else _value(*found)

    def has(self, path: str) -> bool:
        """Whether there is a leaf at ``path`` (``null`` included)."""
        return self._find(path) is not None

    def leaves(self) -> Iterator[Tuple[str, Any]]:
        """``(path, value)`` of every leaf as the event arrived, in document
        order (this plugin's edits are not reflected)."""
        for p, kind, text in self._leaves:
            yield p, _value(kind, text)

    def strings(self) -> Iterator[Tuple[str, str]]:
        """``(path, text)`` of every string leaf as the event arrived: what a
        scrubber walks."""
        for p, kind, text in self._leaves:
            if kind == flat.STRING:
                yield p, text

    def set(self, path: str, value: Any) -> None:
        """Set ``path`` to ``value`` (str, int, float, bool, ``None``, or a
        list/dict), creating objects along the way. NaN and infinities become
        null."""
        flat.parse_path(path)
        if value is None:
            kind, text = flat.NULL, ""
        elif value is True:
            kind, text = flat.TRUE, ""
        elif value is False:
            kind, text = flat.FALSE, ""
        elif isinstance(value, str):
            kind, text = flat.STRING, value
        elif isinstance(value, (int, float)):
            t = flat.number_text(value)
            kind, text = (flat.NULL, "") if t is None else (flat.NUMBER, t)
        elif isinstance(value, (dict, list, tuple)):
            kind, text = flat.JSON, json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        else:
            raise TypeError(f"cannot set {type(value).__name__}: use str, int, float, bool, None, list or dict")
        self._edits.push(self.index, flat.OP_SET, path, kind, text)

    def remove(self, path: str) -> None:
        """Remove ``path`` and everything under it."""
        flat.parse_path(path)
        self._edits.push(self.index, flat.OP_REMOVE, path, flat.NULL, "")


def _value(kind: int, text: str) -> Any:
    if kind == flat.NUMBER:
        return int(text) if flat._INTEGER.fullmatch(text) else float(text)
    if kind == flat.JSON:
        return json.loads(text)
    return flat.decode_value(kind, text)


class _Edits:
    __slots__ = ("words", "data")

    def __init__(self) -> None:
        self.words: List[int] = []
        self.data = bytearray()

    def push(self, event: int, op: int, path: str, kind: int, text: str) -> None:
        p = path.encode()
        v = text.encode()
        p_off = len(self.data)
        self.data += p
        v_off = len(self.data)
        self.data += v
        self.words += [event, op, p_off, len(p), kind, v_off, len(v)]


# --- plugins -----------------------------------------------------------------


class Plugin:
    """Base class of a plugin: override ``init`` and ``process``."""

    def init(self, config: Config) -> None:
        """Read the settings; raise :class:`ConfigError` to refuse them."""

    def process(self, event: Event) -> Optional[Verdict]:
        """Decide about one event; ``None`` means keep."""
        return _KEEP


def start(cls: type, config_text: str) -> Any:
    """Build and initialise a plugin from the config's JSON text; raises
    :class:`ConfigError`."""
    try:
        value = json.loads(config_text)
    except ValueError as e:
        raise ConfigError("", f"config is not valid JSON: {e}") from None
    config = Config(value)
    plugin = cls()
    plugin.init(config)
    config.check_unknown()
    return plugin


def run_batch(
    plugin: Any, data: bytes, leaves: List[int], events: List[int]
) -> Tuple[List[Tuple[int, Verdict]], List[int], bytearray]:
    """Run a plugin over a flat batch: the non-keep verdicts, the edit words
    and the edit data."""
    edits = _Edits()
    outcomes: List[Tuple[int, Verdict]] = []
    for i in range(len(events) // flat.EVENT_WORDS):
        first, count = events[2 * i], events[2 * i + 1]
        event = Event(i, list(flat.iter_leaves(data, leaves, first, count)), edits)
        verdict = plugin.process(event)
        if verdict is None or verdict is _KEEP:
            continue
        if not isinstance(verdict, Verdict):
            raise TypeError(f"process returned {verdict!r}; return keep(), drop(..), reject(..) or route(..)")
        if verdict.kind in ("drop", "reject"):
            # Edits to an event that does not travel on are not sent back.
            del edits.words[event._first_edit :]
        if verdict.kind != "keep":
            outcomes.append((i, verdict))
    return outcomes, edits.words, edits.data


# --- host --------------------------------------------------------------------


class _Recorder:
    def __init__(self) -> None:
        self.logs: List[Tuple[str, str]] = []
        self.counters: Dict[str, int] = {}

    def log(self, level: str, message: str) -> None:
        self.logs.append((level, message))

    def counter_add(self, name: str, delta: int) -> None:
        self.counters[name] = self.counters.get(name, 0) + delta


# Where log lines and counters go: the gateway inside a component, the
# current harness's recorder in native tests.
_host: Any = _Recorder()

_LEVELS = ("debug", "info", "warn", "error")


def log(level: str, message: str) -> None:
    """Write a log line through the gateway (``debug``, ``info``, ``warn`` or
    ``error``), tagged with the plugin's name. Never put event values in it."""
    if level not in _LEVELS:
        raise ValueError(f"log level must be one of {', '.join(_LEVELS)}")
    _host.log(level, message)


def counter(name: str, delta: int = 1) -> None:
    """Add ``delta`` to this plugin's counter ``name`` (``[a-z0-9_]``), shown
    in the gateway's ``/metrics``."""
    _host.counter_add(name, delta)


def export(cls: type) -> type:
    """The class ``componentize-py`` exports for the plugin ``cls``: assign it
    to ``Plugin`` in the app module. Outside a component build it returns
    ``cls`` itself, so the module imports in native tests."""
    try:
        from . import _component
    except ImportError:
        return cls
    return _component.export(cls)

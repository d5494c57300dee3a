"""The glue between a plugin class and the component's exports; importable
only inside a ``componentize-py`` build (it needs the generated bindings)."""

from __future__ import annotations

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host, types

import wraith_plugin as wp

_LEVELS = {
    "debug": types.LogLevel.DEBUG,
    "info": types.LogLevel.INFO,
    "warn": types.LogLevel.WARN,
    "error": types.LogLevel.ERROR,
}


class _Host:
    def log(self, level: str, message: str) -> None:
        host.log(_LEVELS[level], message)

    def counter_add(self, name: str, delta: int) -> None:
        host.counter_add(name, delta)


def _verdict(v: "wp.Verdict") -> object:
    if v.kind == "drop":
        return types.Verdict_Drop(v.value)
    if v.kind == "reject":
        return types.Verdict_Reject(v.value)
    return types.Verdict_Route(v.value)


def export(cls: type) -> type:
    state = {}

    class Plugin(exports.Plugin):
        def init(self, config: str) -> None:
            wp._host = _Host()
            try:
                state["plugin"] = wp.start(cls, config)
            except wp.ConfigError as e:
                raise Err(types.ConfigError(field=e.field, message=e.message))

        def process(self, batch: types.Batch) -> types.BatchResult:
            outcomes, edits, data = wp.run_batch(state["plugin"], batch.data, batch.leaves, batch.events)
            return types.BatchResult(
                outcomes=[types.Outcome(index=i, verdict=_verdict(v)) for i, v in outcomes],
                edits=edits,
                edit_data=bytes(data),
            )

    Plugin.__name__ = Plugin.__qualname__ = "Plugin"
    return Plugin

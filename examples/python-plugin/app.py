"""A Wraith plugin in Python: proof that the contract is language-neutral.

It replaces the string at a configured path with a placeholder and rejects
events whose `event_type` is listed in `reject_types`. It reads the flat batch
layout described in wit/types.wit directly: five u32 per leaf (path offset,
path length, kind, value offset, value length) into `batch.data`, two u32 per
event (first leaf, leaf count).

Build: componentize-py -d ../../wit -w wraith-plugin componentize app -o redact-py.wasm
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host, types

LEAF_WORDS = 5
EVENT_WORDS = 2
KIND_STRING = 4
OP_SET = 0

ALLOWED = {"field", "placeholder", "reject_types"}


class Plugin(exports.Plugin):
    def init(self, config: str) -> None:
        cfg = json.loads(config)
        for key in cfg:
            if key not in ALLOWED:
                raise Err(types.ConfigError(field=key, message=f"unknown field; expected one of {sorted(ALLOWED)}"))
        field = cfg.get("field", "user")
        if not isinstance(field, str) or not field:
            raise Err(types.ConfigError(field="field", message="must be a non-empty path"))
        global FIELD, PLACEHOLDER, REJECT
        FIELD = field.encode()
        PLACEHOLDER = str(cfg.get("placeholder", "[redacted]")).encode()
        REJECT = {t.encode() for t in cfg.get("reject_types", [])}
        host.log(types.LogLevel.INFO, f"redact-py ready: field {field}")

    def process(self, batch: types.Batch) -> types.BatchResult:
        data, leaves, events = batch.data, batch.leaves, batch.events
        outcomes = []
        edits = []
        edit_data = bytearray()
        redacted = 0
        for i in range(len(events) // EVENT_WORDS):
            first, count = events[EVENT_WORDS * i], events[EVENT_WORDS * i + 1]
            for leaf in range(first, first + count):
                p_off, p_len, kind, v_off, v_len = leaves[LEAF_WORDS * leaf : LEAF_WORDS * leaf + LEAF_WORDS]
                path = data[p_off : p_off + p_len]
                value = data[v_off : v_off + v_len]
                if path == b"event_type" and value in REJECT:
                    outcomes.append(types.Outcome(index=i, verdict=types.Verdict_Reject(f"event type {value.decode()} is refused by redact-py")))
                elif path == FIELD and kind == KIND_STRING:
                    path_at = len(edit_data)
                    edit_data += FIELD
                    value_at = len(edit_data)
                    edit_data += PLACEHOLDER
                    edits += [i, OP_SET, path_at, len(FIELD), KIND_STRING, value_at, len(PLACEHOLDER)]
                    redacted += 1
        if redacted:
            host.counter_add("redacted", redacted)
        return types.BatchResult(outcomes=outcomes, edits=edits, edit_data=bytes(edit_data))

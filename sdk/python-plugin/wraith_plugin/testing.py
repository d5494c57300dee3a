"""Run a plugin natively, in plain CPython, through the same batch layout and
edit application as the gateway: events are flattened into leaves, the plugin
answers with verdicts and edits, and the edits are applied to the JSON events
exactly as the gateway would before storing them.

    from wraith_plugin.testing import Harness

    h = Harness(Scrub, {"mask": "[email]"})
    out = h.run_one({"event_type": "login", "user": "ada@example.com"})
    assert out.event["user"] == "[email]"
    assert out.verdict == wp.keep()
    assert h.counters["emails_masked"] == 1
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Tuple, Union

import wraith_plugin as wp

from . import flat


class Processed:
    """An event after the plugin ran: ``event`` (plain Python values),
    ``json`` (the JSON text the gateway would store, keys in order, numbers
    as the gateway writes them) and ``verdict``."""

    __slots__ = ("tree", "verdict")

    def __init__(self, tree: Any, verdict: wp.Verdict) -> None:
        self.tree = tree
        self.verdict = verdict

    @property
    def event(self) -> Any:
        return flat.to_python(self.tree)

    @property
    def json(self) -> str:
        return flat.dumps(self.tree)

    def __repr__(self) -> str:
        return f"Processed({self.json}, {self.verdict!r})"


class Harness:
    """An initialised plugin that batches are run through.

    ``config`` is a dict or JSON text. A refused config raises
    :class:`wraith_plugin.ConfigError`, as the gateway would refuse to load
    the plugin. Each harness records its own ``logs`` and ``counters``.
    """

    def __init__(self, cls: type, config: Union[Dict[str, Any], str, None] = None) -> None:
        self.recorder = wp._Recorder()
        text = config if isinstance(config, str) else json.dumps({} if config is None else config)
        self.plugin = self._with_host(lambda: wp.start(cls, text))

    def _with_host(self, f):
        saved = wp._host
        wp._host = self.recorder
        try:
            return f()
        finally:
            wp._host = saved

    @property
    def logs(self) -> List[Tuple[str, str]]:
        """``(level, message)`` of every log line since the harness started."""
        return list(self.recorder.logs)

    @property
    def counters(self) -> Dict[str, int]:
        """Every counter's total since the harness started."""
        return dict(self.recorder.counters)

    def run(self, events: Union[List[Any], str]) -> List[Processed]:
        """Run one batch: a list of events (dicts, or JSON texts) or the text
        of a JSON array. Returns one :class:`Processed` per event."""
        if isinstance(events, str):
            trees = flat.loads(events)
            if not isinstance(trees, list):
                raise ValueError("a batch in JSON text is an array of events")
        else:
            trees = [flat.loads(e) if isinstance(e, str) else flat.from_python(e) for e in events]
        batch = flat.FlatBatch.encode(trees)
        outcomes, edits, data = self._with_host(
            lambda: wp.run_batch(self.plugin, bytes(batch.data), batch.leaves, batch.events)
        )
        flat.apply_edits(trees, edits, bytes(data))
        verdicts = [wp.keep()] * len(trees)
        for i, v in outcomes:
            verdicts[i] = v
        return [Processed(t, v) for t, v in zip(trees, verdicts)]

    def run_one(self, event: Any) -> Processed:
        """Run a batch of one event."""
        return self.run([event])[0]

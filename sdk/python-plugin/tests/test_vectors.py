"""The shared test vectors (sdk/vectors/*.json), run through the native
harness: the Python SDK reads and edits events as the Rust and JavaScript
SDKs do, and the harness stores them as the gateway does."""

import json
import os
import pathlib
import sys
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import wraith_plugin as wp  # noqa: E402
from wraith_plugin import flat  # noqa: E402
from wraith_plugin.testing import Harness  # noqa: E402

VECTORS = pathlib.Path(os.environ.get("WRAITH_VECTORS", pathlib.Path(__file__).resolve().parents[2] / "vectors"))


class Scripted(wp.Plugin):
    """Does to each event what the case's `ops` say for its index."""

    def init(self, config):
        self.ops = config.get("ops", [])

    def process(self, event):
        ops = self.ops[event.index] if event.index < len(self.ops) else []
        for op in ops:
            if "set" in op:
                event.set(op["set"], op["value"])
            elif "remove" in op:
                event.remove(op["remove"])
            elif "copy" in op:
                event.set(op["to"], event.get(op["copy"]) if event.has(op["copy"]) else "<missing>")
            elif "has" in op:
                event.set(op["to"], event.has(op["has"]))
            elif "strings" in op:
                event.set(op["strings"], [[p, t] for p, t in event.strings()])
            elif "leaves" in op:
                event.set(op["leaves"], [p for p, _ in event.leaves()])
            elif "verdict" in op:
                return {"drop": wp.drop, "reject": wp.reject, "route": wp.route}[op["verdict"]](op["value"])
            else:
                raise ValueError(f"unknown op {op}")
        return wp.keep()


def verdict_json(v):
    return "keep" if v.kind == "keep" else {v.kind: v.value}


class Vectors(unittest.TestCase):
    def test_every_vector(self):
        files = sorted(VECTORS.glob("*.json"))
        self.assertTrue(files, f"no vectors in {VECTORS}")
        count = 0
        for f in files:
            for case in flat.loads(f.read_text()):
                with self.subTest(file=f.name, case=case["name"]):
                    ops = json.loads(flat.dumps(case["ops"]))
                    h = Harness(Scripted, {"ops": ops})
                    out = h.run(case["events"])
                    self.assertEqual(len(out), len(case["expect"]))
                    for i, (got, want) in enumerate(zip(out, case["expect"])):
                        self.assertEqual(verdict_json(got.verdict), flat.to_python(want["verdict"]), f"event {i}")
                        self.assertEqual(got.json, flat.dumps(want["event"]), f"event {i}")
                        if "json" in want:
                            self.assertEqual(got.json, want["json"], f"event {i}, exact text")
                count += 1
        self.assertGreater(count, 10)


if __name__ == "__main__":
    unittest.main()

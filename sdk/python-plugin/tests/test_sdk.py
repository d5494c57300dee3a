"""The Python SDK's own behaviour beyond the shared vectors: config errors
that name the field, per-harness logs and counters, malformed edits refused
whole, values that JSON cannot hold."""

import math
import pathlib
import sys
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import wraith_plugin as wp  # noqa: E402
from wraith_plugin import flat  # noqa: E402
from wraith_plugin.testing import Harness  # noqa: E402


class Settings(wp.Plugin):
    def init(self, config):
        self.tag = config.str("tag")
        self.n = config.int("n", default=1, min=1, max=10)
        self.types = config.str_list("types", default=[])
        limits = config.section("limits")
        self.max = limits.int("max", default=5)
        wp.log("info", "settings ready")

    def process(self, event):
        wp.counter("seen")
        event.set("tag", self.tag)
        return None


class ConfigTest(unittest.TestCase):
    def check(self, config, field, needle):
        with self.assertRaises(wp.ConfigError) as e:
            Harness(Settings, config)
        self.assertEqual(e.exception.field, field, e.exception)
        self.assertIn(needle, e.exception.message)

    def test_errors_name_the_field(self):
        self.check({}, "tag", "missing field `tag`")
        self.check({"tag": 5}, "tag", "expected a string, got number `5`")
        self.check({"tag": "x", "n": True}, "n", "expected an integer")
        self.check({"tag": "x", "n": 11}, "n", "must be between 1 and 10, got 11")
        self.check({"tag": "x", "types": ["a", 2]}, "types[1]", "expected a string")
        self.check({"tag": "x", "limits": {"max": "7"}}, "limits.max", "expected an integer")
        self.check({"tag": "x", "limits": {"mx": 7}}, "limits.mx", "unknown field `mx`, expected one of `max`")
        self.check({"tag": "x", "tga": 1}, "tga", "unknown field `tga`")
        self.check({"tag": "x", "limits": []}, "limits", "expected a table")
        self.check("{not json", "", "config is not valid JSON")
        self.assertEqual(str(wp.ConfigError("a.b", "bad")), "a.b: bad")
        self.assertEqual(str(wp.ConfigError("", "bad")), "bad")

    def test_each_harness_keeps_its_own_logs_and_counters(self):
        a = Harness(Settings, {"tag": "a"})
        b = Harness(Settings, {"tag": "b"})
        a.run([{}, {}])
        b.run([{}])
        self.assertEqual(a.counters, {"seen": 2})
        self.assertEqual(b.counters, {"seen": 1})
        self.assertEqual(a.logs, [("info", "settings ready")])
        self.assertEqual(a.run_one('{"x": 1}').json, '{"x":1,"tag":"a"}')


class Edits(wp.Plugin):
    def process(self, event):
        event.set("nan", math.nan)
        event.set("big", 10**30)
        with_bad_path = False
        try:
            event.set("a..b", 1)
        except flat.PathError:
            with_bad_path = True
        event.set("bad_path_refused", with_bad_path)
        return wp.keep()


class EditsTest(unittest.TestCase):
    def test_values_json_cannot_hold(self):
        out = Harness(Edits).run_one({})
        # NaN becomes null (as in Rust); an integer beyond 64 bits is stored
        # as the gateway stores it, as a double.
        self.assertEqual(out.json, '{"nan":null,"big":1e+30,"bad_path_refused":true}')

    def test_malformed_edits_are_refused_whole(self):
        events = [flat.loads('{"a":1}')]
        for edits, data in [
            ([0, 0, 0], b""),
            ([5, 0, 0, 1, 0, 0, 0], b"a"),
            ([0, 0, 0, 9, 0, 0, 0], b"a"),
            ([0, 7, 0, 1, 0, 0, 0], b"a"),
            ([0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 3, 1, 2], b"aZZ"),
        ]:
            with self.assertRaises(flat.FlatError):
                flat.apply_edits(events, edits, data)
            self.assertEqual(flat.dumps(events[0]), '{"a":1}')

    def test_a_wrong_return_value_is_named(self):
        class Bad(wp.Plugin):
            def process(self, event):
                return "keep"

        with self.assertRaises(TypeError) as e:
            Harness(Bad).run_one({})
        self.assertIn("return keep()", str(e.exception))


if __name__ == "__main__":
    unittest.main()

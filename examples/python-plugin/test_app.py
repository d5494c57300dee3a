"""Native tests of redact-py: plain CPython, no component build
(`python3 -m unittest` in this folder, with the SDK on PYTHONPATH)."""

import unittest

import wraith_plugin as wp
from wraith_plugin.testing import Harness

from app import Redact


class RedactTest(unittest.TestCase):
    def test_redacts_the_field_and_masks_emails(self):
        h = Harness(Redact, {"field": "context.hostname"})
        out = h.run_one({"context": {"hostname": "ada-laptop", "os": "linux"}, "msg": "mail ada@example.com now"})
        self.assertEqual(out.verdict, wp.keep())
        self.assertEqual(out.event, {"context": {"hostname": "[redacted]", "os": "linux"}, "msg": "mail [email] now"})
        self.assertEqual(h.counters, {"redacted": 2})
        self.assertEqual(h.logs, [("info", "redact-py ready: field context.hostname")])

    def test_rejects_refused_types(self):
        h = Harness(Redact, {"reject_types": ["internal"]})
        out = h.run([{"event_type": "internal", "user": "ada"}, {"event_type": "login", "user": "ada"}])
        self.assertEqual(out[0].verdict, wp.reject("event type internal is refused by redact-py"))
        self.assertEqual(out[0].event["user"], "ada")
        self.assertEqual(out[1].event["user"], "[redacted]")

    def test_config_errors_name_the_field(self):
        with self.assertRaises(wp.ConfigError) as e:
            Harness(Redact, {"feild": "x"})
        self.assertEqual(e.exception.field, "feild")
        self.assertTrue(e.exception.message.startswith("unknown field `feild`"), e.exception.message)
        with self.assertRaises(wp.ConfigError) as e:
            Harness(Redact, {"field": "a..b"})
        self.assertEqual(e.exception.field, "field")


if __name__ == "__main__":
    unittest.main()

"""Native tests of {{name}}, in plain CPython: `python3 -m unittest`."""

import unittest

import wraith_plugin as wp
from wraith_plugin.testing import Harness

from app import {{type}}


class {{type}}Test(unittest.TestCase):
    def test_masks_emails_in_every_string(self):
        h = Harness({{type}}, {})
        out = h.run_one({"event_type": "login", "message": "mail ada@example.com now", "context": {"user": "ada@example.com", "os": "linux"}})
        self.assertEqual(out.verdict, wp.keep())
        self.assertEqual(out.event["message"], "mail [email] now")
        self.assertEqual(out.event["context"], {"user": "[email]", "os": "linux"})
        self.assertEqual(h.counters, {"emails_masked": 2})
        with self.assertRaises(wp.ConfigError) as e:
            Harness({{type}}, {"mask": 5})
        self.assertEqual(e.exception.field, "mask")


if __name__ == "__main__":
    unittest.main()

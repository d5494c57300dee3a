"""Unit tests of wraith_client (stdlib unittest; run by `cargo test` through
sdk/daemon/tests/e2e/python.rs, or `python3 -m unittest discover sdk/python/tests`)."""

import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import wraith_client  # noqa: E402


class OptOut(unittest.TestCase):
    def test_environment(self):
        for v in ("false", "0", "FALSE", "no", "off"):
            self.assertEqual(wraith_client.opt_out({"WRAITH_TELEMETRY": v}), "WRAITH_TELEMETRY")
        for v in ("1", "true", "yes"):
            self.assertEqual(wraith_client.opt_out({"DO_NOT_TRACK": v}), "DO_NOT_TRACK")
            self.assertIsNone(wraith_client.opt_out({"WRAITH_TELEMETRY": v}))
        for v in ("", "0", "false"):
            self.assertIsNone(wraith_client.opt_out({"DO_NOT_TRACK": v}))

    def test_config_file(self):
        with tempfile.TemporaryDirectory() as d:
            env = {"WRAITH_HOME": d}
            self.assertIsNone(wraith_client.opt_out(env))
            path = os.path.join(d, "config.json")
            for text, expected in [
                ('{"telemetry": false}', "config file"),
                ('{"telemetry": "0"}', "config file"),
                ('{"telemetry": true}', None),
                ("{broken", "unreadable config file"),
                ("[]", "unreadable config file"),
            ]:
                with open(path, "w") as f:
                    f.write(text)
                self.assertEqual(wraith_client.opt_out(env), expected, text)

    def test_paths(self):
        self.assertEqual(wraith_client.socket_path({"HOME": "/h"}), "/h/.wraith/wraith.sock")
        self.assertEqual(
            wraith_client.socket_path({"HOME": "/h", "XDG_RUNTIME_DIR": "/run/u"}),
            "/run/u/wraith/wraith.sock",
        )
        self.assertEqual(wraith_client.socket_path({"WRAITH_SOCKET": "/s"}), "/s")


class Encoding(unittest.TestCase):
    def test_event_line(self):
        ctx = wraith_client.context("id-1", "1.0")
        line = wraith_client.encode("t", ctx, "tool_failed", "error", "deploy", 840, "Timeout",
                                    {"attempt": 2, "tool": "ignored", "nested": {"a": [1]}})
        self.assertTrue(line.endswith(b"\n"))
        self.assertEqual(line.count(b"\n"), 1)
        e = json.loads(line)
        uuid.UUID(e.pop("event_id"))
        self.assertGreater(e.pop("timestamp"), 1_700_000_000_000)
        self.assertEqual(e, {
            "level": "error", "event_type": "tool_failed", "tool": "t", "command": "deploy",
            "duration_ms": 840, "error_type": "Timeout", "attempt": 2, "nested": {"a": [1]},
            "context": ctx,
        })

    def test_context_holds_nothing_identifying(self):
        ctx = wraith_client.context("id", "1.0")
        self.assertEqual(sorted(ctx), sorted([
            "installation_id", "tool_version", "os", "arch", "sdk", "sdk_version",
            "language", "python_version"]))
        text = json.dumps(ctx)
        for secret in (os.environ.get("HOME"), os.environ.get("USER"), socket.gethostname()):
            if secret and len(secret) > 2:
                self.assertNotIn(secret, text)

    def test_installation_id_is_kept(self):
        with tempfile.TemporaryDirectory() as d:
            folder = os.path.join(d, "w")
            a = wraith_client.installation_id(folder)
            self.assertEqual(a, wraith_client.installation_id(folder))
            self.assertEqual(uuid.UUID(a).version, 4)
            self.assertEqual(os.stat(folder).st_mode & 0o777, 0o700)
            self.assertEqual(os.listdir(folder), ["installation_id"])

    def test_error_type_is_the_type(self):
        self.assertEqual(wraith_client._error_type(KeyError), "KeyError")
        self.assertEqual(wraith_client._error_type(json.JSONDecodeError), "json.decoder.JSONDecodeError")


def run_child(code, env):
    """Run `code` in a fresh interpreter (init is once per process)."""
    full = dict(os.environ)
    for k in ("WRAITH_TELEMETRY", "DO_NOT_TRACK", "WRAITH_MODE", "WRAITH_SOCKET", "WRAITH_FILE"):
        full.pop(k, None)
    full.update(env)
    full["PYTHONPATH"] = os.path.dirname(HERE)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full,
                          capture_output=True, text=True, timeout=60)


class Modes(unittest.TestCase):
    def test_file_mode(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "events.jsonl")
            r = run_child("""
                import wraith_client as w
                assert w.init("t", "1.0")
                w.track("a", n=1)
                with w.timed("c"):
                    pass
            """, {"HOME": d, "WRAITH_MODE": "file", "WRAITH_FILE": out})
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(out) as f:
                events = [json.loads(line) for line in f]
            self.assertEqual([e["event_type"] for e in events], ["a", "tool_invoked", "tool_succeeded"])
            self.assertEqual(os.stat(out).st_mode & 0o777, 0o600)

    def test_socket_protocol_and_no_blocking_when_nobody_reads(self):
        with tempfile.TemporaryDirectory() as d:
            sock_path = os.path.join(d, "w.sock")
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.bind(sock_path)
            server.listen(1)
            got = []

            def serve():
                conn, _ = server.accept()
                with conn:
                    buf = b""
                    while True:
                        b = conn.recv(65536)
                        if not b:
                            break
                        buf += b
                got.extend(buf.splitlines())

            t = threading.Thread(target=serve)
            t.start()
            r = run_child("""
                import wraith_client as w
                assert w.init("t", "1.0")
                for i in range(50):
                    w.track("e", n=i)
            """, {"HOME": d, "WRAITH_SOCKET": sock_path, "WRAITH_DAEMON": "/nonexistent"})
            t.join(30)
            server.close()
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual([json.loads(x)["n"] for x in got], list(range(50)))

    def test_opt_out_starts_nothing(self):
        with tempfile.TemporaryDirectory() as d:
            r = run_child("""
                import threading, wraith_client as w
                before = threading.active_count()
                assert not w.init("t", "1.0")
                w.track("e")
                with w.timed("c"):
                    pass
                assert threading.active_count() == before
                assert not w.enabled()
            """, {"HOME": d, "DO_NOT_TRACK": "1", "WRAITH_MODE": "file"})
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(os.listdir(d), [])

    def test_unreachable_daemon_never_blocks_exit_for_long(self):
        with tempfile.TemporaryDirectory() as d:
            r = run_child("""
                import wraith_client as w
                assert w.init("t", "1.0", flush_timeout=0.2)
                w.track("e")
                try:
                    with w.timed("c"):
                        raise ValueError("x")
                except ValueError:
                    pass
            """, {"HOME": d, "WRAITH_SOCKET": os.path.join(d, "none.sock"),
                  "WRAITH_DAEMON": "/nonexistent", "WRAITH_ENDPOINT": "http://127.0.0.1:9"})
            self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main()

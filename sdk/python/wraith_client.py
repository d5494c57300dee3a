"""Wraith's client for Python tools: one stdlib-only module.

    import wraith_client as wraith

    wraith.init("mytool", "1.2.3")
    with wraith.timed("scan"):          # tool_invoked, then tool_succeeded / tool_failed
        run_scan()
    wraith.track("cache_cleared", entries=12)

Events go to the local ``wraith-daemon`` over its Unix socket (one JSON object
per line, no answer), started on demand with this process as its parent;
``WRAITH_MODE=http`` posts straight to the gateway instead (CI runners,
containers), as the client also does by itself when no ``wraith-daemon`` can be
found and ``WRAITH_MODE=file`` appends JSON Lines to a file.

Nothing here blocks the caller on I/O or raises: ``track`` encodes the event
and puts it on a bounded queue that a background thread drains; when the
queue is full the event is dropped. At exit, what is queued is delivered for
at most the flush timeout (1 s).

Opt-out is absolute: ``WRAITH_TELEMETRY`` set to ``false``/``0``/``no``/``off``,
``DO_NOT_TRACK`` set (to anything but empty, ``0`` or ``false``), or
``"telemetry": false`` in ``~/.wraith/config.json`` (``$WRAITH_HOME`` moves the
folder; an unreadable config file also turns telemetry off) -- then no thread
is started, no socket opened, no file written and no daemon started.

Context added to every event, and nothing else: installation_id (a random
UUID kept in ``~/.wraith/installation_id``), tool_version, os, arch, sdk,
sdk_version, language, python_version. No host name, user name, path,
environment variable, IP address or error message.
"""

import atexit
import json
import os
import platform
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid

__all__ = ["init", "track", "timed", "flush", "enabled", "dropped", "opt_out", "context"]
__version__ = "0.1.0"

DEFAULT_ENDPOINT = "http://127.0.0.1:8080"
_RESERVED = frozenset(
    ["event_id", "timestamp", "level", "event_type", "tool", "command",
     "duration_ms", "error_type", "context"]
)
_LEVELS = ("debug", "info", "warning", "error", "critical", "fatal")
_MAX_PENDING = 10000


def _falsy(v):
    return v.strip().lower() in ("false", "0", "no", "off")


def wraith_dir(env=None):
    """Wraith's folder: $WRAITH_HOME, else ~/.wraith (None without HOME)."""
    env = os.environ if env is None else env
    if env.get("WRAITH_HOME"):
        return env["WRAITH_HOME"]
    if env.get("HOME"):
        return os.path.join(env["HOME"], ".wraith")
    return None


def socket_path(env=None):
    """$WRAITH_SOCKET, else $XDG_RUNTIME_DIR/wraith/wraith.sock, else <folder>/wraith.sock."""
    env = os.environ if env is None else env
    if env.get("WRAITH_SOCKET"):
        return env["WRAITH_SOCKET"]
    if env.get("XDG_RUNTIME_DIR"):
        return os.path.join(env["XDG_RUNTIME_DIR"], "wraith", "wraith.sock")
    d = wraith_dir(env)
    return os.path.join(d, "wraith.sock") if d else None


def read_config(env=None):
    """The config file as a dict; {} when there is none; None when unreadable."""
    d = wraith_dir(env)
    if d is None:
        return {}
    try:
        with open(os.path.join(d, "config.json"), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return {}
    except OSError:
        return None
    try:
        value = json.loads(data.decode("utf-8-sig"))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def opt_out(env=None):
    """Why telemetry is off ('WRAITH_TELEMETRY', 'DO_NOT_TRACK', 'config file',
    'unreadable config file'), or None when it is on. The environment is
    checked first and alone when it decides."""
    env = os.environ if env is None else env
    if _falsy(env.get("WRAITH_TELEMETRY", "true")):
        return "WRAITH_TELEMETRY"
    dnt = env.get("DO_NOT_TRACK", "")
    if dnt.strip() and not _falsy(dnt):
        return "DO_NOT_TRACK"
    config = read_config(env)
    if config is None:
        return "unreadable config file"
    t = config.get("telemetry")
    if t is False or (isinstance(t, str) and _falsy(t)) or (
        isinstance(t, (int, float)) and not isinstance(t, bool) and t == 0
    ) or isinstance(t, (list, dict)):
        return "config file"
    return None


def installation_id(folder):
    """The installation id kept in <folder>/installation_id, made on first use."""
    path = os.path.join(folder, "installation_id")
    try:
        with open(path) as f:
            return str(uuid.UUID(f.read().strip()))
    except (OSError, ValueError):
        pass
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        tmp = os.path.join(folder, ".installation_id.%d" % os.getpid())
        with open(tmp, "w") as f:
            f.write(str(uuid.uuid4()) + "\n")
        os.replace(tmp, path)
        with open(path) as f:
            return str(uuid.UUID(f.read().strip()))
    except (OSError, ValueError):
        return None


def _os_name():
    p = sys.platform
    if p.startswith("linux"):
        return "linux"
    if p == "darwin":
        return "macos"
    if p in ("win32", "cygwin"):
        return "windows"
    return p


def _arch():
    m = platform.machine().lower()
    return {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}.get(m, m)


def context(install_id, tool_version):
    """The anonymous context every event carries."""
    c = {}
    if install_id:
        c["installation_id"] = install_id
    c.update(
        tool_version=tool_version,
        os=_os_name(),
        arch=_arch(),
        sdk="wraith-client-python",
        sdk_version=__version__,
        language="python",
        python_version=platform.python_version(),
    )
    return c


def encode(tool, ctx, event_type, level="info", command=None, duration_ms=None,
           error_type=None, fields=None):
    """One event as an NDJSON line (bytes, with its newline)."""
    event = {
        "event_id": str(uuid.uuid4()),
        "timestamp": int(time.time() * 1000),
        "level": level if level in _LEVELS else "info",
        "event_type": event_type,
        "tool": tool,
    }
    if command is not None:
        event["command"] = command
    if duration_ms is not None:
        event["duration_ms"] = duration_ms
    if error_type is not None:
        event["error_type"] = error_type
    for k, v in (fields or {}).items():
        if k not in _RESERVED:
            event[k] = v
    event["context"] = ctx
    return (json.dumps(event, separators=(",", ":"), default=str) + "\n").encode("utf-8")


def _events_url(endpoint):
    e = endpoint.rstrip("/")
    return e if e.endswith("/v1/events") else e + "/v1/events"


class _Daemon:
    def __init__(self, sock, endpoint, daemon):
        self.sock_path = sock
        self.endpoint = endpoint
        self.daemon = daemon
        self.sock = None
        self.spawned_at = None
        # Direct HTTP once it is clear that no daemon can be started here.
        self.fallback = None

    def _spawn(self):
        if self.spawned_at is not None and time.monotonic() - self.spawned_at < 1.0:
            return
        self.spawned_at = time.monotonic()
        program = self.daemon or shutil.which("wraith-daemon")
        if not program or not os.path.isfile(program):
            self.fallback = _Http(_events_url(self.endpoint), 2.0)
            return
        args = [program, "--socket", self.sock_path, "--endpoint", self.endpoint,
                "--parent-pid", str(os.getpid())]
        if os.environ.get("WRAITH_SPOOL_DIR"):
            args += ["--spool-dir", os.environ["WRAITH_SPOOL_DIR"]]
        try:
            p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True,
                                 close_fds=True)
            p.wait(timeout=5)
        except (OSError, subprocess.SubprocessError):
            pass

    def _connect(self):
        if self.sock is None:
            for attempt in (0, 1):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(2.0)
                try:
                    s.connect(self.sock_path)
                    self.sock = s
                    break
                except OSError:
                    s.close()
                    if attempt == 0:
                        self._spawn()
        return self.sock

    def deliver(self, pending):
        if not pending:
            return True
        if self.fallback is not None:
            return self.fallback.deliver(pending)
        s = self._connect()
        if s is None:
            return False
        buf = b"".join(pending)
        sent = 0
        try:
            while sent < len(buf):
                n = s.send(buf[sent:])
                if n == 0:
                    raise OSError("closed")
                sent += n
        except OSError:
            try:
                s.close()
            except OSError:
                pass
            self.sock = None
            # Lines written whole are done; a cut one is sent again.
            while pending and len(pending[0]) <= sent:
                sent -= len(pending.pop(0))
            return False
        pending.clear()
        return True


class _Http:
    def __init__(self, url, timeout):
        self.url = url
        self.timeout = timeout

    def deliver(self, pending):
        import urllib.error
        import urllib.request
        while pending:
            n = min(len(pending), 100)
            req = urllib.request.Request(
                self.url, data=b"".join(pending[:n]), method="POST",
                headers={"content-type": "application/x-ndjson",
                         "user-agent": "wraith-client-python/" + __version__})
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as r:
                    r.read()
            except urllib.error.HTTPError as e:
                if not (400 <= e.code < 500) or e.code in (408, 429):
                    return False
            except (OSError, ValueError):
                return False
            del pending[:n]
        return True


class _File:
    def __init__(self, path):
        self.path = path

    def deliver(self, pending):
        if not pending:
            return True
        try:
            d = os.path.dirname(self.path)
            if d:
                os.makedirs(d, mode=0o700, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "ab") as f:
                f.write(b"".join(pending))
        except OSError:
            return False
        pending.clear()
        return True


class _Client:
    def __init__(self, tool, ctx, sink, capacity, flush_timeout):
        self.tool = tool
        self.ctx = ctx
        self.sink = sink
        self.flush_timeout = flush_timeout
        self.queue = queue.Queue(maxsize=capacity)
        self.dropped = 0
        self.thread = threading.Thread(target=self._run, name="wraith-client", daemon=True)
        self.thread.start()

    def put(self, item):
        try:
            self.queue.put_nowait(item)
            return True
        except queue.Full:
            self.dropped += 1
            return False

    def _run(self):
        pending = []
        backoff = 0.05
        retry_at = None
        while True:
            timeout = None if retry_at is None else max(0.0, retry_at - time.monotonic())
            flushes = []
            try:
                item = self.queue.get(timeout=timeout)
                items = [item]
                while True:
                    try:
                        items.append(self.queue.get_nowait())
                    except queue.Empty:
                        break
            except queue.Empty:
                items = []
            for it in items:
                if isinstance(it, bytes):
                    if len(pending) >= _MAX_PENDING:
                        pending.pop(0)
                    pending.append(it)
                else:
                    flushes.append(it)
            try:
                if flushes:
                    deadline = max(f[0] for f in flushes)
                    while not self.sink.deliver(pending) and time.monotonic() < deadline:
                        time.sleep(min(0.02, max(0.0, deadline - time.monotonic())))
                    for _, done in flushes:
                        done.set()
                    retry_at, backoff = None, 0.05
                    if not pending:
                        continue
                if retry_at is not None and time.monotonic() < retry_at:
                    continue
                if self.sink.deliver(pending):
                    retry_at, backoff = None, 0.05
                else:
                    retry_at = time.monotonic() + backoff
                    backoff = min(backoff * 2, 5.0)
            except Exception:
                pending.clear()

    def flush(self, timeout):
        done = threading.Event()
        if self.put((time.monotonic() + timeout, done)):
            done.wait(timeout)


_client = None
_initialised = False
_lock = threading.Lock()


def init(tool, version, endpoint=None, mode=None, daemon=None, flush_timeout=1.0,
         http_timeout=2.0, capacity=4096):
    """Set the client up for the process; only the first call counts.
    Returns True when telemetry is on. ``endpoint``, ``mode`` and ``daemon`` are
    defaults that WRAITH_ENDPOINT / WRAITH_MODE / WRAITH_DAEMON and the config
    file override."""
    global _client, _initialised
    try:
        with _lock:
            if _initialised:
                return _client is not None
            _initialised = True
            if opt_out() is not None:
                return False
            env = os.environ
            config = read_config() or {}
            endpoint = env.get("WRAITH_ENDPOINT") or config.get("endpoint") or endpoint or DEFAULT_ENDPOINT
            mode = env.get("WRAITH_MODE") or config.get("mode") or mode or "daemon"
            folder = wraith_dir()
            if mode == "daemon":
                sock = socket_path()
                if sock is None:
                    return False
                sink = _Daemon(sock, endpoint, env.get("WRAITH_DAEMON") or daemon)
            elif mode == "http":
                sink = _Http(_events_url(endpoint), http_timeout)
            elif mode == "file":
                path = env.get("WRAITH_FILE") or config.get("file") or (
                    os.path.join(folder, "events.jsonl") if folder else None)
                if path is None:
                    return False
                sink = _File(path)
            else:
                return False
            ctx = context(installation_id(folder) if folder else None, version)
            _client = _Client(tool, ctx, sink, capacity, flush_timeout)
            atexit.register(lambda: flush(flush_timeout))
            return True
    except Exception:
        return False


def enabled():
    """Whether events are being collected."""
    return _client is not None


def dropped():
    """Events dropped because the queue was full."""
    return _client.dropped if _client is not None else 0


def track(event_type, level="info", command=None, duration_ms=None, error_type=None, **fields):
    """Track one event. Never blocks, never raises."""
    c = _client
    if c is None:
        return
    try:
        c.put(encode(c.tool, c.ctx, event_type, level, command, duration_ms, error_type, fields))
    except Exception:
        pass


def flush(timeout=1.0):
    """Deliver what is queued, waiting at most ``timeout`` seconds."""
    c = _client
    if c is None:
        return
    try:
        c.flush(timeout)
    except Exception:
        pass


def _error_type(exc_type):
    mod = getattr(exc_type, "__module__", "")
    name = getattr(exc_type, "__qualname__", exc_type.__name__)
    return name if mod in ("builtins", "") else mod + "." + name


class timed:
    """Time a command: ``tool_invoked`` at the start, then ``tool_succeeded`` or
    ``tool_failed`` with ``duration_ms`` and the exception's type (never its
    message). Use as ``with timed("scan"):`` or ``@timed("scan")``. Exceptions
    pass through unchanged."""

    def __init__(self, command):
        self.command = command
        self.start = None

    def __enter__(self):
        self.start = time.monotonic()
        track("tool_invoked", command=self.command)
        return self

    def __exit__(self, exc_type, exc, tb):
        ms = int((time.monotonic() - self.start) * 1000)
        if exc_type is None:
            track("tool_succeeded", command=self.command, duration_ms=ms)
        else:
            track("tool_failed", level="error", command=self.command, duration_ms=ms,
                  error_type=_error_type(exc_type))
        return False

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with timed(self.command):
                return fn(*args, **kwargs)

        return wrapper

#!/bin/sh
# The daemon's stripped size (plain release build and the `daemon` profile)
# and its resident memory when idle (after start-up, and after taking and
# spooling 1000 events). Run from the repository root:
#   sh sdk/daemon/scripts/size-and-rss.sh
set -eu
target=${CARGO_TARGET_DIR:-target}
cargo build --release -p wraith-daemon
cargo build --profile daemon -p wraith-daemon
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
strip -o "$work/release-stripped" "$target/release/wraith-daemon"
size() { stat -c %s "$1" | awk '{printf "%.2f MiB (%d bytes)", $1/1048576, $1}'; }
echo "stripped size, cargo build --release:        $(size "$work/release-stripped")"
echo "stripped size, cargo build --profile daemon: $(size "$target/daemon/wraith-daemon")"
for bin in "$target/release/wraith-daemon" "$target/daemon/wraith-daemon"; do
    rm -rf "$work/spool"
    HOME="$work" "$bin" --foreground --socket "$work/d.sock" --spool-dir "$work/spool" \
        --endpoint http://127.0.0.1:9 --max-backoff 60 2>/dev/null &
    pid=$!
    i=0
    while [ ! -S "$work/d.sock" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    sleep 1
    idle=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
    python3 -c '
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b"".join((json.dumps({"event_type": "tool_invoked", "tool": "rss", "command": "c", "n": i}) + "\n").encode() for i in range(1000)))
' "$work/d.sock"
    sleep 2
    busy=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
    peak=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
    kill "$pid"
    wait "$pid" || true
    echo "idle RSS, $bin: $idle KiB at start, $busy KiB after 1000 events (peak $peak KiB)"
done

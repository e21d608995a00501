#!/usr/bin/env bash
# Echo benchmark: Gust's examples/echo_server against a libevent echo server
# (the target: Gust >= libevent), and a bare epoll server (the floor).
#
# Each server runs alone on CPU 0 (taskset), the load generator on CPU 1, so
# on a 2-core machine neither steals the other's core. Both servers are
# started once and the measured runs alternate between them (G L G L ...):
# this machine's speed drifts by 10-20% over tens of seconds, and alternating
# spreads that drift over both servers instead of biasing one.
#
# Prints one table: median req/s, median p99 latency, median server CPU
# seconds and requests per server CPU-second (the fair figure when the load
# generator shares the machine), each with its ratio to libevent.
#
# Usage: bash bench/echo.sh
#   BUILD_DIR=build/bench    use that (already built) release tree instead of
#                            configuring and building build/bench here
#   RUNS=3 DURATION=5 WARMUP=2 CONNECTIONS=100 SIZE=64 PIPELINE=1
#   GUST_PORT=18931 LIBEVENT_PORT=18932 EPOLL_PORT=18933 SERVER_CPU=0 LOAD_CPU=1
#   NICE=0 (e.g. -10 as root: see below)
#   GUST_SERVER=path   another Gust echo server binary (same options)
# Installs nothing: `make bench` installs the Debian packages first.
set -euo pipefail

cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-100}
SIZE=${SIZE:-64}
PIPELINE=${PIPELINE:-1}
GUST_PORT=${GUST_PORT:-18931}
LIBEVENT_PORT=${LIBEVENT_PORT:-18932}
EPOLL_PORT=${EPOLL_PORT:-18933}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
NICE=${NICE:-0}

log() { echo "echo.sh: $*" >&2; }

# --- build -----------------------------------------------------------------
if [[ -z "${BUILD_DIR:-}" ]]; then
    BUILD_DIR=build/bench
    log "building release tree in $BUILD_DIR"
    cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release \
        -DGUST_BUILD_BENCH=ON -DGUST_BUILD_TESTS=OFF >/dev/null
    cmake --build "$BUILD_DIR" -j "$(nproc)" >/dev/null
fi
LOAD=$BUILD_DIR/bench/echo_load
GUST_SERVER=${GUST_SERVER:-$BUILD_DIR/examples/echo_server}
LIBEVENT_SERVER=$BUILD_DIR/bench/echo_libevent

# --- prerequisites -----------------------------------------------------------
[[ -x $LOAD ]] || { log "missing $LOAD (build with -DGUST_BUILD_BENCH=ON)"; exit 1; }
command -v taskset >/dev/null || { log "taskset missing (util-linux)"; exit 1; }
# Pinning needs two CPUs; with one, both share it and only the per-CPU-second
# figure stays meaningful.
if (( $(nproc) >= 2 )); then
    PIN_SERVER=(taskset -c "$SERVER_CPU") PIN_LOAD=(taskset -c "$LOAD_CPU")
else
    log "only one CPU: running unpinned"
    PIN_SERVER=() PIN_LOAD=()
fi
# NICE=-10 (root only) raises the priority of the servers and the load
# generator over whatever else runs on the machine (builds, fuzzers), which
# otherwise take the server's core away for whole scheduler slices.
if (( NICE != 0 )); then
    PIN_SERVER=(nice -n "$NICE" "${PIN_SERVER[@]}")
    PIN_LOAD=(nice -n "$NICE" "${PIN_LOAD[@]}")
fi

SERVERS=()   # names of the servers that could be started
declare -A PORT BIN PID ARGS
if [[ -x $GUST_SERVER ]]; then
    SERVERS+=(gust)
    BIN[gust]=$GUST_SERVER PORT[gust]=$GUST_PORT
    ARGS[gust]="--port=$GUST_PORT --address=127.0.0.1"
else
    log "NOT MEASURED: $GUST_SERVER is not built (examples/echo_server.c missing?)"
fi
if [[ -x $LIBEVENT_SERVER ]]; then
    SERVERS+=(libevent)
    BIN[libevent]=$LIBEVENT_SERVER PORT[libevent]=$LIBEVENT_PORT
    ARGS[libevent]="--port=$LIBEVENT_PORT --address=127.0.0.1"
else
    log "NOT MEASURED: $LIBEVENT_SERVER is not built (libevent-dev missing?)"
fi
# The floor: a bare epoll echo server with no library, to show how far both
# are from the least work the kernel allows.
EPOLL_SERVER=$BUILD_DIR/bench/echo_epoll
if [[ -x $EPOLL_SERVER ]]; then
    SERVERS+=(epoll)
    BIN[epoll]=$EPOLL_SERVER PORT[epoll]=$EPOLL_PORT
    ARGS[epoll]="--port=$EPOLL_PORT"
fi
(( ${#SERVERS[@]} > 0 )) || { log "no server to measure"; exit 1; }

# --- server lifetime: only the PIDs started here are ever signalled ----------
# A server that ignores SIGTERM gets SIGKILL after 5 s, so that the script
# itself always ends.
cleanup() {
    local name pid
    for name in "${!PID[@]}"; do
        pid=${PID[$name]}
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            if kill -0 "$pid" 2>/dev/null; then
                log "$name server (pid $pid) ignored SIGTERM: killing it"
                kill -KILL "$pid" 2>/dev/null || true
            fi
            wait "$pid" 2>/dev/null || true
        fi
        rm -f "/tmp/echo_bench_$name.$$.log"
    done
}
trap cleanup EXIT
# Make a signal (e.g. from run_all.sh's timeout) go through the EXIT trap.
trap 'exit 143' TERM INT

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for name in "${SERVERS[@]}"; do
    if port_open "${PORT[$name]}"; then
        log "port ${PORT[$name]} already in use: set ${name^^}_PORT"; exit 1
    fi
    # shellcheck disable=SC2086 # ARGS holds several words on purpose
    "${PIN_SERVER[@]}" "${BIN[$name]}" ${ARGS[$name]} \
        >"/tmp/echo_bench_$name.$$.log" 2>&1 &
    PID[$name]=$!
    # Bounded wait (5 s) for the listener.
    for _ in $(seq 50); do
        port_open "${PORT[$name]}" && break
        kill -0 "${PID[$name]}" 2>/dev/null || break
        sleep 0.1
    done
    if ! port_open "${PORT[$name]}"; then
        log "$name server did not start listening; its output:"
        cat "/tmp/echo_bench_$name.$$.log" >&2
        exit 1
    fi
    log "$name server pid ${PID[$name]} on 127.0.0.1:${PORT[$name]}"
done

# run_load NAME SECONDS: one bounded load run against NAME; prints the load
# generator's key=value line. `timeout` is a second bound in case the load
# generator itself hangs.
run_load() {
    local name=$1 secs=$2
    timeout $((secs + 30)) "${PIN_LOAD[@]}" "$LOAD" --port="${PORT[$name]}" \
        --connections="$CONNECTIONS" --size="$SIZE" --pipeline="$PIPELINE" \
        --duration="$secs" --max-requests=100000000 --server-pid="${PID[$name]}"
}

# field KEY LINE: the value of KEY= in a load generator line.
field() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

declare -A RESULTS   # RESULTS[name] = one load line per measured run
FAILED=()
for name in "${SERVERS[@]}"; do
    log "warm-up $name (${WARMUP}s)"
    run_load "$name" "$WARMUP" >/dev/null || true
done
for run in $(seq "$RUNS"); do
    for name in "${SERVERS[@]}"; do
        if ! line=$(run_load "$name" "$DURATION"); then
            log "$name run $run FAILED: $line"
            FAILED+=("$name")
        fi
        log "$name run $run: $line"
        # A load generator that used its whole core limited the run: that
        # req/s is a lower bound for the server (req/cpu_s is still fair).
        if awk -v c="$(field client_cpu_s "$line")" -v d="$DURATION" \
            'BEGIN { exit !(c >= 0.95 * d) }'; then
            log "WARNING: load generator saturated its CPU in $name run $run:" \
                "req/s is a lower bound, compare req/cpu_s"
        fi
        RESULTS[$name]+="$line"$'\n'
        if ! kill -0 "${PID[$name]}" 2>/dev/null; then
            log "$name server died during run $run"
            FAILED+=("$name")
            break 2
        fi
    done
done

# --- table ---------------------------------------------------------------------
# med NAME KEY: median of KEY over NAME's measured runs.
med() {
    local l
    while IFS= read -r l; do
        if [[ -n $l ]]; then field "$2" "$l"; fi
    done \
        <<<"${RESULTS[$1]:-}" | median
}

echo
echo "Echo benchmark: $CONNECTIONS connections, ${SIZE}-byte lines, pipeline $PIPELINE,"
echo "median of $RUNS runs of ${DURATION}s, server on CPU $SERVER_CPU, load on CPU $LOAD_CPU, nice $NICE, $(date -u '+%Y-%m-%d %H:%M UTC')"
printf '%-10s %10s %8s %9s %13s %12s %13s\n' server req/s p99_us cpu_s req/cpu_s \
    "x libevent" "x lib/cpu_s"
le_rps=$(med libevent rps) le_eff=$(med libevent rps_per_server_cpu_s)
for name in "${SERVERS[@]}"; do
    rps=$(med "$name" rps) eff=$(med "$name" rps_per_server_cpu_s)
    ratio=- ratio_eff=-
    if [[ -n $le_rps && -n $rps ]]; then
        ratio=$(awk -v a="$rps" -v b="$le_rps" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
        ratio_eff=$(awk -v a="$eff" -v b="$le_eff" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
    fi
    printf '%-10s %10s %8s %9s %13s %12s %13s\n' "$name" "${rps:--}" \
        "$(med "$name" p99_us)" "$(med "$name" server_cpu_s)" "${eff:--}" \
        "$ratio" "$ratio_eff"
done
if (( ${#FAILED[@]} > 0 )); then
    echo "FAILED: ${FAILED[*]} (errors or a crash: see the lines above)"
    exit 1
fi

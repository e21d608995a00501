#!/bin/bash
# Issue 4's "within 10% of the raw HTTP server": the E4 hello through the
# web framework (bench_web_server "/": router, handler object, ETag,
# default headers) against the raw server (examples/hello_http), in
# alternating rounds, each on CPU 0 with bench/peers/http_load on CPU 1.
#
#   bench/app_vs_raw.sh                       (after `make bench`)
#   ROUNDS=7 DURATION=4 bench/app_vs_raw.sh
#
# compare.sh runs each server once, a minute apart; on a shared machine its
# speed drifts by more than 10% within a run (see RESULTS.md). Here every
# round runs the raw server and then the app back to back, for keep-alive
# (-c100) and pipelined (-c256 -p16) load, and the ratio of each pair is
# printed; the summary is the median of the rounds' ratios, for requests/s
# and for requests per server CPU-second.
#
# Environment: BUILD_DIR (default build/bench), ROUNDS (5), DURATION
# (seconds per run, 4), PORT (18197). Servers are started and stopped here,
# by PID, on 127.0.0.1 only.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$root/build/bench}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-4}
PORT=${PORT:-18197}
RAW=$BUILD_DIR/examples/hello_http
APP=$BUILD_DIR/bench/bench_web_server
LOAD=$BUILD_DIR/bench/http_load
for p in "$RAW" "$APP" "$LOAD"; do
    [ -x "$p" ] || { echo "app_vs_raw.sh: $p not built (make bench)" >&2; exit 1; }
done
[ "$ROUNDS" -ge 1 ] && [ "$ROUNDS" -le 50 ] || { echo "ROUNDS: 1..50" >&2; exit 1; }
[ "$DURATION" -ge 1 ] && [ "$DURATION" -le 60 ] || { echo "DURATION: 1..60" >&2; exit 1; }
if curl -s -o /dev/null "http://127.0.0.1:$PORT/"; then
    echo "app_vs_raw.sh: port $PORT is already in use; set PORT=" >&2
    exit 1
fi

pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; pid=""; }
trap cleanup EXIT INT TERM

# run SERVER MODE: prints "rps rps_per_cpu_second"
run() {
    taskset -c 0 "$1" --port="$PORT" --address=127.0.0.1 >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break
        sleep 0.1
    done
    local args=(-c100)
    [ "$2" = pipe ] && args=(-c256 -p16)
    local out
    out=$(taskset -c 1 "$LOAD" -d "$DURATION" "${args[@]}" --cpu-pid "$pid" \
        "http://127.0.0.1:$PORT/" 2>&1)
    cleanup
    sleep 0.5 # the port's connections drain before the next server binds
    awk -v d="$DURATION" '/^Requests\/sec:/ { r = $2 } /^server_cpu_s:/ { c = $2 }
        END { printf "%.0f %.0f\n", r, (c > 0 ? r * d / c : 0) }' <<<"$out"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

printf "%-5s %-5s %12s %12s %7s %12s %12s %7s\n" round mode raw/s app/s ratio \
    raw/cpu-s app/cpu-s ratio
declare -A R C
for i in $(seq 1 "$ROUNDS"); do
    for mode in ka pipe; do
        read -r rr rc < <(run "$RAW" "$mode")
        read -r ar ac < <(run "$APP" "$mode")
        r=$(awk -v a="$ar" -v b="$rr" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')
        c=$(awk -v a="$ac" -v b="$rc" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')
        R[$mode]+="$r "
        C[$mode]+="$c "
        printf "%-5s %-5s %12s %12s %6sx %12s %12s %6sx\n" "$i" "$mode" "$rr" "$ar" \
            "$r" "$rc" "$ac" "$c"
    done
done
for mode in ka pipe; do
    printf "median %-5s app/raw: requests/s %.2fx, per CPU-second %.2fx (%s rounds)\n" \
        "$mode" "$(tr ' ' '\n' <<<"${R[$mode]}" | grep . | median)" \
        "$(tr ' ' '\n' <<<"${C[$mode]}" | grep . | median)" "$ROUNDS"
done

#!/usr/bin/env bash
# Runs every Gust benchmark, each bounded in time, and prints their output:
#   1. the micro-benchmarks bench/bench_*.c that are built (bench_loop for
#      the event loop, bench_coro for coroutines, ...);
#   2. echo.sh (Gust's echo server against libevent's and a bare epoll
#      server), with 1 then 16 lines in flight per connection;
#   3. compare.sh (HTTP against nginx, h2o, Tornado) once hello_http exists;
#   4. app_vs_raw.sh (the web framework against the raw HTTP server);
#   5. ws_compare.sh (WebSockets against libwebsockets, Node ws, Tornado and
#      Python websockets) once examples/ws_echo exists.
# Called by `make bench` with BUILD_DIR=build/bench after a release build;
# without BUILD_DIR, it builds build/bench itself first.
#
# Exit status: non-zero if any benchmark failed or hit its time limit; the
# others still run, so one broken benchmark does not hide the rest.
set -euo pipefail

cd "$(dirname "$0")/.."

# Upper bounds in seconds. Each echo.sh run takes about
# 3 servers x (2 s warm-up + 3 runs x 5 s) = 51 s, plus a build when needed.
MICRO_TIMEOUT=${MICRO_TIMEOUT:-120}
ECHO_TIMEOUT=${ECHO_TIMEOUT:-600}

status=0
echo "Gust benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs," \
     "$(uname -sr), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"

# Without BUILD_DIR, build the release tree once here for every benchmark.
if [[ -z "${BUILD_DIR:-}" ]]; then
    BUILD_DIR=build/bench
    echo "building release tree in $BUILD_DIR"
    cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release \
        -DGUST_BUILD_BENCH=ON -DGUST_BUILD_TESTS=OFF >/dev/null
    cmake --build "$BUILD_DIR" -j "$(nproc)" >/dev/null
fi
export BUILD_DIR

# Micro-benchmarks: every bench/bench_*.c program, each layer's own (e.g.
# bench_loop, bench_coro). bench_*_echo programs are servers for echo.sh,
# not benchmarks that run on their own.
found=0
for prog in "$BUILD_DIR"/bench/bench_*; do
    [[ -x $prog && ! -d $prog && $prog != *_echo ]] || continue
    found=1
    echo
    echo "== $(basename "$prog")"
    # -k: if SIGTERM is ignored, SIGKILL 5 s later (our own child only).
    rc=0
    timeout -k 5 "$MICRO_TIMEOUT" "$prog" || rc=$?
    if (( rc != 0 )); then
        echo "$(basename "$prog") FAILED or timed out (status $rc)"; status=1
    fi
done
if (( !found )); then
    echo
    echo "== no bench_* micro-benchmark built in $BUILD_DIR/bench: skipped"
fi

# The echo test twice: one line in flight per connection (the cost of a
# read, a write and the loop around them), then 16 pipelined lines (whether
# the lines parsed from one read go back in one write, as DESIGN.md asks).
for pipeline in 1 16; do
    echo
    echo "== echo.sh, PIPELINE=$pipeline"
    # SIGTERM first so that echo.sh's EXIT trap stops the servers it started.
    PIPELINE=$pipeline timeout -k 10 "$ECHO_TIMEOUT" bash bench/echo.sh || {
        echo "echo.sh FAILED or timed out (status $?)"; status=1; }
done

# HTTP against nginx, h2o and Tornado (bench/compare.sh), once Gust has an
# HTTP hello-world example to put in front of wrk.
echo
if [[ -x $BUILD_DIR/examples/hello_http ]]; then
    echo "== compare.sh"
    timeout -k 10 "$ECHO_TIMEOUT" bash bench/compare.sh || {
        echo "compare.sh FAILED or timed out (status $?)"; status=1; }
else
    echo "== compare.sh: skipped ($BUILD_DIR/examples/hello_http not built yet)"
fi

echo
if [[ -x $BUILD_DIR/bench/bench_web_server && -x $BUILD_DIR/bench/http_load ]]; then
    echo "== app_vs_raw.sh"
    BUILD_DIR=$BUILD_DIR timeout -k 10 "$ECHO_TIMEOUT" bash bench/app_vs_raw.sh || {
        echo "app_vs_raw.sh FAILED or timed out (status $?)"; status=1; }
else
    echo "== app_vs_raw.sh: skipped (bench_web_server or http_load not built)"
fi

echo
if [[ -x $BUILD_DIR/examples/ws_echo && -x $BUILD_DIR/bench/ws_load ]]; then
    echo "== ws_compare.sh"
    # About 8 minutes on a busy machine (10,000-connection opens by the
    # Python peers are slow): a limit of its own.
    BUILD_DIR=$BUILD_DIR timeout -k 10 "${WS_TIMEOUT:-1200}" bash bench/ws_compare.sh || {
        echo "ws_compare.sh FAILED or timed out (status $?)"; status=1; }
else
    echo "== ws_compare.sh: skipped (examples/ws_echo or ws_load not built)"
fi

exit "$status"

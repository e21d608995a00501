#!/bin/bash
# HTTP clients side by side against one local nginx: Gust's client
# (bench_http_client), libcurl's multi interface (peers/curl_multi) and
# Tornado's AsyncHTTPClient, each keeping CONNS requests in flight.
# nginx (one worker, access log off, a fixed 13-byte answer) is pinned to
# CPU 0 and the client to CPU 1, on 127.0.0.1. The clients run in
# alternation, ROUNDS times; the medians are printed with ratios to libcurl.
#
#   bench/client_compare.sh           (after a build with -DGUST_BUILD_BENCH=ON)
#   BUILD_DIR=build/bench CONNS=64 REQUESTS=200000 bench/client_compare.sh
#
# Columns: req/s (wall clock), cpu_s (the client's user+system time),
# req/cpu_s (requests per client CPU-second: the client's own cost, the
# figure that moves least on a shared machine).
#
# Environment:
#   BUILD_DIR  build with GUST_BUILD_BENCH=ON (default build/bench)
#   CONNS      requests in flight / connections (default 64)
#   REQUESTS   requests per run for the C clients (default 200000)
#   TORNADO_REQUESTS  per run for Tornado (default 20000: it is slow)
#   DURATION   longest run, seconds (default 10)
#   ROUNDS     runs per client (default 3)
#   CLIENTS    which to run (default "gust curl tornado")
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$root/build/bench}
CONNS=${CONNS:-64}
REQUESTS=${REQUESTS:-200000}
TORNADO_REQUESTS=${TORNADO_REQUESTS:-20000}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-gust curl tornado}
PORT=${PORT:-18090}
PYTHON=/usr/bin/python3

for tool in nginx taskset; do
    command -v "$tool" >/dev/null || { echo "client_compare.sh: $tool missing" >&2; exit 1; }
done
GUST=$BUILD_DIR/bench/bench_http_client
CURL=$BUILD_DIR/bench/curl_multi
[ -x "$GUST" ] || { echo "client_compare.sh: $GUST not built (-DGUST_BUILD_BENCH=ON)" >&2; exit 1; }

work=$(mktemp -d /tmp/gust-client-compare.XXXXXX)
nginx_pid=""
cleanup() {
    [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/logs"
cat >"$work/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 10000000;
    client_body_temp_path $work/body;
    proxy_temp_path $work/proxy;
    fastcgi_temp_path $work/fastcgi;
    uwsgi_temp_path $work/uwsgi;
    scgi_temp_path $work/scgi;
    server {
        listen 127.0.0.1:$PORT;
        location / { return 200 "Hello, world\n"; }
    }
}
EOF
taskset -c 0 nginx -p "$work" -c "$work/nginx.conf" &
nginx_pid=$!
for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break
    sleep 0.1
done
URL=http://127.0.0.1:$PORT/

cat >"$work/tornado_client.py" <<'EOF'
# Tornado's AsyncHTTPClient (simple_httpclient: no keep-alive) with CONNS
# fetches in flight; prints the same line as bench_http_client.
import resource, sys, time
from tornado import gen, httpclient, ioloop

url, conns, n, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
httpclient.AsyncHTTPClient.configure(None, max_clients=conns)

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

async def run(total, limit):
    client = httpclient.AsyncHTTPClient()
    state = {"started": 0, "done": 0, "errors": 0}
    deadline = time.monotonic() + limit
    async def worker():
        while state["started"] < total and time.monotonic() < deadline:
            state["started"] += 1
            try:
                r = await client.fetch(url)
                if r.code != 200 or not r.body:
                    state["errors"] += 1
            except Exception:
                state["errors"] += 1
            state["done"] += 1
    await gen.multi([worker() for _ in range(conns)])
    return state

async def main():
    await run(conns, 10)
    c0, t0 = cpu(), time.monotonic()
    st = await run(n, seconds)
    secs, c = time.monotonic() - t0, cpu() - c0
    print("tornado requests=%d seconds=%.2f req_s=%.0f cpu_s=%.2f req_cpu_s=%.0f errors=%d"
          % (st["done"], secs, st["done"] / secs, c, st["done"] / c if c else 0, st["errors"]))

ioloop.IOLoop.current().run_sync(main)
EOF

run_client() {
    case $1 in
    gust) taskset -c 1 "$GUST" -c "$CONNS" -n "$REQUESTS" -d "$DURATION" "$URL" ;;
    curl) taskset -c 1 "$CURL" -c "$CONNS" -n "$REQUESTS" -d "$DURATION" "$URL" ;;
    tornado) taskset -c 1 "$PYTHON" "$work/tornado_client.py" "$URL" "$CONNS" \
                 "$TORNADO_REQUESTS" "$DURATION" ;;
    esac
}

field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }

echo "# $(date -u +%FT%TZ) $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), CONNS=$CONNS"
for round in $(seq "$ROUNDS"); do
    for c in $CLIENTS; do
        line=$(run_client "$c") || { echo "client_compare.sh: $c failed: $line" >&2; exit 1; }
        echo "$line" | tee -a "$work/$c.out"
    done
done

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
curl_rcs=""
[ -f "$work/curl.out" ] && curl_rcs=$(field req_cpu_s <"$work/curl.out" | median)
curl_rs=""
[ -f "$work/curl.out" ] && curl_rs=$(field req_s <"$work/curl.out" | median)
echo
printf "%-10s %10s %8s %12s %10s %14s\n" client req/s cpu_s req/cpu_s "x curl" "x curl/cpu_s"
for c in $CLIENTS; do
    rs=$(field req_s <"$work/$c.out" | median)
    cs=$(field cpu_s <"$work/$c.out" | median)
    rcs=$(field req_cpu_s <"$work/$c.out" | median)
    xr=-; xc=-
    [ -n "$curl_rs" ] && xr=$(awk -v a="$rs" -v b="$curl_rs" 'BEGIN {printf "%.2f", a / b}')
    [ -n "$curl_rcs" ] && xc=$(awk -v a="$rcs" -v b="$curl_rcs" 'BEGIN {printf "%.2f", a / b}')
    printf "%-10s %10s %8s %12s %10s %14s\n" "$c" "$rs" "$cs" "$rcs" "$xr" "$xc"
done

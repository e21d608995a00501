#!/bin/bash
# HTTP hello-world servers side by side: Gust, nginx, h2o and Tornado, each
# pinned to one core (CPU 0) with wrk on the other (CPU 1), on 127.0.0.1.
#
#   bench/compare.sh                 (after `make bench` built build/bench)
#   BUILD_DIR=build/bench DURATION=5 bench/compare.sh
#
# Rows: requests/s with keep-alive (-c100, wrk -t1 by default) and the same per second
# of server CPU time (ka/cpu-s), pipelined 16 deep
# (-c256, bench/pipeline.lua), and with Connection: close; p99 latency at
# -c100; RSS per idle keep-alive connection with IDLE (10,000) connections,
# twice: "fresh" on a server just started for it (no load has run, so the
# heap holds nothing the connections could reuse), and "after load" once the
# loads have run. Ratios are to nginx. Every server is started here and
# stopped here, by PID.
#
#   MEMORY_ONLY=1 bench/compare.sh   (or bench/idle_memory.sh): the fresh
#   idle-memory figure alone, MEM_RUNS times per server (default 3, each on
#   a new server), with the median; no load is run.
#
# Application-level rows (issue 4), all from bench/bench_web_server, the web
# framework with routing, handler objects and the access-log hook:
#   gust-app   "/"          the hello handler through the router
#   gust-json  "/json"      TechEmpower's {"message":"Hello, World!"}
#   gust-tmpl  "/template"  a template render (12 escaped items)
# After the table, gust-app is compared with the raw HTTP server (gust);
# bench/app_vs_raw.sh measures that ratio without the machine's drift.
#
# The "floor" row is bench/peers/http_floor: the system calls of an epoll
# server (one read and one sendmsg per request) and nothing else, no HTTP
# parsing at all. No server on epoll can pass it on this machine, so its
# ratio to nginx is the most any of them can show.
#
# Environment:
#   BUILD_DIR   Gust build with examples (default build/bench)
#   GUST_SERVER Gust program to run (default $BUILD_DIR/examples/hello_http)
#   DURATION    seconds per wrk run (default 5)
#   IDLE        idle connections for the memory figure (default 10000)
#   MEM_RUNS    fresh servers measured per server for the fresh figure
#               (default 1, or 3 with MEMORY_ONLY=1); the median is shown
#   MEMORY_ONLY 1: only the fresh idle-memory figures (default SERVERS
#               "gust gust-app nginx")
#   SERVERS     which to run (default "gust gust-app gust-json gust-tmpl
#               floor nginx h2o tornado")
#   LOADGEN     wrk (default, as issue 3 specifies) or http_load
#               (bench/peers/http_load.c, io_uring): wrk -t1 saturates its
#               own core near 80k requests/s, below what the servers can
#               do; http_load costs less per request, so the server's core
#               saturates first and the table compares the servers.
#   WEB_SERVER  the application-level program
#               (default $BUILD_DIR/bench/bench_web_server)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$root/build/bench}
GUST_SERVER=${GUST_SERVER:-$BUILD_DIR/examples/hello_http}
DURATION=${DURATION:-5}
IDLE=${IDLE:-10000}
MEMORY_ONLY=${MEMORY_ONLY:-}
if [ -n "$MEMORY_ONLY" ]; then
    SERVERS=${SERVERS:-gust gust-app nginx}
    MEM_RUNS=${MEM_RUNS:-3}
else
    SERVERS=${SERVERS:-gust gust-app gust-json gust-tmpl floor nginx h2o tornado}
    MEM_RUNS=${MEM_RUNS:-1}
fi
WEB_SERVER=${WEB_SERVER:-$BUILD_DIR/bench/bench_web_server}
# The path each server is measured on (default "/").
declare -A URL_PATH=([gust-json]=/json [gust-tmpl]=/template)
PORT=${PORT:-18080}
PYTHON=/usr/bin/python3

LOADGEN=${LOADGEN:-wrk}
HTTP_LOAD=${HTTP_LOAD:-$BUILD_DIR/bench/http_load}
case $LOADGEN in
    wrk) ;;
    http_load)
        [ -x "$HTTP_LOAD" ] || { echo "compare.sh: $HTTP_LOAD not built (needs liburing-dev; make bench)" >&2; exit 1; } ;;
    *) echo "compare.sh: LOADGEN must be wrk or http_load" >&2; exit 1 ;;
esac

tools="wrk nginx h2o taskset"
[ -n "$MEMORY_ONLY" ] && tools="nginx taskset"
for tool in $tools; do
    command -v "$tool" >/dev/null || { echo "compare.sh: $tool missing (make bench installs it)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/gust-compare.XXXXXX)
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# 10,000 idle connections need more descriptors than the usual 1,024.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

printf 'Hello, world' >"$work/hello.txt"

# ---- how each server is started (in the foreground; we keep its PID) ------

start_gust() {
    taskset -c 0 "$GUST_SERVER" --port="$PORT" --address=127.0.0.1 \
        >"$work/gust.log" 2>&1 &
    server_pid=$!
}

start_web() {
    taskset -c 0 "$WEB_SERVER" --port="$PORT" --address=127.0.0.1 \
        >"$work/$1.log" 2>&1 &
    server_pid=$!
}
start_gust-app() { start_web gust-app; }
start_gust-json() { start_web gust-json; }
start_gust-tmpl() { start_web gust-tmpl; }

start_floor() {
    taskset -c 0 "$BUILD_DIR/bench/http_floor" --port="$PORT" --address=127.0.0.1 \
        >"$work/floor.log" 2>&1 &
    server_pid=$!
}

start_nginx() {
    # One worker, no master, no logs: nginx at its leanest on one core.
    cat >"$work/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
error_log $work/nginx.err warn;
pid $work/nginx.pid;
events { worker_connections 65536; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    client_body_temp_path $work; proxy_temp_path $work;
    fastcgi_temp_path $work; uwsgi_temp_path $work; scgi_temp_path $work;
    default_type text/plain;
    server {
        listen 127.0.0.1:$PORT;
        location / { return 200 "Hello, world"; }
    }
}
EOF
    taskset -c 0 nginx -c "$work/nginx.conf" -p "$work" >"$work/nginx.log" 2>&1 &
    server_pid=$!
}

start_h2o() {
    # h2o has no inline "return"; its file handler on a 12-byte file is its
    # fastest way to answer "Hello, world".
    cat >"$work/h2o.conf" <<EOF
num-threads: 1
max-connections: 65536
listen:
  host: 127.0.0.1
  port: $PORT
error-log: $work/h2o.err
http1-request-timeout: 300
hosts:
  default:
    paths:
      /:
        file.file: $work/hello.txt
EOF
    taskset -c 0 h2o -c "$work/h2o.conf" >"$work/h2o.log" 2>&1 &
    server_pid=$!
}

start_tornado() {
    cat >"$work/tornado_hello.py" <<EOF
import tornado.ioloop, tornado.web
class MainHandler(tornado.web.RequestHandler):
    def get(self):
        self.write("Hello, world")
app = tornado.web.Application([(r"/", MainHandler)])
app.listen($PORT, address="127.0.0.1")
tornado.ioloop.IOLoop.current().start()
EOF
    taskset -c 0 "$PYTHON" "$work/tornado_hello.py" >"$work/tornado.log" 2>&1 &
    server_pid=$!
}

wait_ready() {
    for _ in $(seq 1 100); do
        if curl -s -o /dev/null "http://127.0.0.1:$PORT/"; then return 0; fi
        kill -0 "$server_pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

stop_server() {
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    sleep 0.5 # let the port's connections drain before the next server binds
}

# load MODE: one bounded run of the load generator on CPU 1, printing
# wrk-style output (both generators print "Requests/sec:" and "99%" lines).
# MODE: ka (keep-alive, 100 connections), pipe (16 deep, 256 connections),
# close (Connection: close, 100 connections).
load() {
    local url="http://127.0.0.1:$PORT${path:-/}"
    if [ "$LOADGEN" = http_load ]; then
        local args=(-c100)
        case $1 in
            pipe) args=(-c256 -p16) ;;
            close) args=(-c100 -H "Connection: close") ;;
        esac
        taskset -c 1 "$HTTP_LOAD" -d "$DURATION" "${args[@]}" "$url" 2>&1
    else
        local args=(-c100)
        case $1 in
            pipe) args=(-c256 -s "$here/pipeline.lua") ;;
            close) args=(-c100 -H "Connection: close") ;;
        esac
        taskset -c 1 wrk -t1 -d"${DURATION}s" --latency "${args[@]}" "$url" 2>&1
    fi
}

rps_of() { awk '/^Requests\/sec:/ {printf "%.0f", $2}'; }

# wrk prints "99%  1.23ms"; convert to microseconds.
p99_of() {
    awk '$1 == "99%" {
        v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
        if (u == "us") m = 1; else if (u == "ms") m = 1000; else if (u == "s") m = 1000000; else m = 1;
        printf "%.0f", v * m }'
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# CPU time (user + system) the server has used, in clock ticks.
cpu_ticks() { awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$1/stat"; }

# Requests per second of server CPU time: rps * duration / cpu seconds. On
# this 2-core machine wrk has one core, so when a server outruns wrk the
# wall-clock rate stops telling them apart; this figure still does.
per_cpu() { # rps ticks_before ticks_after
    awk -v r="$1" -v a="$2" -v b="$3" -v d="$DURATION" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { c = (b - a) / hz; if (c > 0) printf "%.0f", r * d / c; else print "-" }'
}

# Opens IDLE keep-alive connections, each after one complete request, holds
# them, and prints the server's RSS growth per connection in bytes.
idle_memory() {
    local before after
    before=$(rss_kb "$server_pid")
    "$PYTHON" - "$PORT" "$IDLE" "$server_pid" "$before" <<'EOF'
import socket, sys, time
port, n, pid, before = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
req = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
conns = []
deadline = time.monotonic() + 120
for i in range(n):
    if time.monotonic() > deadline:
        break
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(req)
    conns.append(s)
for s in conns:
    s.recv(4096)   # the response: the connection is now idle, kept alive
time.sleep(1.0)
with open(f"/proc/{pid}/status") as f:
    after = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
print(f"{(after - before) * 1024 / max(len(conns), 1):.0f}")
for s in conns:
    s.close()
EOF
}

# The JSON and template rows run the same program as gust-app, and the
# floor holds fixed buffers: no idle-memory figure for them.
has_idle() { [ "$1" != gust-json ] && [ "$1" != gust-tmpl ] && [ "$1" != floor ]; }

median() { tr ' ' '\n' | { grep -v '^-\?$' || true; } | sort -n | awk '{v[NR] = $1} END {
    if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2];
    else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# fresh_idle NAME: MEM_RUNS times, starts NAME, measures idle_memory on it
# before anything else than wait_ready's one request, and stops it. Sets
# IDLEF[NAME] to the median and IDLEF_RUNS[NAME] to every figure.
fresh_idle() {
    local name=$1 runs="" v
    for _ in $(seq 1 "$MEM_RUNS"); do
        "start_$name"
        if wait_ready; then
            v=$(idle_memory || echo "-")
        else
            echo "compare.sh: $name did not start; log:" >&2
            cat "$work/$name.log" "$work/$name.err" 2>/dev/null >&2 || true
            v="-"
        fi
        stop_server
        runs="$runs${runs:+ }$v"
    done
    IDLEF[$name]=$(median <<<"$runs")
    IDLEF_RUNS[$name]=$runs
}

declare -A KA KACPU PIPE CLOSE P99 IDLEB IDLEF IDLEF_RUNS
for name in $SERVERS; do
    if [ "$name" = gust ] && [ ! -x "$GUST_SERVER" ]; then
        echo "compare.sh: $GUST_SERVER not built; skipping Gust" >&2
        continue
    fi
    if [ "$name" = floor ] && [ ! -x "$BUILD_DIR/bench/http_floor" ]; then
        echo "compare.sh: $BUILD_DIR/bench/http_floor not built; skipping floor" >&2
        continue
    fi
    if [[ "$name" = gust-* ]] && [ ! -x "$WEB_SERVER" ]; then
        echo "compare.sh: $WEB_SERVER not built (GUST_BUILD_BENCH); skipping $name" >&2
        continue
    fi
    path=${URL_PATH[$name]:-/}
    echo "== $name" >&2
    # Something else answering on the port would be measured instead.
    if curl -s -o /dev/null "http://127.0.0.1:$PORT/"; then
        echo "compare.sh: port $PORT is already in use; set PORT=" >&2
        exit 1
    fi
    if has_idle "$name"; then
        fresh_idle "$name"
    else
        IDLEF[$name]="-"
    fi
    [ -n "$MEMORY_ONLY" ] && continue
    "start_$name"
    if ! wait_ready; then
        echo "compare.sh: $name did not start; log:" >&2
        cat "$work/$name.log" "$work/$name.err" 2>/dev/null >&2 || true
        stop_server
        continue
    fi
    load ka >/dev/null # warm-up
    t0=$(cpu_ticks "$server_pid")
    out=$(load ka)
    t1=$(cpu_ticks "$server_pid")
    KA[$name]=$(rps_of <<<"$out")
    KACPU[$name]=$(per_cpu "${KA[$name]}" "$t0" "$t1")
    P99[$name]=$(p99_of <<<"$out")
    PIPE[$name]=$(load pipe | rps_of)
    # The floor ignores Connection: close and holds fixed buffers: those
    # two columns would not mean anything for it.
    if [ "$name" = floor ]; then
        CLOSE[$name]="-"
    else
        CLOSE[$name]=$(load close | rps_of)
    fi
    if has_idle "$name"; then
        IDLEB[$name]=$(idle_memory || echo "-")
    else
        IDLEB[$name]="-"
    fi
    stop_server
done

ratio() { # value / nginx's value, 2 decimals
    local v=$1 n=$2
    if [ -n "$v" ] && [ "$v" != - ] && [ -n "$n" ] && [ "$n" != - ] && [ "$n" != 0 ]; then
        awk -v a="$v" -v b="$n" 'BEGIN {printf "%.2fx", a / b}'
    else
        echo "-"
    fi
}

if [ -n "$MEMORY_ONLY" ]; then
    printf '\nidle keep-alive connections: %s per server, fresh server each run, %s runs\n' \
        "$IDLE" "$MEM_RUNS"
    printf '\n%-9s %14s %7s  %s\n' server "fresh B/conn" ratio "runs (B/conn)"
    for name in $SERVERS; do
        [ -n "${IDLEF[$name]:-}" ] || continue
        printf '%-9s %14s %7s  %s\n' "$name" "${IDLEF[$name]}" \
            "$(ratio "${IDLEF[$name]}" "${IDLEF[nginx]:-}")" "${IDLEF_RUNS[$name]}"
    done
    exit 0
fi

printf '\nload generator: %s on CPU 1, servers on CPU 0, %ss per run\n' "$LOADGEN" "$DURATION"
printf '\n%-9s %12s %7s %12s %7s %12s %7s %12s %7s %9s %7s %10s %7s %10s %7s\n' server \
    keepalive/s ratio "ka/cpu-s" ratio pipelined/s ratio close/s ratio \
    "p99(us)" ratio "idle fresh" ratio "idle after" ratio
for name in $SERVERS; do
    [ -n "${KA[$name]:-}" ] || continue
    printf '%-9s %12s %7s %12s %7s %12s %7s %12s %7s %9s %7s %10s %7s %10s %7s\n' "$name" \
        "${KA[$name]}" "$(ratio "${KA[$name]}" "${KA[nginx]:-}")" \
        "${KACPU[$name]}" "$(ratio "${KACPU[$name]}" "${KACPU[nginx]:-}")" \
        "${PIPE[$name]}" "$(ratio "${PIPE[$name]}" "${PIPE[nginx]:-}")" \
        "${CLOSE[$name]}" "$(ratio "${CLOSE[$name]}" "${CLOSE[nginx]:-}")" \
        "${P99[$name]}" "$(ratio "${P99[$name]}" "${P99[nginx]:-}")" \
        "${IDLEF[$name]}" "$(ratio "${IDLEF[$name]}" "${IDLEF[nginx]:-}")" \
        "${IDLEB[$name]}" "$(ratio "${IDLEB[$name]}" "${IDLEB[nginx]:-}")"
done

if [ -n "${KA[gust]:-}" ] && [ -n "${KA[gust-app]:-}" ]; then
    printf '\ngust-app / gust (raw HTTP server): keep-alive %s, per CPU-second %s, pipelined %s\n' \
        "$(ratio "${KA[gust-app]}" "${KA[gust]}")" \
        "$(ratio "${KACPU[gust-app]}" "${KACPU[gust]}")" \
        "$(ratio "${PIPE[gust-app]}" "${PIPE[gust]}")"
    # The two ran a minute apart: the machine's drift is in this ratio.
    echo "(measured a minute apart; bench/app_vs_raw.sh runs the two side by side)"
fi

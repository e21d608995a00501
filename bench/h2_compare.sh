#!/bin/bash
# HTTP/2 hello-world servers side by side (issue 15): Gust
# (examples/hello_http), nginx (http2, one worker) and h2o (one thread),
# each on CPU 0, loaded by h2load on CPU 1 in clear text (prior
# knowledge) and over TLS (ALPN h2): requests per server CPU-second, the
# figure that does not depend on how fast the load generator is.
#
#   bench/h2_compare.sh                 (BUILD_DIR=build/bench)
#   SERVERS="gust nginx" ROWS="c100m10" REQUESTS=200000 bench/h2_compare.sh
#
# Rows: c100m10 (100 connections, 10 streams each), c100m1; each in
# clear text ("h2c") and over TLS ("h2"). Every server is started here and
# stopped by its PID.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$root/build/bench}
SERVERS=${SERVERS:-gust nginx h2o}
ROWS=${ROWS:-c100m10 c100m1}
MODES=${MODES:-h2c h2}
REQUESTS=${REQUESTS:-300000}
PORT=${PORT:-18950}
work=$(mktemp -d /tmp/gust-h2bench.XXXXXX)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

for t in h2load taskset openssl; do
    command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 1; }
done

# A throwaway certificate for the TLS rows.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -days 2 -subj /CN=localhost -keyout "$work/key.pem" -out "$work/cert.pem" \
    >/dev/null 2>&1

cpu_ticks() { # utime + stime of $1, in clock ticks
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

start_server() { # name mode
    local name=$1 mode=$2
    case $name in
    gust)
        if [ "$mode" = h2 ]; then
            taskset -c 0 "$BUILD_DIR/examples/hello_https" --port="$PORT" \
                --address=127.0.0.1 --cert="$work/cert.pem" \
                --key="$work/key.pem" >"$work/gust.log" 2>&1 &
        else
            taskset -c 0 "$BUILD_DIR/examples/hello_http" --port="$PORT" \
                --address=127.0.0.1 >"$work/gust.log" 2>&1 &
        fi
        server_pid=$!
        ;;
    nginx)
        local listen="listen 127.0.0.1:$PORT http2;"
        [ "$mode" = h2 ] && listen="listen 127.0.0.1:$PORT ssl http2;
        ssl_certificate $work/cert.pem; ssl_certificate_key $work/key.pem;"
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
    http2_max_requests 1000000;
    client_body_temp_path $work; proxy_temp_path $work;
    fastcgi_temp_path $work; uwsgi_temp_path $work; scgi_temp_path $work;
    default_type text/plain;
    server {
        $listen
        location / { return 200 "Hello, world"; }
    }
}
EOF
        taskset -c 0 nginx -c "$work/nginx.conf" -p "$work" \
            >"$work/nginx.log" 2>&1 &
        server_pid=$!
        ;;
    h2o)
        printf 'Hello, world' >"$work/index.txt"
        local ssl=""
        [ "$mode" = h2 ] && ssl="  ssl:
    certificate-file: $work/cert.pem
    key-file: $work/key.pem"
        cat >"$work/h2o.conf" <<EOF
num-threads: 1
max-connections: 65536
listen:
  host: 127.0.0.1
  port: $PORT
$ssl
error-log: $work/h2o.err
hosts:
  default:
    paths:
      /:
        file.file: $work/index.txt
EOF
        taskset -c 0 h2o -c "$work/h2o.conf" >"$work/h2o.log" 2>&1 &
        server_pid=$!
        ;;
    esac
    local i
    for i in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "$name did not start" >&2
    return 1
}

stop_server() {
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
}

hz=$(getconf CLK_TCK)
printf "%-6s %-5s %-8s %10s %12s %8s\n" server mode row "req/s" "req/CPU-s" "errors"
for mode in $MODES; do
    for row in $ROWS; do
        m=${row#*m}
        c=${row#c}; c=${c%m*}
        for name in $SERVERS; do
            command -v "$name" >/dev/null 2>&1 || [ "$name" = gust ] || continue
            start_server "$name" "$mode" || continue
            scheme=http
            [ "$mode" = h2 ] && scheme=https
            url="$scheme://127.0.0.1:$PORT/"
            # Warm-up, then the measured run.
            taskset -c 1 h2load -n 20000 -c "$c" -m "$m" "$url" >/dev/null 2>&1 || true
            t0=$(cpu_ticks "$server_pid")
            out=$(taskset -c 1 h2load -n "$REQUESTS" -c "$c" -m "$m" "$url" 2>&1 || true)
            t1=$(cpu_ticks "$server_pid")
            stop_server
            rps=$(echo "$out" | awk '/^finished in/ { print $4 }')
            done_=$(echo "$out" | awk '/^requests:/ { print $8 }')
            fail=$(echo "$out" | awk '/^requests:/ { print $10 + $12 }')
            cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" 'BEGIN { print (b - a) / hz }')
            per=$(awk -v n="${done_:-0}" -v c="$cpu" 'BEGIN { if (c > 0) printf "%.0f", n / c; else print "-" }')
            printf "%-6s %-5s %-8s %10s %12s %8s\n" "$name" "$mode" "$row" \
                "${rps:--}" "$per" "${fail:--}"
        done
    done
done

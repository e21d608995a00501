#!/bin/bash
# Issue 13's access-log target: examples/hello with its access log on
# (--logging=info, the default, writing to a log file) against the same
# program at --logging=warning (no access lines), keep-alive (-c50) and
# pipelined (-c128 -p16), per server CPU-second: within 10%. nginx with
# its access_log on, buffered as its users run it (buffer=64k), is in the
# same table, and nginx with access_log off next to it, so that what the
# log costs nginx is seen too.
#
#   bench/access_log.sh                      (after `make bench`)
#   ROUNDS=5 DURATION=4 bench/access_log.sh
#
# The house method (app_vs_raw.sh's METHOD=side): the three servers run at
# the same time, all on CPU 0, each loaded by its own http_load on CPU 1,
# so the machine's drift falls on all of them alike and each one's
# requests per CPU-second is its own cost per request. Each round prints
# every server's rates; the summary is the median of info/warning per
# CPU-second over the rounds.
#
# Environment: BUILD_DIR (default build/bench), ROUNDS (3), DURATION (4 s),
# PORT (18297; the others get PORT+1..PORT+3). Servers are started and
# stopped here, by PID, on 127.0.0.1 only; logs go to a temporary folder.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$root/build/bench}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-4}
PORT=${PORT:-18297}
HELLO=$BUILD_DIR/examples/hello
LOAD=$BUILD_DIR/bench/http_load
for p in "$HELLO" "$LOAD"; do
    [ -x "$p" ] || { echo "access_log.sh: $p not built (make bench)" >&2; exit 1; }
done
command -v nginx >/dev/null || { echo "access_log.sh: nginx not installed (make deps-bench)" >&2; exit 1; }
[ "$ROUNDS" -ge 1 ] && [ "$ROUNDS" -le 50 ] || { echo "ROUNDS: 1..50" >&2; exit 1; }
[ "$DURATION" -ge 1 ] && [ "$DURATION" -le 60 ] || { echo "DURATION: 1..60" >&2; exit 1; }
for p in "$PORT" $((PORT + 1)) $((PORT + 2)) $((PORT + 3)); do
    if curl -s -o /dev/null "http://127.0.0.1:$p/"; then
        echo "access_log.sh: port $p is already in use; set PORT=" >&2
        exit 1
    fi
done

pids=()
cleanup() {
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true
    done
    pids=()
}
work=$(mktemp -d /tmp/gust-access-log.XXXXXX)
trap 'cleanup; rm -rf "$work"' EXIT INT TERM

wait_up() {
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0
        sleep 0.1
    done
    echo "access_log.sh: nothing answers on port $1" >&2
    return 1
}

# start_nginx PORT NAME ACCESS_LOG
start_nginx() {
    mkdir -p "$work/$2"
    cat >"$work/$2/nginx.conf" <<NGINX
daemon off;
master_process off;
worker_processes 1;
error_log $work/$2/nginx.err warn;
pid $work/$2/nginx.pid;
events { worker_connections 65536; }
http {
    access_log $3;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    client_body_temp_path $work/$2; proxy_temp_path $work/$2;
    fastcgi_temp_path $work/$2; uwsgi_temp_path $work/$2; scgi_temp_path $work/$2;
    default_type text/plain;
    server {
        listen 127.0.0.1:$1;
        location / { return 200 "Hello, world"; }
    }
}
NGINX
    taskset -c 0 nginx -c "$work/$2/nginx.conf" -p "$work/$2" >"$work/$2.log" 2>&1 &
    started=$!
}

# "rps rps_per_cpu_second" from http_load's output on stdin.
rates() {
    awk -v d="$DURATION" '/^Requests\/sec:/ { r = $2 } /^server_cpu_s:/ { c = $2 }
        END { printf "%.0f %.0f\n", r, (c > 0 ? r * d / c : 0) }'
}

# round MODE: the four servers at once; prints "info_rps info_cpu
# warn_rps warn_cpu nginx_rps nginx_cpu nginx_off_rps nginx_off_cpu".
round() {
    local args=(-c50)
    [ "$1" = pipe ] && args=(-c128 -p16)
    rm -f "$work"/info.log* "$work/nginx_access.log"
    taskset -c 0 "$HELLO" --port="$PORT" --address=127.0.0.1 --logging=info \
        --log-file-prefix="$work/info.log" >/dev/null 2>&1 &
    pids+=($!)
    local info=$!
    taskset -c 0 "$HELLO" --port=$((PORT + 1)) --address=127.0.0.1 \
        --logging=warning >/dev/null 2>&1 &
    pids+=($!)
    local warn=$!
    start_nginx $((PORT + 2)) nginx "$work/nginx_access.log combined buffer=64k"
    pids+=($started)
    local ngx=$started
    start_nginx $((PORT + 3)) nginx_off off
    pids+=($started)
    local ngx_off=$started
    wait_up "$PORT" && wait_up $((PORT + 1)) && wait_up $((PORT + 2)) &&
        wait_up $((PORT + 3))
    local l=() name
    local -A pid_of=([info]=$info [warn]=$warn [nginx]=$ngx [nginx_off]=$ngx_off)
    local -A port_of=([info]=$PORT [warn]=$((PORT + 1)) [nginx]=$((PORT + 2))
                      [nginx_off]=$((PORT + 3)))
    for name in info warn nginx nginx_off; do
        taskset -c 1 "$LOAD" -d "$DURATION" "${args[@]}" --cpu-pid "${pid_of[$name]}" \
            "http://127.0.0.1:${port_of[$name]}/" >"$work/$name.out" 2>&1 &
        l+=($!)
    done
    wait "${l[@]}" || true
    cleanup
    # the access logs really were written: count their lines
    local lines ngx_lines
    lines=$(cat "$work"/info.log* 2>/dev/null | grep -c "access\]" || true)
    ngx_lines=$(wc -l <"$work/nginx_access.log" 2>/dev/null || echo 0)
    echo "$lines $ngx_lines" >"$work/lines"
    sleep 0.5 # the ports' connections drain before the next round binds
    echo "$(rates <"$work/info.out") $(rates <"$work/warn.out") $(rates <"$work/nginx.out") $(rates <"$work/nginx_off.out")"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

printf "%-5s %-5s %10s %10s %10s %10s %10s %10s %11s %7s %7s %9s %9s\n" round mode \
    info/s info/cpu-s warn/s warn/cpu-s nginx/s nginx/cpu-s ngx-off/cpu-s \
    i/w ngx:on/off log-lines nginx-lines
declare -A C N O
for i in $(seq 1 "$ROUNDS"); do
    for mode in ka pipe; do
        read -r ir ic wr wc nr nc or oc < <(round "$mode")
        read -r lines ngx_lines <"$work/lines"
        c=$(awk -v a="$ic" -v b="$wc" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')
        n=$(awk -v a="$nc" -v b="$wc" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')
        o=$(awk -v a="$nc" -v b="$oc" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')
        C[$mode]+="$c "
        N[$mode]+="$n "
        O[$mode]+="$o "
        printf "%-5s %-5s %10s %10s %10s %10s %10s %10s %11s %6sx %6sx %9s %9s\n" "$i" "$mode" \
            "$ir" "$ic" "$wr" "$wc" "$nr" "$nc" "$oc" "$c" "$o" "$lines" "$ngx_lines"
    done
done
for mode in ka pipe; do
    printf "median %-5s per CPU-second: gust info/warning %.2fx; nginx access_log on/off %.2fx; nginx(on)/gust(warning) %.2fx (%s rounds)\n" \
        "$mode" "$(tr ' ' '\n' <<<"${C[$mode]}" | grep . | median)" \
        "$(tr ' ' '\n' <<<"${O[$mode]}" | grep . | median)" \
        "$(tr ' ' '\n' <<<"${N[$mode]}" | grep . | median)" "$ROUNDS"
done

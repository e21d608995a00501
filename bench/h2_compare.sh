#!/usr/bin/env bash
# HTTP/2 servers side by side (issue 15): Gust, nginx (one worker, http2 on
# the listen line as 1.22 spells it) and h2o (one thread), each pinned to
# CPU 0, with h2load (nghttp2-client, one thread) on CPU 1, on 127.0.0.1.
#
# Rows, in clear text (h2c by prior knowledge: h2load's default for an
# http:// URL) and over TLS (h2 by ALPN, a self-signed certificate made
# here):
#   -c100 -m10   100 connections, 10 concurrent streams on each
#   -c100 -m1    100 connections, one stream at a time
# each DURATION seconds (h2load -D) after a WARMUP-second run: requests/s,
# and requests per second of server CPU time (utime + stime from
# /proc/PID/stat around the measured run: the figure to compare on a shared
# machine, where the wall-clock rate also follows whatever else runs). All
# servers run at once and the runs alternate between them (G N H G N H...),
# so the machine's drift is shared; medians of RUNS runs.
# Then memory per idle HTTP/2 connection: IDLE (10,000) connections opened
# by bench/h2_idle.py (preface, SETTINGS, the server's SETTINGS
# acknowledged, then idle) to a server started for it alone (nothing a load
# left in its heap to reuse): growth of its RSS divided by IDLE, read 2.5 s
# after the last connection is set up (the same wait for every server;
# longer than Gust's 1 s http2_hibernate_after). Row "idle B/conn": no
# request; row "idle+req B/conn": each connection first makes one GET with
# a browser's fields and reads the answer (h2_idle.py --request), on a
# fresh server again.
# Ratios are to nginx.
#
#   bench/h2_compare.sh                        (after `make bench`)
#   RUNS=3 DURATION=5 SERVERS="nginx h2o" bench/h2_compare.sh
#
# Servers: gust is the web framework's examples/hello (routing, a handler
# object, the access-log hook; --logging=warning, so no access line, as
# nginx's access_log off) in clear text; gust-http is the bare HTTP server,
# examples/hello_http in clear text and examples/hello_https over TLS (no
# web-level example takes a certificate, so gust has no TLS rows); gust-t0
# is examples/hello with --http2_header_table_size=0 (no HPACK table for
# request fields, so that idle connections that made requests hibernate
# too), in clear text; gust-old (only if named in SERVERS) is
# GUST_OLD_SERVER, examples/hello of another build (before and after a
# change, in the same alternating runs), in clear text.
#
# Environment: BUILD_DIR (default build/bench), GUST_SERVER (default
# $BUILD_DIR/examples/hello), GUST_HTTP_SERVER (default
# $BUILD_DIR/examples/hello_http), GUST_TLS_SERVER (default
# $BUILD_DIR/examples/hello_https --cert --key), SERVERS (default
# "gust gust-http nginx h2o"), RUNS (3), DURATION (5 s), WARMUP
# (1 s), IDLE (10000), SKIP (any of "clear tls idle"), PORT (first port,
# default 18500). Every server is started here and stopped here, by PID;
# every load is bounded in time (h2load -D under timeout).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"
BUILD_DIR=${BUILD_DIR:-build/bench}
GUST_SERVER=${GUST_SERVER:-$BUILD_DIR/examples/hello}
GUST_HTTP_SERVER=${GUST_HTTP_SERVER:-$BUILD_DIR/examples/hello_http}
GUST_TLS_SERVER=${GUST_TLS_SERVER:-$BUILD_DIR/examples/hello_https}
SERVERS=${SERVERS:-gust gust-t0 gust-http nginx h2o}
RUNS=${RUNS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
IDLE=${IDLE:-10000}
SKIP=${SKIP:-}
PORT=${PORT:-18500}
PYTHON=/usr/bin/python3

log() { echo "h2_compare.sh: $*" >&2; }

for tool in h2load nginx h2o taskset openssl curl; do
    command -v "$tool" >/dev/null || { log "$tool missing (make deps-bench installs it)"; exit 1; }
done

# 10,000 connections need more descriptors than the usual 1,024.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if (( $(ulimit -n) < IDLE + 100 )); then
    log "ulimit -n is $(ulimit -n): too few descriptors for $IDLE connections"
    exit 1
fi

work=$(mktemp -d /tmp/gust-h2-compare.XXXXXX)
# h2o started as root serves as nobody: its files must be readable.
chmod 755 "$work"
declare -A PID CPORT TPORT
cleanup() {
    local name
    for name in "${!PID[@]}"; do stop "$name"; done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

printf 'Hello, world' >"$work/hello.txt"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$work/key.pem" \
    -out "$work/cert.pem" 2>/dev/null
chmod 644 "$work/key.pem"

available=()
for name in $SERVERS; do
    case $name in
        gust|gust-t0) [[ -x $GUST_SERVER ]] || { log "NOT MEASURED: $GUST_SERVER not built"; continue; } ;;
        gust-old) [[ -x ${GUST_OLD_SERVER:-} ]] || { log "NOT MEASURED: GUST_OLD_SERVER not set or not built"; continue; } ;;
        gust-http) [[ -x $GUST_HTTP_SERVER ]] || { log "NOT MEASURED: $GUST_HTTP_SERVER not built"; continue; } ;;
        nginx|h2o) ;;
        *) log "unknown server $name"; exit 1 ;;
    esac
    available+=("$name")
done
(( ${#available[@]} )) || { log "no server to measure"; exit 1; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() { # free_port FROM: the first port >= FROM nobody listens on
    local p=$1
    while port_busy "$p"; do p=$((p + 1)); done
    echo "$p"
}

# config NAME CLEAR_PORT TLS_PORT: writes NAME's configuration (nginx, h2o).
config() {
    local name=$1 cport=$2 tport=$3
    case $name in
        nginx) cat >"$work/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
error_log $work/nginx.err warn;
pid $work/nginx.pid;
events { worker_connections 65536; }
http {
    access_log off;
    # HTTP/2 connections count their requests against keepalive_requests
    # since 1.19.7: no GOAWAY in the middle of a run.
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    client_body_temp_path $work; proxy_temp_path $work;
    fastcgi_temp_path $work; uwsgi_temp_path $work; scgi_temp_path $work;
    default_type text/plain;
    ssl_certificate $work/cert.pem;
    ssl_certificate_key $work/key.pem;
    server {
        listen 127.0.0.1:$cport http2;
        listen 127.0.0.1:$tport ssl http2;
        location / { return 200 "Hello, world"; }
    }
}
EOF
        ;;
        h2o) cat >"$work/h2o.conf" <<EOF
num-threads: 1
max-connections: 65536
error-log: $work/h2o.err
http2-idle-timeout: 300
listen:
  host: 127.0.0.1
  port: $cport
listen:
  host: 127.0.0.1
  port: $tport
  ssl:
    certificate-file: $work/cert.pem
    key-file: $work/key.pem
hosts:
  default:
    paths:
      /:
        file.file: $work/hello.txt
EOF
        ;;
    esac
}

# start NAME: starts NAME on CPU 0 on free ports; sets PID[NAME], CPORT and
# TPORT (nginx and h2o serve both ports from one process; Gust's TLS
# program is its own, gust-tls).
start() {
    local name=$1 cport tport cmd
    cport=$(free_port "$PORT")
    tport=$(free_port $((cport + 1)))
    case $name in
        gust) cmd=("$GUST_SERVER" --port="$cport" --address=127.0.0.1 --logging=warning) ;;
        gust-t0) cmd=("$GUST_SERVER" --port="$cport" --address=127.0.0.1 --logging=warning
                      --http2_header_table_size=0) ;;
        gust-old) cmd=("$GUST_OLD_SERVER" --port="$cport" --address=127.0.0.1 --logging=warning) ;;
        gust-http) cmd=("$GUST_HTTP_SERVER" --port="$cport" --address=127.0.0.1 --logging=warning) ;;
        gust-tls) cmd=("$GUST_TLS_SERVER" --port="$tport" --address=127.0.0.1
                       --cert="$work/cert.pem" --key="$work/key.pem" --logging=warning) ;;
        nginx) config nginx "$cport" "$tport"
               cmd=(nginx -c "$work/nginx.conf" -p "$work") ;;
        h2o) config h2o "$cport" "$tport"
             cmd=(h2o -c "$work/h2o.conf") ;;
    esac
    (exec taskset -c 0 "${cmd[@]}") >"$work/$name.log" 2>&1 &
    PID[$name]=$!
    CPORT[$name]=$cport
    TPORT[$name]=$tport
    PORT=$((tport + 1))
    local url i
    [[ $name == gust-tls ]] && url=(-k --http2 "https://127.0.0.1:$tport/") \
                            || url=(--http2-prior-knowledge "http://127.0.0.1:$cport/")
    for i in $(seq 1 100); do
        if [[ $(curl -s --max-time 2 "${url[@]}" 2>/dev/null) == "Hello, world" ]]; then
            return 0
        fi
        kill -0 "${PID[$name]}" 2>/dev/null || break
        sleep 0.1
    done
    log "$name did not answer Hello, world over HTTP/2 (${url[*]}):"
    cat "$work/$name.log" "$work/$name.err" 2>/dev/null >&2 || true
    stop "$name"
    return 1
}

# stop NAME: SIGTERM (SIGQUIT for nginx, its graceful stop), at most 10 s
# for the exit, then SIGKILL, by PID.
stop() {
    local name=$1 pid=${PID[$1]} i
    kill "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name (pid $pid) ignored SIGTERM for 10 s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    unset "PID[$name]"
}

cpu_ticks() { awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# measure PROC URL ARGS...: one bounded h2load run on CPU 1 against URL
# served by process PROC; prints "rps per_cpu". Fails if any request did
# not get a 2xx.
measure() {
    local proc=$1 url=$2 out t0 t1
    shift 2
    timeout -k 5 $((WARMUP + 30)) taskset -c 1 h2load -t1 -D "$WARMUP" "$@" "$url" \
        >/dev/null 2>&1 || true
    t0=$(cpu_ticks "${PID[$proc]}")
    out=$(timeout -k 5 $((DURATION + 60)) taskset -c 1 h2load -t1 -D "$DURATION" "$@" "$url" 2>&1) || {
        log "h2load $* $url failed:"; tail -5 <<<"$out" >&2; echo "- -"; return 0; }
    t1=$(cpu_ticks "${PID[$proc]}")
    echo "$out" >>"$work/h2load.out"
    awk -v t0="$t0" -v t1="$t1" -v hz="$hz" '
        /^finished in/ { rps = $4 }
        /^requests:/ { ok = $8; failed = $10; errored = $12 }
        # h2load may count one 2xx more than it counts succeeded (a
        # response that ends as the duration does): only other statuses
        # and failures make a run invalid.
        /^status codes:/ { other = $5 + $7 + $9 }
        END {
            if (ok + 0 == 0 || other > 0 || failed + errored > 0) {
                printf "- -\n"; exit
            }
            c = (t1 - t0) / hz
            printf "%.0f %s\n", rps, (c > 0 ? sprintf("%.0f", ok / c) : "-")
        }' <<<"$out"
}

median() { sort -g | awk '{v[NR] = $1} END {if (NR) print v[int((NR + 1) / 2)]; else print "-"}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "-"}'; }

echo "h2_compare.sh: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load average" \
     "$(cut -d' ' -f1-3 /proc/loadavg), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "servers on CPU 0, h2load -t1 on CPU 1, ${DURATION}s runs after ${WARMUP}s warm-up," \
     "median of $RUNS: ${available[*]}"

declare -A RPS PER
rows=()
status=0
for mode in clear tls; do
    [[ " $SKIP " == *" $mode "* ]] && continue
    procs=()
    for name in "${available[@]}"; do
        proc=$name
        # Over TLS the bare server (hello_https) is Gust's: its figures go in
        # the gust-http column (the web app's stays empty).
        [[ ($name == gust || $name == gust-t0 || $name == gust-old) && $mode == tls ]] && continue
        [[ $name == gust-http && $mode == tls ]] && proc=gust-tls
        if [[ -n ${PID[$proc]:-} ]] || start "$proc"; then procs+=("$name:$proc"); else status=1; fi
    done
    for m in 10 1; do
        row="$mode -c100 -m$m"
        rows+=("$row")
        declare -A runs_rps=() runs_per=()
        for run in $(seq 1 "$RUNS"); do
            for np in "${procs[@]}"; do
                name=${np%%:*} proc=${np#*:}
                if [[ $mode == clear ]]; then url="http://127.0.0.1:${CPORT[$proc]}/"
                else url="https://127.0.0.1:${TPORT[$proc]}/"; fi
                read -r r p < <(measure "$proc" "$url" -c100 -m"$m")
                runs_rps[$name]+="$r "
                runs_per[$name]+="$p "
            done
        done
        for np in "${procs[@]}"; do
            name=${np%%:*}
            RPS[$row,$name]=$(tr ' ' '\n' <<<"${runs_rps[$name]}" | grep -v '^-\?$' | median)
            PER[$row,$name]=$(tr ' ' '\n' <<<"${runs_per[$name]}" | grep -v '^-\?$' | median)
            log "$row $name: rps ${runs_rps[$name]}| per cpu-s ${runs_per[$name]}"
        done
        unset runs_rps runs_per
    done
    for np in "${procs[@]}"; do stop "${np#*:}"; done
done

declare -A IDLEB IDLER
if [[ " $SKIP " != *" idle "* ]]; then
    for req in "" --request; do
        for name in "${available[@]}"; do
            if start "$name"; then
                out=$(timeout -k 5 200 "$PYTHON" "$here/h2_idle.py" "${CPORT[$name]}" "$IDLE" "${PID[$name]}" $req) || true
                log "idle $name $req: $out"
                v=$(tr ' ' '\n' <<<"$out" | awk -F= '$1 == "idle_bytes" {print $2}')
                n=$(tr ' ' '\n' <<<"$out" | awk -F= '$1 == "connections" {print $2}')
                [[ ${n:-0} == "$IDLE" ]] || { v="-"; log "idle $name $req: only ${n:-0} of $IDLE connections"; }
                if [[ -z $req ]]; then IDLEB[$name]=$v; else IDLER[$name]=$v; fi
                stop "$name"
            else
                status=1
            fi
        done
    done
fi

printf '\n%-18s' "row"
for name in "${available[@]}"; do printf ' %12s %12s' "$name req/s" "$name /cpu-s"; done
for name in "${available[@]}"; do [[ $name != nginx ]] && printf ' %14s' "$name/nginx cpu"; done
echo
for row in "${rows[@]}"; do
    printf '%-18s' "$row"
    for name in "${available[@]}"; do
        printf ' %12s %12s' "${RPS[$row,$name]:--}" "${PER[$row,$name]:--}"
    done
    for name in "${available[@]}"; do
        [[ $name != nginx ]] && printf ' %14s' "$(ratio "${PER[$row,$name]:-}" "${PER[$row,nginx]:-}")"
    done
    echo
done
if [[ " $SKIP " != *" idle "* ]]; then
    # idle_row LABEL ARRAY: one row of bytes per connection and ratios.
    idle_row() {
        local -n v=$2
        printf '%-18s' "$1"
        for name in "${available[@]}"; do printf ' %12s %12s' "${v[$name]:--}" ""; done
        for name in "${available[@]}"; do
            [[ $name != nginx ]] && printf ' %14s' "$(ratio "${v[$name]:-}" "${v[nginx]:-}")"
        done
        echo
    }
    idle_row "idle B/conn" IDLEB
    idle_row "idle+req B/conn" IDLER
    echo "(idle: bytes of server RSS per idle HTTP/2 connection, $IDLE open, clear text, without and with one request first; ratio <= 1 is less memory than nginx)"
fi
exit $status

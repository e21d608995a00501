#!/usr/bin/env bash
# WebSocket servers side by side (issue 12): Gust's examples/ws_echo,
# libwebsockets (bench/peers/lws_echo.c), Node's ws (bench/peers/ws_echo.js),
# Tornado (bench/peers/tornado_ws_echo.py) and Python websockets
# (bench/peers/websockets_echo.py). Every server is pinned to CPU 0
# (taskset), the load generator bench/peers/ws_load (C, epoll, masked client
# frames) to CPU 1, all on 127.0.0.1.
#
# The "floor" row (echo only) is bench/peers/ws_floor: per readable socket
# one recv, the complete frames unmasked into one buffer, one send; no UTF-8
# check, no library. No epoll server can pass it here, so its ratio to
# libwebsockets is the most any of them can show.
#
# Three tables:
#   echo       100 connections, 32-byte text messages, 1 and then 16 in flight
#              per connection: messages/s, p99 latency and messages per second
#              of server CPU time (utime + stime from /proc/PID/stat over the
#              measured window; the figure to compare on a shared machine).
#              All servers run at once and the runs alternate between them
#              (G L N T W G L N T W ...), so the machine's drift is shared;
#              medians of RUNS runs.
#   broadcast  CLIENTS (10,000) open connections; one 100-byte text message
#              that starts with "broadcast:" is sent by one client and the
#              server sends it to all of them: the time until the last client
#              has it, and messages delivered per second (CLIENTS / that time),
#              median of ROUNDS rounds. Each server's broadcast switch
#              (--broadcast) turns this on; a Gust ws_echo without one is
#              reported as not measured.
#   idle       IDLE (10,000) connections open and idle on a server started
#              for it (nothing the loads left in its heap to reuse): growth
#              of its RSS per connection, without and with permessage-deflate
#              negotiated (the client offers "permessage-deflate;
#              client_max_window_bits"; every server accepts it, Gust with
#              --compression); each also after one message per connection
#              ("talked": compressed when negotiated, so the zlib streams a
#              server allocates lazily exist).
#
#   bench/ws_compare.sh                 (after `make bench`)
#   BUILD_DIR=build/bench RUNS=3 DURATION=5 bench/ws_compare.sh
#
# Environment: BUILD_DIR (default build/bench), GUST_SERVER (default
# $BUILD_DIR/examples/ws_echo), NODE_MODULES (default
# <dirname BUILD_DIR>/npm/node_modules, where `make deps-npm` installs ws),
# SERVERS (default "gust floor lws node tornado websockets"), RUNS (3), DURATION
# (5 s), WARMUP (1 s), CLIENTS (10000), ROUNDS (5), IDLE (10000), SKIP
# (any of "echo broadcast idle"), PORT (first port, default 18300).
# Every server is started here and stopped here, by PID; every load is
# bounded in time (timeout) and count.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"
BUILD_DIR=${BUILD_DIR:-build/bench}
GUST_SERVER=${GUST_SERVER:-$BUILD_DIR/examples/ws_echo}
NODE_MODULES=${NODE_MODULES:-$(dirname "$BUILD_DIR")/npm/node_modules}
SERVERS=${SERVERS:-gust floor lws node tornado websockets}
RUNS=${RUNS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
CLIENTS=${CLIENTS:-10000}
ROUNDS=${ROUNDS:-5}
IDLE=${IDLE:-10000}
SKIP=${SKIP:-}
PORT=${PORT:-18300}
LOAD=$BUILD_DIR/bench/ws_load
PYTHON=/usr/bin/python3

log() { echo "ws_compare.sh: $*" >&2; }

[[ -x $LOAD ]] || { log "missing $LOAD (make bench builds it)"; exit 1; }
command -v taskset >/dev/null || { log "taskset missing (util-linux)"; exit 1; }

# 10,000 connections need more descriptors than the usual 1,024, in the
# servers and in ws_load alike.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if (( $(ulimit -n) < CLIENTS + 100 || $(ulimit -n) < IDLE + 100 )); then
    log "ulimit -n is $(ulimit -n): too few descriptors for $CLIENTS/$IDLE connections"
    exit 1
fi

work=$(mktemp -d /tmp/gust-ws-compare.XXXXXX)
declare -A PID SPORT
cleanup() {
    for name in "${!PID[@]}"; do stop "$name"; done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

gust_broadcast=
if [[ -x $GUST_SERVER ]] && "$GUST_SERVER" --help 2>&1 | grep -q -- '--broadcast'; then
    gust_broadcast=--broadcast
fi

# Which servers can run here.
available=()
for name in $SERVERS; do
    case $name in
        gust) [[ -x $GUST_SERVER ]] || { log "NOT MEASURED: $GUST_SERVER not built"; continue; } ;;
        floor) [[ -x $BUILD_DIR/bench/ws_floor ]] || { log "NOT MEASURED: ws_floor not built"; continue; } ;;
        lws) [[ -x $BUILD_DIR/bench/lws_echo ]] || { log "NOT MEASURED: lws_echo not built (libwebsockets-dev)"; continue; } ;;
        node) [[ -d $NODE_MODULES/ws ]] && command -v node >/dev/null ||
                  { log "NOT MEASURED: node or $NODE_MODULES/ws missing (make deps-npm)"; continue; } ;;
        tornado) $PYTHON -c 'import tornado.websocket' 2>/dev/null ||
                     { log "NOT MEASURED: python3-tornado missing"; continue; } ;;
        websockets) $PYTHON -c 'import websockets' 2>/dev/null ||
                        { log "NOT MEASURED: python3-websockets missing"; continue; } ;;
        *) log "unknown server $name"; exit 1 ;;
    esac
    available+=("$name")
done
(( ${#available[@]} )) || { log "no server to measure"; exit 1; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start NAME PORT [broadcast]: starts the server on CPU 0 on PORT or the
# next free port above it (other sessions' servers may hold some), sets
# PID[NAME] and SPORT[NAME].
start() {
    local name=$1 port=$2 bc=${3:-}
    local cmd tries=0
    while port_busy "$port"; do
        port=$((port + 1)); tries=$((tries + 1))
        (( tries < 200 )) || { log "no free port near $2"; return 1; }
    done
    case $name in
        gust) cmd=("$GUST_SERVER" --port="$port" --address=127.0.0.1 --compression
                   --logging=warning ${bc:+$gust_broadcast}) ;;
        floor) cmd=("$BUILD_DIR/bench/ws_floor" --port="$port") ;;
        lws) cmd=("$BUILD_DIR/bench/lws_echo" --port="$port" ${bc:+--broadcast}) ;;
        node) cmd=(env NODE_PATH="$NODE_MODULES" node "$here/peers/ws_echo.js"
                   --port="$port" ${bc:+--broadcast}) ;;
        tornado) cmd=("$PYTHON" "$here/peers/tornado_ws_echo.py" --port="$port" ${bc:+--broadcast}) ;;
        websockets) cmd=("$PYTHON" "$here/peers/websockets_echo.py" --port="$port" ${bc:+--broadcast}) ;;
    esac
    # exec: the PID we keep is the server's own, not a wrapper's.
    (exec taskset -c 0 "${cmd[@]}") >"$work/$name.$port.log" 2>&1 &
    PID[$name]=$!
    SPORT[$name]=$port
    local i
    for i in $(seq 1 100); do
        # Listening, and still alive a moment later (not a bind failure
        # behind someone else's listener).
        if port_busy "$port"; then
            sleep 0.2
            kill -0 "${PID[$name]}" 2>/dev/null && return 0
            break
        fi
        kill -0 "${PID[$name]}" 2>/dev/null || break
        sleep 0.1
    done
    log "$name did not start:"; cat "$work/$name.$port.log" >&2
    stop "$name"
    return 1
}

# stop NAME: SIGTERM, at most 10 s for the exit, then SIGKILL (by PID).
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

# load NAME TIMEOUT ARGS...: one bounded ws_load run on CPU 1 against NAME.
load() {
    local name=$1 limit=$2
    shift 2
    timeout -k 5 "$limit" taskset -c 1 "$LOAD" --port="${SPORT[$name]}" \
        --server-pid="${PID[$name]}" "$@" 2>>"$work/load.err" || {
        log "ws_load against $name failed (status $?):"; tail -5 "$work/load.err" >&2; return 1; }
}

kv() { tr ' ' '\n' | awk -F= -v k="$1" '$1 == k {print $2}'; }
median() { sort -g | awk '{v[NR] = $1} END {if (NR) print v[int((NR + 1) / 2)]; else print "-"}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "-"}'; }

echo "ws_compare.sh: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load average" \
     "$(cut -d' ' -f1-3 /proc/loadavg), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "servers on CPU 0, ws_load on CPU 1: ${available[*]}"

declare -A RES
status=0

# ---- echo -------------------------------------------------------------------
if [[ " $SKIP " != *" echo "* ]]; then
    p=$PORT
    for name in "${available[@]}"; do start "$name" $((p++)) || status=1; done
    for name in "${available[@]}"; do
        [[ -n ${PID[$name]:-} ]] && load "$name" 30 --duration="$WARMUP" >/dev/null || true
    done
    for depth in 1 16; do
        for run in $(seq 1 "$RUNS"); do
            for name in "${available[@]}"; do
                [[ -n ${PID[$name]:-} ]] || continue
                out=$(load "$name" $((DURATION + 30)) --mode=echo --connections=100 --size=32 \
                      --pipeline="$depth" --duration="$DURATION") || { status=1; continue; }
                echo "$out" >>"$work/echo.$depth.$name"
                cpu=$(kv client_cpu_s <<<"$out")
                if awk -v c="$cpu" -v d="$DURATION" 'BEGIN {exit !(c > 0.9 * d)}'; then
                    log "echo $depth against $name: ws_load used ${cpu}s of ${DURATION}s (it limited the run)"
                fi
            done
        done
        echo
        echo "echo: 100 connections, 32-byte text, $depth in flight per connection" \
             "(medians of $RUNS runs of ${DURATION}s)"
        printf '%-11s %10s %9s %8s %12s %8s %8s\n' server msg/s p99_us cpu_s msg/cpu_s "x lws" "x node"
        for name in "${available[@]}"; do
            f=$work/echo.$depth.$name
            [[ -s $f ]] || { printf '%-11s %10s\n' "$name" failed; continue; }
            RES[$name.rps.$depth]=$(kv rps <"$f" | median)
            RES[$name.p99.$depth]=$(kv p99_us <"$f" | median)
            RES[$name.cpu.$depth]=$(kv server_cpu_s <"$f" | median)
            RES[$name.per.$depth]=$(kv msgs_per_server_cpu_s <"$f" | median)
        done
        for name in "${available[@]}"; do
            [[ -n ${RES[$name.per.$depth]:-} ]] || continue
            printf '%-11s %10s %9s %8s %12s %8s %8s\n' "$name" "${RES[$name.rps.$depth]}" \
                "${RES[$name.p99.$depth]}" "${RES[$name.cpu.$depth]}" "${RES[$name.per.$depth]}" \
                "$(ratio "${RES[$name.per.$depth]}" "${RES[lws.per.$depth]:-}")" \
                "$(ratio "${RES[$name.per.$depth]}" "${RES[node.per.$depth]:-}")"
        done
    done
    for name in "${available[@]}"; do [[ -n ${PID[$name]:-} ]] && stop "$name"; done
fi

# ---- broadcast --------------------------------------------------------------
if [[ " $SKIP " != *" broadcast "* ]]; then
    echo
    echo "broadcast: $CLIENTS clients, one 100-byte text message to all" \
         "(median of $ROUNDS rounds; time from the send until the last client has it)"
    printf '%-11s %10s %9s %9s %13s %13s\n' server median_ms min_ms max_ms delivered/s cpu_s/round
    p=$((PORT + 20))
    for name in "${available[@]}"; do
        [[ $name == floor ]] && continue # echo only
        if [[ $name == gust && -z $gust_broadcast ]]; then
            printf '%-11s %10s\n' gust "not measured: $GUST_SERVER has no --broadcast"
            continue
        fi
        start "$name" $((p++)) broadcast || { status=1; continue; }
        if out=$(load "$name" 300 --mode=broadcast --connections="$CLIENTS" --size=100 \
                 --rounds="$ROUNDS"); then
            RES[$name.bc]=$(kv median_ms <<<"$out")
            printf '%-11s %10s %9s %9s %13s %13s\n' "$name" "${RES[$name.bc]}" \
                "$(kv min_ms <<<"$out")" "$(kv max_ms <<<"$out")" \
                "$(kv delivered_per_s <<<"$out")" "$(kv server_cpu_s_per_round <<<"$out")"
        else
            printf '%-11s %10s\n' "$name" failed; status=1
        fi
        stop "$name"
        sleep 1 # let the 10,000 sockets go before the next server
    done
fi

# ---- idle memory ------------------------------------------------------------
if [[ " $SKIP " != *" idle "* ]]; then
    echo
    echo "idle memory: RSS growth per open WebSocket with $IDLE idle connections," \
         "each column on a freshly started server; 'talked': each connection"
    echo "exchanged one 32-byte message (compressed when deflate was negotiated) before idling"
    printf '%-11s %8s %8s %9s %9s %12s\n' server plain talked deflate talked negotiated
    p=$((PORT + 40))
    for name in "${available[@]}"; do
        [[ $name == floor ]] && continue # echo only
        declare -A cell=()
        negotiated=-
        for mode in plain plain-warm deflate deflate-warm; do
            cell[$mode]=-
            start "$name" $((p++)) || { status=1; continue; }
            flag=()
            [[ $mode == deflate* ]] && flag+=(--deflate)
            [[ $mode == *-warm ]] && flag+=(--warm)
            if out=$(load "$name" 300 --mode=idle --connections="$IDLE" --settle=2 "${flag[@]}"); then
                cell[$mode]=$(kv bytes_per_conn <<<"$out")
                [[ $mode == deflate ]] && negotiated=$(kv deflate <<<"$out")
            else
                status=1
            fi
            stop "$name"
            sleep 1
        done
        RES[$name.idle]=${cell[plain]}
        printf '%-11s %8s %8s %9s %9s %12s\n' "$name" "${cell[plain]}" "${cell[plain-warm]}" \
            "${cell[deflate]}" "${cell[deflate-warm]}" "$negotiated/$IDLE"
    done
    echo "(bytes per connection; 'negotiated': connections whose handshake accepted permessage-deflate)"
fi

# ---- the targets (issue 12) -------------------------------------------------
if [[ " ${available[*]} " == *" gust "* ]]; then
    echo
    echo "targets for gust:"
    for depth in 1 16; do
        g=${RES[gust.per.$depth]:-}
        [[ -n $g ]] || continue
        echo "  echo $depth in flight: $(ratio "$g" "${RES[lws.per.$depth]:-}")x libwebsockets (>= 1.5)," \
             "$(ratio "$g" "${RES[node.per.$depth]:-}")x node ws (>= 3) per server CPU-second"
    done
    if [[ -n ${RES[gust.bc]:-} ]]; then
        best=$(for n in "${available[@]}"; do
                   if [[ $n != gust && -n ${RES[$n.bc]:-} ]]; then echo "${RES[$n.bc]}"; fi
               done | sort -g | head -1)
        echo "  broadcast to $CLIENTS: gust ${RES[gust.bc]} ms, fastest peer ${best:--} ms (gust must be faster)"
    fi
    if [[ -n ${RES[gust.idle]:-} ]]; then
        echo "  idle WebSocket without compression: ${RES[gust.idle]} B (<= 1024)"
    fi
fi
exit "$status"

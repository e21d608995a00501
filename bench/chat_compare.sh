#!/usr/bin/env bash
# The chat room under load, side by side with Tornado's chat demo
# (bench/peers/tornado_chat.py under python3-tornado), both running at the
# same time, each pinned to the same core, the load client on another:
#
#   1. both servers, WS_SMALL WebSocket clients each, then POLL_SMALL
#      long-polling clients each: messages delivered per server CPU-second,
#      one post at a time (each post's deliveries timed alone); then, with
#      the sockets, a busy room: POSTERS clients posting POSTS messages each
#      back to back (the next post as soon as the last was answered), so
#      that posts arrive while the server is still sending earlier ones;
#      the same busy room with the long polls (each polls again at once
#      after the last id it got);
#   2. examples/chat alone with WS_BIG WebSocket clients, then POLL_BIG
#      long polls: memory per client and the time from a post until every
#      client has it.
#
#   BUILD_DIR=build/bench bash bench/chat_compare.sh
#
# Only 127.0.0.1; every process started here is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build/bench}
CHAT=$BUILD_DIR/examples/chat/chat
PY=/usr/bin/python3
WS_SMALL=${WS_SMALL:-2000} POLL_SMALL=${POLL_SMALL:-1000} ROUNDS_SMALL=${ROUNDS_SMALL:-10}
POSTERS=${POSTERS:-10} POSTS=${POSTS:-20}
WS_BIG=${WS_BIG:-10000} POLL_BIG=${POLL_BIG:-5000} ROUNDS_BIG=${ROUNDS_BIG:-5}
SERVER_CPU=${SERVER_CPU:-0} CLIENT_CPU=${CLIENT_CPU:-1}
SECRET=bench-secret-$$
[ -x "$CHAT" ] || { echo "build $CHAT first (make bench builds it)"; exit 1; }
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -gt $((WS_BIG + 100)) ] || { echo "ulimit -n is too low for $WS_BIG clients"; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/health" >/dev/null && return 0; sleep 0.1; done; echo "port $1 did not come up"; exit 1; }

gport=$(free_port)
taskset -c "$SERVER_CPU" "$CHAT" --port="$gport" --cookie_secret="$SECRET" \
  --upload_dir="$tmp/uploads" --poll_timeout=600 --logging=warning >"$tmp/gust.log" 2>&1 &
pids+=($!); gpid=$!
tport=$(free_port)
taskset -c "$SERVER_CPU" $PY bench/peers/tornado_chat.py --port="$tport" \
  --cookie_secret="$SECRET" --logging=warning >"$tmp/tornado.log" 2>&1 &
pids+=($!); tpid=$!
wait_up "$gport"; wait_up "$tport"

echo "== side by side: $WS_SMALL WebSocket clients, then $POLL_SMALL long polls, each server"
taskset -c "$CLIENT_CPU" $PY bench/chat_load.py --secret="$SECRET" \
  --ws="$WS_SMALL" --poll="$POLL_SMALL" --rounds="$ROUNDS_SMALL" \
  --posters="$POSTERS" --posts="$POSTS" \
  "gust=http://127.0.0.1:$gport,$gpid" "tornado=http://127.0.0.1:$tport,$tpid" | tee "$tmp/small.json"
$PY - "$tmp/small.json" <<'PYEOF'
import json, sys
r = {j["server"]: j for j in map(json.loads, open(sys.argv[1]))}
for k in ("ws_delivered_per_cpu_s", "busy_delivered_per_cpu_s",
          "poll_delivered_per_cpu_s", "poll_busy_delivered_per_cpu_s"):
    print(f"{k}: gust {r['gust'][k]}, tornado {r['tornado'][k]}, "
          f"ratio {r['gust'][k] / r['tornado'][k]:.1f}x")
PYEOF

echo "== examples/chat alone: $WS_BIG WebSocket clients, then $POLL_BIG long polls"
taskset -c "$CLIENT_CPU" $PY bench/chat_load.py --secret="$SECRET" \
  --ws="$WS_BIG" --poll="$POLL_BIG" --rounds="$ROUNDS_BIG" \
  "gust=http://127.0.0.1:$gport,$gpid"

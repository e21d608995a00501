#!/bin/bash
# User-space instructions per keep-alive request, counted by callgrind:
# repeatable whatever else the machine is doing, unlike requests/s.
#
#   bench/instructions.sh [SERVER [PATH]]
#   bench/instructions.sh build/bench/examples/hello_http /
#   bench/instructions.sh build/bench/bench/bench_web_server /json
#
# The server runs under valgrind on 127.0.0.1:PORT; a Python client sends
# ROUNDS rounds of one request on each of CONNS keep-alive connections and
# reads every response in full. Two runs (FEW and MANY rounds) are
# subtracted, so start-up and shutdown cancel out:
#   (instructions(MANY) - instructions(FEW)) / ((MANY - FEW) * CONNS)
# Only the server's own process is counted (the kernel is not).
# DEPTH=N pipelines: each round sends N requests at once on every
# connection, so that per-read costs are shared as under pipelined load
# (the requests counted are then rounds * CONNS * DEPTH).
# PROFILE=FILE keeps the callgrind profile of the longer run there, for
# callgrind_annotate --inclusive=yes FILE.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
SERVER=${1:-$root/build/bench/examples/hello_http}
URLPATH=${2:-/}
PORT=${PORT:-18111}
CONNS=${CONNS:-10}
FEW=${FEW:-100}
MANY=${MANY:-600}
DEPTH=${DEPTH:-1}
command -v valgrind >/dev/null || { echo "instructions.sh: valgrind missing" >&2; exit 1; }
[ -x "$SERVER" ] || { echo "instructions.sh: $SERVER not built (make bench)" >&2; exit 1; }
work=$(mktemp -d /tmp/gust-instr.XXXXXX)
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

count() { # rounds -> total instructions
    valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" \
        "$SERVER" --port="$PORT" --address=127.0.0.1 >"$work/server.log" 2>&1 &
    pid=$!
    /usr/bin/python3 - "$PORT" "$URLPATH" "$1" "$CONNS" "$DEPTH" <<'PY'
import socket, sys, time
port, path, rounds, conns, depth = (int(sys.argv[1]), sys.argv[2], int(sys.argv[3]),
                                    int(sys.argv[4]), int(sys.argv[5]))
deadline = time.monotonic() + 60
while True:  # valgrind starts slowly
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("server did not start")
        time.sleep(0.2)
req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode() * depth
ss = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(conns)]
for _ in range(rounds):
    for s in ss:
        s.sendall(req)
    for s in ss:
        buf = b""
        for _ in range(depth):  # one whole response at a time
            while b"\r\n\r\n" not in buf:
                buf += s.recv(65536)
            head, _, buf = buf.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                sys.exit("unexpected response: %r" % head[:80])
            cl = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
            n = int(cl[0].split(b":")[1]) if cl else 0
            while len(buf) < n:
                buf += s.recv(65536)
            buf = buf[n:]
for s in ss:
    s.close()
PY
    kill -TERM "$pid"
    wait "$pid" || true
    pid=""
    callgrind_annotate "$work/cg.out" 2>/dev/null |
        awk '/PROGRAM TOTALS/ && !done {gsub(",", "", $1); print $1; done = 1}'
}

few=$(count "$FEW")
many=$(count "$MANY")
[ -n "${PROFILE:-}" ] && cp "$work/cg.out" "$PROFILE"
awk -v a="$few" -v b="$many" -v r=$((MANY - FEW)) -v c=$((CONNS * DEPTH)) -v s="$SERVER" -v p="$URLPATH" \
    'BEGIN { printf "%s %s: %.0f instructions per request\n", s, p, (b - a) / (r * c) }'

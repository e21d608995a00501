#!/bin/bash
# Memory per idle keep-alive connection on freshly started servers, and
# nothing else: compare.sh's fresh idle-memory figure without the loads.
#
#   bench/idle_memory.sh                        (Gust, gust-app and nginx)
#   MEM_RUNS=5 SERVERS="gust nginx h2o" bench/idle_memory.sh
#
# For each server, MEM_RUNS times (default 3): start it, send one request
# (the readiness check), open IDLE (10,000) connections that each send one
# keep-alive request and read its response, wait a second, and divide the
# server's RSS growth by the connection count; then stop it. Prints every
# run and the median, with the ratio to nginx. All of compare.sh's
# variables apply (BUILD_DIR, GUST_SERVER, WEB_SERVER, PORT, IDLE).
exec env MEMORY_ONLY=1 bash "$(dirname "$0")/compare.sh" "$@"

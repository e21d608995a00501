#!/bin/bash
# The same program from two builds, side by side (bench/app_vs_raw.sh's
# method: both servers at once on CPU 0, each loaded by its own http_load
# on CPU 1): a change's cost per request, free of the machine's drift.
# "raw" is the OLD build, "app" the NEW one; a ratio above 1 is the new
# build faster.
#
#   OLD=build/main-bench NEW=build/bench bench/old_vs_new.sh
#   PROGRAM=examples/hello ROUNDS=7 bench/old_vs_new.sh
#
# Environment: OLD and NEW (build directories, both built with
# -DGUST_BUILD_BENCH=ON; the load generator comes from NEW), PROGRAM
# (examples/hello_http, relative to each build), and app_vs_raw.sh's
# ROUNDS, DURATION, PORT.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
OLD=${OLD:?set OLD to the old build directory}
NEW=${NEW:-$root/build/bench}
PROGRAM=${PROGRAM:-examples/hello_http}
echo "old (raw column): $OLD/$PROGRAM"
echo "new (app column): $NEW/$PROGRAM"
BUILD_DIR=$NEW RAW=$OLD/$PROGRAM APP=$NEW/$PROGRAM METHOD=side \
    exec bash "$here/app_vs_raw.sh"

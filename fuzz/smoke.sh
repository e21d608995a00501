#!/bin/sh
# Usage: fuzz/smoke.sh BUILD_DIR SECONDS
# Runs every libFuzzer target built under BUILD_DIR, the CMake build dir
# configured with -DGUST_BUILD_FUZZ=ON (targets in BUILD_DIR/fuzz/fuzz_*; the
# Makefile's BUILD, whose build/fuzz/fuzz/ holds them, works too),
# for SECONDS seconds each, on a scratch copy of its seed corpus
# (fuzz/corpus/<name>/), so the seeds in the tree are never modified.
# Exits non-zero if any target crashes, leaks, times out or is missing;
# crashing inputs are kept under BUILD_DIR/fuzz-artifacts/.
set -u
if [ $# -ne 2 ]; then
    echo "usage: $0 BUILD_DIR SECONDS" >&2
    exit 2
fi
build=$1
secs=$2
here=$(cd "$(dirname "$0")" && pwd)
artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT INT TERM

status=0
found=0
for bin in "$build"/fuzz/fuzz_* "$build"/fuzz/fuzz/fuzz_*; do
    [ -x "$bin" ] && [ -f "$bin" ] || continue
    found=1
    target=$(basename "$bin")
    name=${target#fuzz_}
    # fuzz_http1_parser -> corpus/http1, fuzz_http1_chunked -> corpus/chunked
    seeds=""
    for cand in "$name" "${name%_parser}" "${name#http1_}"; do
        if [ -d "$here/corpus/$cand" ]; then
            seeds="$here/corpus/$cand"
            break
        fi
    done
    work="$scratch/$target"
    mkdir -p "$work"
    [ -n "$seeds" ] && cp "$seeds"/* "$work"/ 2>/dev/null
    echo "fuzz smoke: $target for ${secs}s (seeds: ${seeds:-none})"
    if ! "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
            -print_final_stats=1 -artifact_prefix="$artifacts/$target-" \
            "$work" >"$scratch/$target.log" 2>&1; then
        echo "fuzz smoke: $target FAILED; log follows, inputs in $artifacts" >&2
        tail -n 60 "$scratch/$target.log" >&2
        status=1
    else
        grep -E '^stat::number_of_executed_units' "$scratch/$target.log" || true
    fi
done
if [ $found -eq 0 ]; then
    echo "fuzz smoke: no fuzz targets under $build/fuzz" >&2
    exit 1
fi
exit $status

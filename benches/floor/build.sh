#!/bin/sh
# Builds the C floor: the engine with this project's port and glue (c/),
# plus benches/floor/floor.c. benches/run.js does the same (and caches the
# binary); this script is for running the floor by hand. The engine is the
# patched copy that `npm run build` (build.rs) writes to target/engine.
#
#   sh benches/floor/build.sh [output] [extra gcc flags...]
set -e
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-"$root/benches/floor/build/floor"}
[ $# -gt 0 ] && shift
mkdir -p "$(dirname "$out")"
${CC:-gcc} -O2 -std=gnu11 \
  -I"$root/c" -I"$root/target/engine" \
  -Wno-unused-parameter -Wno-sign-compare -Wno-unused-function \
  "$@" \
  "$root/c/engine.c" "$root/c/standalone_host.c" "$root/benches/floor/floor.c" \
  -o "$out" -lm
echo "$out"

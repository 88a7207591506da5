#!/usr/bin/env bash
# Coverage-guided fuzzing of the restore-and-call path (libFuzzer +
# AddressSanitizer + UndefinedBehaviorSanitizer): the engine and the glue in
# c/ are built exactly as the addon builds them (c/engine.c with the port in
# c/microvium_port.h), driven by fuzz/fuzz_restore.c through the glue_* API.
#
#   scripts/fuzz.sh [seconds] [libFuzzer flags...]   # default 60 seconds
#   scripts/fuzz.sh --build                          # build + seeds only
#   FUZZ_JOBS=2 scripts/fuzz.sh 300                  # two worker processes
#   FUZZ_STOP_ON_CRASH=1 scripts/fuzz.sh 60          # classic mode, stop at
#                                                    # the first finding
#   fuzz/build/fuzz_restore fuzz/crashes/<file>      # replay one input
#   FUZZ_VERBOSE=1 fuzz/build/fuzz_restore <file>    # ... with a trace
#   bash fuzz/triage.sh                              # group the findings
#
# Seeds are compiled from guest scripts by fuzz/make-corpus.js into
# fuzz/corpus/ when that directory is empty. New interesting inputs go to
# fuzz/build/corpus/ (the seeds stay untouched). By default libFuzzer runs
# in fork mode and keeps going after a crash, leak, timeout (5 s) or
# out-of-memory, so one run collects many findings; each leaves its input in
# fuzz/crashes/. Exit status: 1 if the run added files to fuzz/crashes/,
# else libFuzzer's.
#
# Needs clang with libFuzzer (Debian/Ubuntu: apt-get install -y clang) and
# node with the dev dependencies installed (npm install) for the seeds.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_only=
seconds=60
if [ "${1:-}" = "--build" ]; then build_only=1; shift
elif [ $# -gt 0 ]; then seconds=$1; shift
fi
case "$seconds" in
  ''|*[!0-9]*|0) echo "fuzz: seconds must be a positive integer (got '$seconds')" >&2; exit 2 ;;
esac

CC=${CC:-clang}
if ! command -v "$CC" >/dev/null 2>&1; then
  echo "fuzz: $CC not found. Install clang (it ships libFuzzer), e.g.:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y clang" >&2
  exit 2
fi
# The engine as the addon compiles it (the pinned source with c/patches/
# applied), which `npm run build` (build.rs) writes to target/engine.
engine_dir="$root/target/engine"
if [ ! -e "$engine_dir/microvium.c" ]; then
  echo "fuzz: $engine_dir/microvium.c not found: run npm install && npm run build first" >&2
  exit 2
fi

build="$root/fuzz/build"
bin="$build/fuzz_restore"
mkdir -p "$build" "$build/corpus" "$root/fuzz/crashes"

# Rebuild when any input is newer than the binary.
# UBSan checks off, for engine idioms that are by design:
#   null,object-size  the engine's OFFSETOF macro is &((T*)0)->field, which
#                     both report on every field read (a real null
#                     dereference still ends in a SEGV that ASan reports,
#                     and ASan checks object bounds);
#   alignment         guest heap allocations are 2-byte aligned, and the
#                     engine stores doubles in them (fine on x86-64/arm64).
if [ ! -x "$bin" ] || [ -n "$(find "$root/fuzz/fuzz_restore.c" "$root/scripts/fuzz.sh" "$root/c" "$engine_dir/microvium.c" \
      "$engine_dir/microvium.h" -newer "$bin" 2>/dev/null)" ]; then
  echo "fuzz: building $bin" >&2
  "$CC" -g -O1 -std=gnu11 \
    -fsanitize=fuzzer,address,undefined -fno-sanitize=null,object-size,alignment -fno-sanitize-recover=undefined \
    -fno-omit-frame-pointer \
    -I"$root/c" -I"$engine_dir" \
    -Wno-unused-parameter -Wno-sign-compare -Wno-unused-function \
    -Wno-unused-variable -Wno-unused-label -Wno-unused-but-set-variable \
    "$root/c/engine.c" "$root/c/standalone_host.c" "$root/fuzz/fuzz_restore.c" \
    -o "$bin" -lm
fi

if [ -z "$(ls -A "$root/fuzz/corpus" 2>/dev/null)" ]; then
  echo "fuzz: generating seeds in fuzz/corpus" >&2
  node "$root/fuzz/make-corpus.js" "$root/fuzz/corpus" >&2
fi

[ -n "$build_only" ] && { echo "$bin"; exit 0; }

# Leaks are checked after every input (libFuzzer's default with ASan).
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

if [ -n "${FUZZ_STOP_ON_CRASH:-}" ]; then
  mode=()
else
  mode=(-fork="${FUZZ_JOBS:-1}" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
fi

before=$(ls "$root/fuzz/crashes" | wc -l)
cd "$build"
status=0
"$bin" \
  -max_total_time="$seconds" -max_len=8192 -timeout=5 \
  -artifact_prefix="$root/fuzz/crashes/" \
  -print_final_stats=1 \
  "${mode[@]}" "$@" \
  "$build/corpus" "$root/fuzz/corpus" || status=$?
after=$(ls "$root/fuzz/crashes" | wc -l)
if [ "$after" -gt "$before" ]; then
  echo "fuzz: $((after - before)) new file(s) in fuzz/crashes/ (bash fuzz/triage.sh groups them)" >&2
  exit 1
fi
exit "$status"

#!/usr/bin/env bash
# Replays every finding in fuzz/crashes/ (or the files given) with
# fuzz/build/fuzz_restore and groups them by class and top frame.
#
#   bash fuzz/triage.sh [files...]
#   TRIAGE_JOBS=2 bash fuzz/triage.sh            # replay two at a time
#   TRIAGE_BIN=/path/to/fuzz_restore bash fuzz/triage.sh   # e.g. a build
#                                                # with a candidate fix
#
# One line per input (class, top frame, file, frames, glue, entry) is also
# written to fuzz/build/triage.tsv.
# A class is the sanitizer's verdict (heap-buffer-overflow READ, SEGV,
# a UBSan check, leak, timeout...); the signature is the class plus the top
# frame in this repository's code (the glue in c/, the engine's microvium.c,
# or the harness). For each signature: how many inputs, one example, its top
# three frames, the glue entry points (c/engine.c) it was reached through,
# and GLUE when the top frame is in the glue itself (c/engine.c or a part it
# includes: c/boundary.c, c/allocator.c, c/checks.c).
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${TRIAGE_BIN:-"$root/fuzz/build/fuzz_restore"}
[ -x "$bin" ] || { echo "triage: build first (scripts/fuzz.sh --build)" >&2; exit 2; }
if [ $# -eq 0 ]; then
  set -- "$root"/fuzz/crashes/*
fi
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1:allocator_may_return_null=1:symbolize=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

replay() {
  local f=$1
  [ -f "$f" ] || return 0
  # -runs=1 replays the file once; timeouts get the same 5 s as the run.
  nice "$bin" -timeout=5 -runs=1 "$f" 2>&1 | awk -v file="$(basename "$f")" -v root="$root/" '
    function short(path) { sub(root, "", path); sub(/^target\/engine\//, "", path); return path }
    !kind && /runtime error:/ {
      k = $0; sub(/.*runtime error: /, "", k)
      gsub(/0x[0-9a-f]+/, "ADDR", k); gsub(/-?[0-9.]+e[+-][0-9]+/, "X", k)
      gsub(/[0-9][0-9][0-9][0-9]+/, "N", k)
      kind = "UBSan: " k
    }
    !kind && /ERROR: AddressSanitizer:/ {
      k = $0; sub(/.*AddressSanitizer: /, "", k); sub(/ on .*/, "", k); sub(/ address.*/, "", k)
      kind = "ASan: " k
    }
    !kind && /ERROR: LeakSanitizer/ { kind = "leak" }
    !kind && /ERROR: libFuzzer: timeout/ { kind = "timeout" }
    !kind && /ERROR: libFuzzer: out-of-memory/ { kind = "out-of-memory" }
    !kind && /ERROR: libFuzzer: deadly signal/ { kind = "deadly signal" }
    kind == "ASan: " k && /^(READ|WRITE) of size/ && !rw { rw = " " $1 " " ($4 > 8 ? "N" : $4); kind = kind rw }
    /^ *#[0-9]+ 0x/ && kind {
      # "#n 0xPC in func path:line:col"; only frames of C sources in this
      # repository (the engine, the glue, the harness) count. The port
      # two-byte read primitive is skipped: its caller is the one that matters.
      fn = $4; loc = $5
      if (index(loc, root) != 1 || loc !~ /\.[ch](:[0-9]+)*$/) next
      if (fn == "mvm_port_read2") next
      if (n < 3) { frames[n++] = fn " (" short(loc) ")" }
      if (n == 1 && loc ~ /\/c\/(engine|boundary|allocator|checks)\.c/) glue = "GLUE: top frame in the glue"
      if (!entry && loc ~ /\/c\/engine\.c/) entry = fn
      if (!entry && loc ~ /\/fuzz\/fuzz_restore\.c/) entry = "harness:" fn
    }
    END {
      if (!kind) kind = "no crash on replay"
      top = n > 0 ? frames[0] : "?"
      sub(/:[0-9]+(:[0-9]+)?\)$/, ")", top)
      printf "%s\t%s\t%s\t%s | %s | %s\t%s\t%s\n", kind, top, file, frames[0], frames[1], frames[2], glue, entry
    }'
}
export -f replay
export bin root

mkdir -p "$root/fuzz/build"
printf '%s\0' "$@" | xargs -0 -n 1 -P "${TRIAGE_JOBS:-1}" bash -c 'replay "$0"' \
  | sort | tee "$root/fuzz/build/triage.tsv" | awk -F'\t' '
  { key = $1 "\t" $2; count[key]++; if (!(key in example)) { example[key] = $3; frames[key] = $4; glue[key] = $5 }
    if (index(entries[key], $6) == 0) entries[key] = entries[key] (entries[key] ? ", " : "") $6 }
  END {
    for (k in count) {
      split(k, p, "\t")
      # One line per group (\001 for its line breaks), sorted below.
      printf "%d\t%5d  %s%s\001       at %s\001       entered via %s; e.g. %s\n", count[k], count[k], p[1], glue[k] ? "  [" glue[k] "]" : "", frames[k], entries[k], example[k]
      distinct++; total += count[k]
    }
    printf "0\t%d inputs, %d distinct signatures (class + top frame)\n", total, distinct
  }' | sort -t "$(printf '\t')" -k1,1nr | cut -f2- | tr '\001' '\n'

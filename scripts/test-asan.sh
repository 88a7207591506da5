#!/usr/bin/env bash
# Runs the test suite against a build of the native addon whose C code (the
# Microvium engine and the glue in c/) is compiled with AddressSanitizer, with
# LeakSanitizer on for the whole process (Rust and Node-API allocations go
# through the intercepted malloc, so their leaks are seen too; Rust code
# itself is not instrumented for out-of-bounds accesses, stable Rust has no
# sanitizers).
#
#   npm run test:asan                    # whole suite but package.test.js
#   scripts/test-asan.sh __test__/hostile.test.js ...   # some files
#
# The working tree (tracked and untracked files, not ignored ones) is copied
# to $ASAN_DIR (default /tmp/microvium-asan) and built there, so the normal
# build in this directory is left alone. Node itself is not instrumented:
# libasan is LD_PRELOADed.
#
# Exit status: non-zero if any test fails, any process reports an
# AddressSanitizer error, or LeakSanitizer reports a leak whose allocation
# stack goes through the addon. Leaks of Node/V8/libuv alone are listed in
# $ASAN_DIR/logs but ignored.
#
# Freed memory sits in ASan's quarantine; it is capped at 16 MB here so that
# the tests that bound RSS growth still hold. ASAN_SKIP_RSS=1 is set for the
# tests that choose to skip an RSS bound under the sanitizer (soak.test.js).
# A SEGV is reported with its stack (handle_segv=1, Node's own handler off).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${ASAN_DIR:-/tmp/microvium-asan}
libasan=$(gcc -print-file-name=libasan.so)
if [ ! -e "$libasan" ]; then
  echo "test-asan: libasan not found (gcc -print-file-name=libasan.so gave '$libasan')" >&2
  exit 2
fi

# 1. Copy the working tree (sources and tests), keep target/ for incremental builds.
mkdir -p "$dir"
rm -rf "$dir/src" "$dir/c" "$dir/lib" "$dir/__test__" "$dir/scripts" "$dir/logs"
(cd "$root" && git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
  | tar --null -T - -cf -) | tar -C "$dir" -xf -
ln -sfn "$root/node_modules" "$dir/node_modules"

# 2. Build: C with -fsanitize=address (build.rs, MICROVIUM_ASAN), Rust with
#    frame pointers and line tables so that allocation stacks are complete.
echo "test-asan: building the instrumented addon in $dir ..." >&2
(cd "$dir" && \
  MICROVIUM_ASAN=1 \
  CARGO_TARGET_DIR="$dir/target" \
  RUSTFLAGS="-C force-frame-pointers=yes" \
  CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
  CARGO_PROFILE_RELEASE_LTO=false \
  CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
  nice npx napi build --platform --release --js binding.js --dts binding.d.ts >"$dir/build.log" 2>&1) \
  || { tail -40 "$dir/build.log" >&2; exit 2; }
if [ "$(nm -D "$dir"/*.node | grep -c __asan_report)" = 0 ]; then
  echo "test-asan: the built addon is not instrumented (MICROVIUM_ASAN ignored?)" >&2
  exit 2
fi

# 3. Run the tests (every child process inherits the preload and options).
mkdir -p "$dir/logs"
cat >"$dir/logs/lsan.supp" <<'EOF'
# Node allocates the module record when an addon registers and never frees it.
leak:napi_module_register
EOF
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  # Every test file but those that run no addon code of their own: the
  # packaging one (the release artifact's glibc floor and npm pack), the
  # Rust unit tests (cargo: rustc itself crashes under the preloaded
  # libasan) and the typings (tsc).
  for f in "$dir"/__test__/*.test.js "$dir"/__test__/*.test.mjs; do
    case "$f" in */package.test.js|*/rust-units.test.js|*/types.test.js) ;; *) files+=("__test__/${f##*/}") ;; esac
  done
fi
set +e
(cd "$dir" && \
  LD_PRELOAD="$libasan" \
  MICROVIUM_TEST_ASAN=1 \
  ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:log_path=$dir/logs/asan:quarantine_size_mb=16:malloc_context_size=40:detect_stack_use_after_return=0:handle_segv=1:allow_user_segv_handler=0" \
  LSAN_OPTIONS="exitcode=0:suppressions=$dir/logs/lsan.supp:print_suppressions=0" \
  ASAN_SKIP_RSS=1 \
  nice node --expose-gc --test --test-concurrency=1 "${files[@]}")
tests=$?
set -e

# 4. Sort the reports: ASan errors always count; a leak counts if its stack
#    has a frame of the addon (module name or one of its symbols).
set +e
node - "$dir/logs" <<'EOF'
const fs = require('node:fs');
const path = require('node:path');
const dir = process.argv[2];
const ours = /microvium-runtime[^ ]*\.node|microvium_runtime::|\bglue_|\bmvm_|\bnapi::|\bnapi_sys::/;
let errors = 0, leaks = 0, nodeLeaks = 0;
for (const f of fs.readdirSync(dir).filter((f) => f.startsWith('asan.'))) {
  const text = fs.readFileSync(path.join(dir, f), 'utf8');
  for (const m of text.matchAll(/ERROR: AddressSanitizer[\s\S]*?(?=\n==\d+==ABORTING|$)/g)) {
    errors++;
    console.log(`\n--- ${f}: AddressSanitizer error\n${m[0]}`);
  }
  for (const block of text.split(/\n(?=(?:Direct|Indirect) leak of )/).slice(1)) {
    const b = block.split(/\n\s*\n/)[0];
    if (ours.test(b)) { leaks++; console.log(`\n--- ${f}: leak through the addon\n${b}`); } else nodeLeaks++;
  }
}
console.log(`\ntest-asan: ${errors} AddressSanitizer error(s), ${leaks} leak(s) through the addon, ` +
  `${nodeLeaks} leak record(s) of Node alone (ignored); logs in ${dir}`);
process.exitCode = errors || leaks ? 1 : 0;
EOF
sorted=$?
set -e
echo "test-asan: node --test exit status $tests" >&2
[ $tests -eq 0 ] && [ $sorted -eq 0 ]

#!/usr/bin/env bash
# Checks the glibc floor of a Linux (gnu) addon binary: the newest GLIBC_x.y
# symbol version it needs must not exceed MAX (default 2.17, the floor of
# napi-rs's cross toolchain and of `cargo zigbuild --target <triple>.2.17`).
#
#   scripts/check-glibc.sh microvium-runtime.linux-x64-gnu.node [2.17]
#
# Reads both the dynamic symbol table (objdump -T) and the version-needs
# section (readelf -V), so a version referenced only by one of them counts.
# Uses objdump/readelf from binutils; works on binaries of any architecture.
set -euo pipefail

file=${1:?usage: check-glibc.sh FILE.node [MAX_GLIBC]}
max=${2:-2.17}
[ -f "$file" ] || { echo "check-glibc: $file: no such file" >&2; exit 2; }

versions=$(
  {
    objdump -T "$file" 2>/dev/null || true
    readelf -V -W "$file" 2>/dev/null || true
  } | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/^GLIBC_//; s/\.$//' | sort -u -V || true
)
if [ -z "$versions" ]; then
  echo "check-glibc: $file needs no versioned glibc symbol (musl or static?)" >&2
  exit 1
fi
newest=$(printf '%s\n' "$versions" | tail -n 1)
highest=$(printf '%s\n%s\n' "$newest" "$max" | sort -V | tail -n 1)

echo "$file: needs glibc >= $newest (limit $max); versions referenced: $(echo $versions)"
if [ "$highest" != "$max" ]; then
  echo "check-glibc: FAIL: $file needs glibc $newest, newer than $max" >&2
  echo "symbols that need it:" >&2
  objdump -T "$file" | grep "GLIBC_$newest" | sed 's/^/  /' >&2 || true
  exit 1
fi

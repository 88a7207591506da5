#!/bin/sh
# Writing an engine patch (see c/patches/README.md). Each patch is a
# unified diff against the pristine microvium.c of the pinned package,
# with LF line endings, and touches lines no other patch touches.
#
#   sh scripts/engine-patch.sh edit NAME   # scratch/engine/NAME/microvium.c to edit
#                                          # (the pristine engine, plus NAME.patch
#                                          # if it exists)
#   sh scripts/engine-patch.sh diff NAME   # writes c/patches/NAME.patch from it,
#                                          # keeping the patch's header text
#   npm run build                          # applies every patch (build.rs)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:-}; name=${2:-}
[ -n "$cmd" ] && [ -n "$name" ] || { sed -n '2,12p' "$0"; exit 2; }
work="$root/scratch/engine/$name"
patch_file="$root/c/patches/$name.patch"
pristine="$root/node_modules/microvium/dist-c/microvium.c"
case "$cmd" in
  edit)
    mkdir -p "$work"
    tr -d '\r' < "$pristine" > "$work/pristine.c"
    cp "$work/pristine.c" "$work/microvium.c"
    if [ -f "$patch_file" ]; then
      (cd "$work" && patch -s microvium.c < "$patch_file")
    fi
    echo "$work/microvium.c"
    ;;
  diff)
    header=$(mktemp)
    if [ -f "$patch_file" ]; then
      sed -n '/^--- /q;p' "$patch_file" > "$header"
    else
      printf 'Defect: \nSymptom: \nFix: \nTest: \n\n' > "$header"
    fi
    { cat "$header"
      diff -u --label a/microvium.c --label b/microvium.c "$work/pristine.c" "$work/microvium.c" || true
    } > "$patch_file"
    rm -f "$header"
    echo "$patch_file"
    ;;
  *) sed -n '2,12p' "$0"; exit 2 ;;
esac

#!/bin/sh
# Links guardsh with the code a shim call runs laid out together, so that a call touches a few
# pages of the binary instead of pages all over it (each page first touched costs a page fault;
# BENCHMARKS.md). rustc calls this as its linker (install.sh: -C linker=...); the arguments are
# the C compiler driver's. build/shim-path.symbols lists the functions a shim call runs (from
# callgrind, by build/shim-path.sh), Rust names without their per-build hash: this script finds
# each one's full name in the objects being linked and hands lld an ordering file. If anything
# here fails, guardsh is linked as usual: the order only changes speed, never behaviour.
set -u
list=$(dirname "$0")/shim-path.symbols
order=$(mktemp 2>/dev/null) || exec cc "$@"
objects=
for arg in "$@"; do
  case $arg in *.o) objects="$objects $arg" ;; esac
done
# shellcheck disable=SC2086 # one word per object file
if [ -r "$list" ] && [ -n "$objects" ] && command -v nm >/dev/null 2>&1 &&
  nm --defined-only $objects 2>/dev/null | awk -v list="$list" '
    BEGIN { while ((getline line < list) > 0) hot[line] = 1 }
    { name = $NF; key = name; sub(/17h[0-9a-f]+E$/, "", key); if (key in hot) print name }
    END { for (name in hot) if (name !~ /^_ZN/) print name }' >"$order" && [ -s "$order" ]; then
  # A linker that does not know the option (GNU ld) fails; then link as usual.
  if cc "$@" -Wl,--symbol-ordering-file="$order" -Wl,--no-warn-symbol-ordering 2>/dev/null; then
    rm -f "$order"
    exit 0
  fi
fi
rm -f "$order"
exec cc "$@"

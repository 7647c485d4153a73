#!/bin/sh
# Links guardsh with the code a shim call runs laid out together, so that a call touches a few
# pages of the binary instead of pages all over it (each page first touched costs a page fault;
# BENCHMARKS.md). rustc calls this as its linker (install.sh: -C linker=...); the arguments are
# the C compiler driver's. build/shim-path.symbols lists the functions a shim call runs (from
# callgrind, by build/shim-path.sh), with Rust's per-instance hash: a generic function such as
# serde's `next_element` has hundreds of instances, of which a call runs a few, and placing all of
# them would spread the hot code over megabytes. A name whose hashed instances are all gone (the
# code changed since the list was made) falls back to every instance of that name. This script
# finds each one in the objects being linked and hands lld an ordering file. If anything here
# fails, guardsh is linked as usual: the order only changes speed, never behaviour.
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
    function key(n) { sub(/17h[0-9a-f]+E$/, "", n); return n }
    BEGIN { while ((getline line < list) > 0) { exact[line] = 1; hot[key(line)] = 1 } }
    {
      name = $NF; k = key(name)
      if (name in exact) { print name; found[k] = 1 }
      else if (k in hot) { spare[k] = spare[k] " " name }
    }
    END {
      for (k in spare) if (!(k in found)) { n = split(spare[k], all, " "); for (i = 1; i <= n; i++) print all[i] }
      for (name in exact) if (name !~ /^_ZN/) print name
    }' >"$order" && [ -s "$order" ]; then
  # The ordering needs lld. rustc links its glibc target with its own lld already; for musl
  # (install.sh's build) it leaves the system linker, so point the driver at the same lld.
  lld=
  case " $* " in
    *" -fuse-ld="*) ;;
    *)
      gcc_ld=$(rustc --print sysroot 2>/dev/null)/lib/rustlib/$(rustc -vV 2>/dev/null | sed -n 's/^host: //p')/bin/gcc-ld
      [ -x "$gcc_ld/ld.lld" ] && lld="-B$gcc_ld -fuse-ld=lld"
      ;;
  esac
  # A linker that does not know the option (GNU ld) fails; then link as usual.
  # shellcheck disable=SC2086 # two words, or none
  if cc "$@" $lld -Wl,--symbol-ordering-file="$order" -Wl,--no-warn-symbol-ordering 2>/dev/null; then
    rm -f "$order"
    exit 0
  fi
fi
rm -f "$order"
exec cc "$@"

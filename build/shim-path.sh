#!/bin/bash
# Regenerates build/shim-path.symbols: the functions guardsh runs in a shim call, for
# build/link-shim-path-first.sh to lay out together. Needs valgrind, and a static guardsh built
# as install.sh builds it (target/static/release/guardsh). Run from the repository root after
# changes to the shim path; a stale list only costs speed (BENCHMARKS.md).
set -euo pipefail
guardsh=${1:-target/static/release/guardsh}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/home/.config/guardsh" "$tmp/shims" "$tmp/real"
cp rules.toml.example "$tmp/home/.config/guardsh/rules.toml"
printf 'int main(void) { return 0; }\n' >"$tmp/true.c"
cc -O2 -static -o "$tmp/true" "$tmp/true.c"
for tool in kubectl aws git helm psql; do
  ln -s "$(realpath "$guardsh")" "$tmp/shims/$tool"
  ln -s "$tmp/true" "$tmp/real/$tool"
done
sleep 0.1
n=0
profile() {
  n=$((n + 1))
  # A command that asks gives up at once (no human here).
  env -i HOME="$tmp/home" PATH="$tmp/shims:$tmp/real:/usr/bin:/bin" GUARDSH_APPROVAL_TIMEOUT=1 timeout 60 \
    valgrind --tool=callgrind --demangle=no \
    --dump-before=execve --callgrind-out-file="$tmp/cg.$n" "$@" </dev/null >/dev/null 2>&1 || true
}
# Twice each: the first call of a policy compiles it, the second is the cached call.
for _ in 1 2; do
  profile "$tmp/shims/kubectl" get pods
  profile "$tmp/shims/kubectl" delete ns prod
  profile "$tmp/shims/kubectl" apply -f /dev/null --dry-run=client
  profile "$tmp/shims/kubectl" get secrets -o yaml
  profile "$tmp/shims/aws" s3 ls
  profile "$tmp/shims/git" status
  profile "$tmp/shims/helm" list
  profile "$tmp/shims/psql" -c 'select 1'
done
cat "$tmp"/cg.* | grep -E '^c?fn=' | sed -E 's/^c?fn=\([0-9]+\) ?//' | grep -v -e '^$' -e '^(below' -e '^0x' -e "'" |
  LC_ALL=C sort -u >build/shim-path.symbols
wc -l build/shim-path.symbols

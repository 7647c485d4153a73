#!/usr/bin/env bash
# Builds guardsh, installs it, creates its shims, writes a starting policy (never over an existing
# one), shows it gating a command, and prints how to put the shims in front of an agent.
#
#   ./install.sh                 # installs to ~/.local/bin
#   PREFIX=/opt/guardsh ./install.sh
#
# Idempotent: run it again after pulling to upgrade. Downloads nothing but crates (cargo build).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
prefix=${PREFIX:-$HOME/.local}
bindir=$prefix/bin
config_dir=${XDG_CONFIG_HOME:-$HOME/.config}/guardsh

say() { printf '%s\n' "$*"; }

if [ -n "${GUARDSH_BINARY:-}" ]; then
  # For tests and packagers: install an already built binary.
  built=$GUARDSH_BINARY
else
  command -v cargo >/dev/null 2>&1 || { say "install.sh: cargo not found; install a Rust toolchain (https://rustup.rs) and re-run" >&2; exit 1; }
  say "==> building guardsh (release; the first build takes a few minutes)"
  # Statically linked where the toolchain can (glibc on Linux): it starts faster, and an agent
  # cannot load its own code into a shim with LD_PRELOAD (see BENCHMARKS.md and README).
  # (Read whole, not piped into `grep -q`: under pipefail, rustc's SIGPIPE would fail the test.)
  host=$(rustc -vV | sed -n 's/^host: //p')
  if [[ $host == *-linux-gnu ]] &&
    cargo rustc --release --locked --quiet --manifest-path "$repo/Cargo.toml" --bin guardsh \
      --target-dir "$repo/target/static" -- -C target-feature=+crt-static; then
    built=$repo/target/static/release/guardsh
  else
    say "install.sh: building a statically linked guardsh failed; building a dynamically linked one" >&2
    cargo build --release --locked --quiet --manifest-path "$repo/Cargo.toml"
    built=$repo/target/release/guardsh
  fi
fi

say "==> installing $bindir/guardsh"
mkdir -p "$bindir"
# Copy then rename, so a shim running during the upgrade never sees a half-written binary.
tmp=$(mktemp "$bindir/.guardsh.XXXXXX")
cp "$built" "$tmp"
chmod 0755 "$tmp"
mv -f "$tmp" "$bindir/guardsh"
guardsh=$bindir/guardsh

if [ -e "$config_dir/rules.toml" ]; then
  say "==> keeping your policy $config_dir/rules.toml"
else
  say "==> writing the starting policy $config_dir/rules.toml"
  mkdir -p "$config_dir"
  chmod 0700 "$config_dir"
  install -m 0600 "$repo/rules.toml.example" "$config_dir/rules.toml"
fi
say "==> checking the policy"
if ! "$guardsh" check-config; then
  say "install.sh: the policy above is invalid; fix it (or move it away to get the starting policy) and re-run" >&2
  exit 78
fi

say "==> creating shims"
"$guardsh" install
shim_dir=$("$guardsh" list | sed -n 's/^shim directory: //p')

say ""
say "==> guardsh in action: what an agent sees when it runs 'kubectl delete namespace prod'"
# The demo runs the shim only when guardsh says it denies the command, so it can never reach a
# real kubectl (an existing policy might allow more than the starting one).
verdict=$("$guardsh" check --json -- kubectl delete namespace prod || true)
if [ -L "$shim_dir/kubectl" ] && [[ $verdict == *'"decision":"deny"'* ]]; then
  say "\$ kubectl delete namespace prod"
  set +e
  "$shim_dir/kubectl" delete namespace prod
  status=$?
  set -e
  say "(exit status $status: denied, nothing ran)"
else
  "$guardsh" check -- kubectl delete namespace prod
fi
say ""
say "\$ guardsh check -- kubectl get pods"
"$guardsh" check -- kubectl get pods | grep -E '^(decision|reason):' || true

q_guardsh=$(printf '%q' "$guardsh")
say ""
say "==> done. Start your agent through guardsh:"
say "    $q_guardsh run -- claude"
say "  (any agent, from the project directory: it runs in a sandbox, and guardsh decides and runs"
say "  every guarded command outside it). If something else launches your agent, run this in the"
say "  shell it starts from instead, without the sandbox (not your own working shell: there,"
say "  commands that need approval would be refused for you too):"
say "    eval \"\$($q_guardsh shellenv)\""
say "Check the setup with:  $q_guardsh doctor"
case ":$PATH:" in
  *":$bindir:"*) ;;
  *) say "Note: $bindir is not on your PATH; add it to run 'guardsh' by name." ;;
esac

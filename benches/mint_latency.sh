#!/bin/bash
# Latency of a psql read through `guardsh run --no-sandbox`, with and without [mint.psql]
# (docs/minting.md). As root, with PostgreSQL installed (Debian: /usr/lib/postgresql/*/bin), from
# the repository root, after building guardsh as install.sh does.
# Usage: benches/mint_latency.sh [GUARDSH]
set -euo pipefail
guardsh=$(realpath "${1:-target/static/release/guardsh}")
rules=$(realpath rules.toml.example)
bin=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d | sort | tail -n 1)
top=$(mktemp -d)
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
db="$top/db"
mkdir -p "$db" && chmod 755 "$db" "$top" && chown 65534:65534 "$db"
as_nobody "$bin/initdb" -D "$db/data" -U postgres --auth=trust --no-locale -E UTF8 --no-sync >/dev/null
as_nobody "$bin/pg_ctl" -D "$db/data" -o "-c listen_addresses='' -k $db -c fsync=off" -l "$db/log" -w start >/dev/null
stop() { as_nobody "$bin/pg_ctl" -D "$db/data" -m immediate stop >/dev/null; rm -rf "$top"; }
trap stop EXIT
sql() { "$bin/psql" -h "$db" -U postgres -d postgres -X -q -At -c "$1"; }
sql "create role admin login createrole password 'adminpw';
     create table t (id int primary key, n int); insert into t select g, g from generate_series(1, 5) g;
     alter table t owner to admin;"
printf 'local all postgres trust\nlocal all all scram-sha-256\n' >"$(sql 'show hba_file')"
sql "select pg_reload_conf()" >/dev/null
for mode in plain mint; do
  home="$top/home-$mode" real="$top/real-$mode"
  mkdir -p "$home/.config/guardsh" "$real"
  cp "$rules" "$home/.config/guardsh/rules.toml"
  args="-h $db -U admin -d postgres -At -c 'select count(*) from t'"
  if [ "$mode" = mint ]; then
    printf '\n[mint.psql]\nprovider = "postgres"\nhost = "%s"\ndbname = "postgres"\nadmin_user = "admin"\n' "$db" \
      >>"$home/.config/guardsh/rules.toml"
    args="-At -c 'select count(*) from t'"
  fi
  ln -sf "$bin/psql" "$real/psql"
  HOME="$home" PATH="$real:/usr/bin:/bin" "$guardsh" install >/dev/null 2>&1 || true
  chown -R 65534:65534 "$home"
  script="for i in 1 2 3; do psql $args >/dev/null; done; s=\$(date +%s%N)
    for i in \$(seq 20); do psql $args >/dev/null || echo FAILED; done; e=\$(date +%s%N)
    echo $mode: \$(( (e - s) / 20000 )) us per psql"
  as_nobody env -i HOME="$home" PATH="$home/.local/share/guardsh/shims:$real:/usr/bin:/bin" PGPASSWORD=adminpw \
    "$guardsh" run --no-sandbox --warn-unguarded-shells -- sh -c "$script" 2>&1 | grep -E "per psql|FAILED|rror"
done
echo "minted roles left: $(sql "select count(*) from pg_roles where rolname like 'guardsh\_%'")"

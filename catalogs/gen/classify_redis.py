#!/usr/bin/env python3
"""Print the command catalog of redis-cli (the Redis commands it sends).

    python3 catalogs/gen/classify_redis.py > catalogs/redis-cli.tsv

Reads only catalogs/source/redis-cli.json and catalogs/overrides/redis-cli.tsv. The extract was
made from Redis's own command definitions (src/commands/*.json of a pinned release) by
catalogs/gen/extract_redis.py (its docstring says how it was run).

Paths are lower case (`config get`); guardsh lower-cases redis words before looking them up.
A subcommand is its container's name and its own (`client list`). redis-cli's own options
(`-h`, `--scan`, `--rdb`...) are not rows: the flags column is empty.

Classes (catalogs/README.md), in order:
1. the override file (`path<TAB>class<TAB>reason`, a person's decision, reason kept in the note);
2. a container that needs a subcommand (arity -2: `CONFIG` alone is an error) is `group`;
3. a command with the ADMIN flag (ACL @admin @dangerous) must have an override: the generator
   stops otherwise, so every dangerous command carries a person's decision;
4. a `help` subcommand is `read`;
5. WRITE: `destroy` when a key spec of the command removes data (key-spec flag DELETE or RM:
   del, unlink, getdel, pops, hdel/srem/zrem/lrem, trims, rename), else `write` (set, hset,
   lpush, incr, expire, xadd, *store commands...);
6. READONLY: `read`;
7. MAY_REPLICATE without WRITE (publish, scripts) must have an override, like ADMIN;
8. anything else is `read`: Redis flags every command that changes the dataset WRITE (replicas
   and read-only mode depend on it), so a command that is neither WRITE nor ADMIN changes only
   the connection's own state (select, multi, client setname, subscribe) or nothing (ping, info).
   The @scripting commands among them that load or run code have overrides.
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from common import emit, load_overrides  # noqa: E402


def classify(c, overrides):
    path = c["path"]
    flags = set(c["command_flags"])
    if path in overrides:
        cls, reason = overrides[path]
        return cls, f"hand: {reason}"
    if c["has_subcommands"] and c["arity"] == -2:
        return "group", "container: needs a subcommand"
    if "ADMIN" in flags:
        sys.exit(f"redis-cli: {path!r} is ADMIN (@dangerous): add a decision to catalogs/overrides/redis-cli.tsv")
    if path.split()[-1] == "help" and c["container"]:
        return "read", "help"
    if "WRITE" in flags:
        removes = [k for k in ("DELETE", "RM") if k in c["key_flags"]]
        if removes:
            return "destroy", f"flag: WRITE, key spec: {removes[0]}"
        return "write", "flag: WRITE"
    if "READONLY" in flags:
        return "read", "flag: READONLY"
    if "MAY_REPLICATE" in flags:
        sys.exit(f"redis-cli: {path!r} is MAY_REPLICATE: add a decision to catalogs/overrides/redis-cli.tsv")
    return "read", "flags: neither WRITE nor ADMIN"


def main():
    with open(os.path.join(ROOT, "catalogs", "source", "redis-cli.json"), encoding="utf-8") as f:
        src = json.load(f)
    overrides = load_overrides(os.path.join(ROOT, "catalogs", "overrides", "redis-cli.tsv"))
    paths = {c["path"] for c in src["commands"]}
    unknown = sorted(set(overrides) - paths)
    if unknown:
        sys.exit(f"redis-cli: overrides name no command: {unknown}")
    rows = [(c["path"], *classify(c, overrides)) for c in src["commands"]]
    emit(
        "redis-cli",
        ["redis-cli"],
        f"{src['repo']} {src['tag']} (commit {src['commit']}): {src['source']}",
        "python3 catalogs/gen/classify_redis.py",
        False,
        [(p, cls, [], note) for p, cls, note in rows],
    )


if __name__ == "__main__":
    main()

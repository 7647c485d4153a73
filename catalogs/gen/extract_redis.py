#!/usr/bin/env python3
"""Extract the Redis command table from Redis's own command definitions (src/commands/*.json).

    python3 catalogs/gen/extract_redis.py SRC_DIR TAG COMMIT > catalogs/source/redis-cli.json

How it was run (2026-12-03, no network): redis/redis was brought in with the session's GitHub
`fetch` tool (a bare git directory), the release tag written out with
`git --git-dir=REPO archive 7.4.1 src/commands src/server.c | tar -x -C SRC`, and then:

    python3 catalogs/gen/extract_redis.py SRC 7.4.1 74b289a0e12f9f65a6daeec6a66cadc76792f644 \
        > catalogs/source/redis-cli.json

Each src/commands/NAME.json holds one command `{"NAME": {...}}`; a subcommand (`CONFIG GET`)
has `"container": "CONFIG"`. Per command the extract keeps: the lower-case path (`config get`),
the container, group, arity (a container with arity -2 needs a subcommand: alone it errors),
command_flags, doc_flags (DEPRECATED...), acl_categories, and the union of its key_specs' flags
(RO/RW/OW/RM and ACCESS/INSERT/UPDATE/DELETE). acl_categories are the file's explicit ones plus
the implicit ones Redis adds at startup (server.c setImplicitACLCategories, 7.4.1): WRITE ->
@write, READONLY (not @scripting) -> @read, ADMIN -> @admin @dangerous, PUBSUB -> @pubsub,
FAST -> @fast, BLOCKING -> @blocking, not @fast -> @slow. Output is sorted by path.
Needs only the stdlib; it is not run in CI.
"""

import glob
import json
import os
import sys


def implicit_categories(flags, cats):
    cats = set(cats)
    if "WRITE" in flags:
        cats.add("WRITE")
    if "READONLY" in flags and "SCRIPTING" not in cats:
        cats.add("READ")
    if "ADMIN" in flags:
        cats |= {"ADMIN", "DANGEROUS"}
    if "PUBSUB" in flags:
        cats.add("PUBSUB")
    if "FAST" in flags:
        cats.add("FAST")
    if "BLOCKING" in flags:
        cats.add("BLOCKING")
    if "FAST" not in cats:
        cats.add("SLOW")
    return cats


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    src, tag, commit = sys.argv[1:]
    cmds = []
    for fn in sorted(glob.glob(os.path.join(src, "src", "commands", "*.json"))):
        with open(fn, encoding="utf-8") as f:
            doc = json.load(f)
        for name, d in doc.items():
            container = d.get("container", "")
            path = f"{container} {name}" if container else name
            flags = sorted(d.get("command_flags", []))
            keyflags = set()
            for ks in d.get("key_specs", []):
                keyflags |= set(ks.get("flags", []))
            cmds.append({
                "path": path.lower(),
                "container": container.lower(),
                "group": d.get("group", ""),
                "arity": d.get("arity"),
                "command_flags": flags,
                "doc_flags": sorted(d.get("doc_flags", [])),
                "acl_categories": sorted(implicit_categories(flags, d.get("acl_categories", []))),
                "key_flags": sorted(keyflags),
                "summary": d.get("summary", ""),
            })
    cmds.sort(key=lambda c: c["path"].encode("utf-8"))
    containers = {c["container"] for c in cmds if c["container"]}
    for c in cmds:
        c["has_subcommands"] = c["path"] in containers
    out = {
        "tool": "redis-cli",
        "repo": "redis/redis",
        "tag": tag,
        "commit": commit,
        "source": "src/commands/*.json",
        "commands": cmds,
    }
    # one command a line, so diffs stay readable
    head = json.dumps({k: v for k, v in out.items() if k != "commands"}, sort_keys=True)
    sys.stdout.write(head[:-1] + ', "commands": [\n')
    sys.stdout.write(",\n".join(json.dumps(c, sort_keys=True) for c in cmds))
    sys.stdout.write("\n]}\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Print the command catalog of fly (flyctl), doctl, supabase, railway or terraform.

    python3 catalogs/gen/classify_more.py TOOL > catalogs/TOOL.tsv      (TOOL: fly doctl supabase railway terraform)

Reads only catalogs/source/SRC.json (SRC is flyctl for fly, else TOOL) and
catalogs/overrides/TOOL.tsv. The source extract was made from each CLI's source code by
catalogs/gen/extract_more.py (its docstring says how it was run, from which commits).

Classes (catalogs/README.md): a command that only groups others is `group`. Otherwise, in order:
1. the override file (`path<TAB>class<TAB>reason`, a person's decision, reason kept in the note);
2. the command's verb: its last word, or that word's first dash-separated part (`delete-node`),
   looked up in VERBS;
3. the first word of its short help (`List Droplet backups`), looked up in VERBS;
4. `write`, with note `default: no known verb` (stricter than read; every such row was reviewed
   and the ones that are not plain remote changes have an override).
A read or write row whose path names a secret (SECRET_WORDS: secrets, tokens, passwords,
credentials, kubeconfig...) becomes `credential`, unless an override says otherwise.
An alias row (any spelling with one or more words replaced by an alias) has the class of the
command it names and the note `alias of PATH`.
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from common import emit, load_overrides  # noqa: E402

TOOLS = {
    # catalog name: (source json, shims, flag style)
    "fly": ("flyctl", ["fly", "flyctl"], "posix"),
    "doctl": ("doctl", ["doctl"], "posix"),
    "supabase": ("supabase", ["supabase"], "posix"),
    "railway": ("railway", ["railway"], "posix"),
    "terraform": ("terraform", ["terraform"], "literal"),
}

VERBS = {}
for cls, words in {
    "destroy": """delete destroy remove rm purge reset down unset drop terminate uninstall revoke
        release erase wipe prune undeploy restore recover del dangerous""",
    "read": """list ls show status logs log get view describe info inspect history events whoami
        version help search find check diff plan metrics ping dig doctor docs usage lookup
        retrieve display print fetch-info lint test validate options sizes regions kernels
        neighbors actions backups snapshots get-upgrades rate-limits plans completion
        balance invoices summary sbom vulns vulnsummary files available charges
        report stats bloat blocking cache-hit calls locks outliers""",
    "write": """create deploy up set scale restart add update new start stop apply push import
        allocate attach enable disable cancel resize rename move mv tag untag assign unassign
        promote fork clone extend cordon uncordon suspend resume kill reboot power-cycle
        power-off power-on shutdown snapshot rebuild install upgrade failover renew publish
        unpublish link configure edit replace append redeploy rollback run invite accept
        activate reverify detach migrate switchover convert revert sync trigger wake sleep
        register generate retry commit lock backup""",
}.items():
    for w in words.split():
        VERBS[w] = cls

# the first word of a short help, when the command's own name is not a verb
SHORT_VERBS = {}
for cls, words in {
    "read": "list lists show shows get gets view views display displays retrieve retrieves print prints describe describes check checks",
    "write": "create creates add adds update updates set sets enable enables deploy deploys start starts",
    "destroy": "delete deletes destroy destroys remove removes reset resets purge purges",
}.items():
    for w in words.split():
        SHORT_VERBS[w] = cls

STRICT = {"group": 0, "read": 1, "local": 2, "write": 3, "destroy": 4, "credential": 4, "code": 4}

SECRET_WORDS = {"secret", "secrets", "token", "tokens", "password", "passwords", "credential",
                "credentials", "creds", "kubeconfig", "api-keys", "api-key", "env-file", "dotenv"}


def verb_class(path, short):
    last = path.split()[-1]
    for w in (last, last.split("-")[0]):
        if w in VERBS:
            return VERBS[w], f"verb: {w}"
    first = (short or "").strip().split(" ")[0].lower().rstrip(",.:")
    if first in SHORT_VERBS:
        return SHORT_VERBS[first], f"short help: {first}"
    return "write", "default: no known verb"


def flag_words(flags, style):
    out = []
    for long, short, takes in flags:
        eq = "=" if takes else ""
        if style == "literal":
            out.append(long + eq)
            continue
        if long:
            out.append(f"--{long}{eq}")
        if short:
            out.append(f"-{short}{eq}")
    return out


def main():
    tool = sys.argv[1]
    src_name, shims, style = TOOLS[tool]
    with open(os.path.join(ROOT, "catalogs", "source", src_name + ".json"), encoding="utf-8") as f:
        src = json.load(f)
    overrides = load_overrides(os.path.join(ROOT, "catalogs", "overrides", tool + ".tsv"))
    cmds = {c["path"]: c for c in src["commands"]}
    unused = set(overrides) - set(cmds)
    if unused:
        sys.exit(f"{tool}: overrides for unknown paths: {sorted(unused)}")

    rows = {}
    classes = {}
    for path in sorted(cmds):
        c = cmds[path]
        if path in overrides:
            cls, why = overrides[path]
            note = f"hand: {why}"
        elif not c["runnable"]:
            cls, note = "group", "no run function" if style != "literal" else "prints help"
        elif c.get("implicit") and path.split()[0] == "completion":
            cls, note = "read", "prints a shell completion script"
        else:
            cls, note = verb_class(path, c.get("short", ""))
            if cls in ("read", "write"):
                hit = [w for w in path.split() if w in SECRET_WORDS]
                if hit:
                    cls, note = "credential", f"names a secret: {hit[0]}; {note}"
        if c.get("hidden"):
            note += "; hidden"
        if c.get("experimental"):
            note += "; experimental builds only"
        if c.get("implicit"):
            note += "; added by the CLI framework"
        classes[path] = cls
        rows[path] = (path, cls, flag_words(c["flags"], style), note)

    # alias spellings: every combination of a word or one of its aliases, at every level
    targets = {}
    for path in sorted(cmds):
        words = path.split()
        choices = []
        for i in range(len(words)):
            prefix = " ".join(words[:i + 1])
            choices.append([words[i]] + list(cmds[prefix]["aliases"] if prefix in cmds else []))
        spellings = [[]]
        for ch in choices:
            spellings = [s + [w] for s in spellings for w in ch]
        for sp in spellings:
            alias = " ".join(sp)
            if alias != path and alias not in cmds:
                targets.setdefault(alias, []).append(path)
    for alias, paths in targets.items():
        # Two sibling commands may share an alias (doctl: `registry g` is garbage-collection's
        # and get's); the CLI takes the first one registered, which the extract does not keep:
        # take the stricter class and the union of the flags.
        best = max(paths, key=lambda p: STRICT[classes[p]])
        flags = set()
        for p in paths:
            flags.update(rows[p][2])
        note = f"alias of {best}" if len(paths) == 1 else f"alias of {' or '.join(paths)} (ambiguous: the stricter class)"
        rows[alias] = (alias, classes[best], flags, note)

    source = f"{src['repo']} {src['version']} (commit {src['commit']}): extracted by catalogs/gen/extract_more.py {src_name}"
    emit(tool, shims, source, f"python3 catalogs/gen/classify_more.py {tool}", False, rows.values())


if __name__ == "__main__":
    main()

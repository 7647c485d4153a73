#!/usr/bin/env python3
"""Command catalog of a cobra CLI (kubectl, helm, gh, docker) from its extracted command tree.

    python3 catalogs/gen/cobra.py TOOL > catalogs/TOOL.tsv

Reads only catalogs/source/TOOL.json (written by catalogs/gen/cobra_extract.py from the CLI's
source at a pinned release; its top says how it was run) and catalogs/overrides/TOOL.tsv. No
network.

Classes (catalogs/README.md):
- a command that runs nothing itself (no Run/RunE, or one that only prints help) is a `group`;
- a person's decision in catalogs/overrides/TOOL.tsv wins over everything else;
- else the command's name, word by word (`delete-context`: `delete`), in VERBS;
- else the first word of its Short text, in SHORT_VERBS;
- else its parent's name, then its grandparent's, ... in VERBS (`create secret generic`: `create`);
- a command with no subcommands whose Run only prints help, or that has no Run (`kubectl options`,
  the help topics of gh), is `read`;
- else `write` (stricter than read and local), with note `default: no verb`.
Aliases are rows of their own, expanded through the whole subtree (`gh cs list`), with note
`alias of PATH`. A row's flags are the command's own and the persistent flags of its ancestors
except the root (whose flags are the tool's global ones).
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import emit, load_overrides  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Command-name words. Checked on the whole name first, then on each `-`-separated word.
VERBS = {
    "destroy": """delete remove rm rmi prune uninstall purge destroy drop terminate reset wipe erase
        down leave evict""",
    "read": """get list ls view show describe status logs log inspect diff history top version
        explain ps events info stats search port df whoami can-i help images volumes wait watch
        checks verify browse current-context options dump services credits cluster-info
        api-resources api-versions trusted-root completion bash zsh fish powershell""",
    "write": """create apply set label annotate scale edit patch deploy install upgrade update
        rollback undo restart pause resume approve deny cordon uncordon taint expose replace
        autoscale push publish merge close reopen comment review ready lock unlock archive
        unarchive rename fork sync transfer pin unpin develop add enable disable cancel rerun
        link unlink copy promote demote join init upload mark reconcile clone""",
    "local": """build pull tag save load import export template lint package kill stop start
        unpause commit use""",
    "credential": """token login git-credential""",
    "code": """exec attach debug port-forward proxy run ssh api jupyter""",
}
WORD_CLASS = {}
for _cls, _words in VERBS.items():
    for _w in _words.split():
        WORD_CLASS[_w] = _cls

# First word of the Short text.
SHORT_VERBS = {
    "read": "display print list show get view describe check search output inspect",
    "write": "create modify update set add apply",
    "destroy": "delete remove",
}
SHORT_CLASS = {}
for _cls, _words in SHORT_VERBS.items():
    for _w in _words.split():
        SHORT_CLASS[_w] = _cls


def flag_spellings(flags):
    out = []
    for name, short, takes, _persistent in flags:
        eq = "=" if takes else ""
        out.append(f"--{name}{eq}")
        if short:
            out.append(f"-{short}{eq}")
    return out


def classify(node, path, overrides):
    if path in overrides:
        cls, reason = overrides[path]
        return cls, f"hand: {reason}"
    if node.get("hand"):
        hand_note = f"hand: {node['hand']}"
    else:
        hand_note = ""
    if node["run"] in ("", "help") and not node["children"]:
        return "read", (hand_note or "no subcommands and no Run (or one that only prints help): prints help")
    if node["run"] in ("", "help"):
        why = "no Run" if node["run"] == "" else "Run only prints help"
        return "group", (hand_note or f"group: {why}")
    names = path.split()
    for depth, name in enumerate(reversed(names)):
        words = [name] + name.split("-")
        for w in words:
            if w in WORD_CLASS:
                where = f" (of {' '.join(names[:len(names) - depth])})" if depth else ""
                return WORD_CLASS[w], (hand_note or f"verb: {w}{where}")
        if depth == 0:
            cls = short_class(node)
            if cls:
                return cls[0], (hand_note or cls[1])
    return "write", (hand_note or "default: no verb")


def short_class(node):
    short = node.get("short", "").split()
    if short:
        w = short[0].lower().strip(".,:")
        if w.endswith("s") and w[:-1] in SHORT_CLASS:
            w = w[:-1]
        if w in SHORT_CLASS:
            return SHORT_CLASS[w], f"short: {short[0]}"
    return None


def walk(node, names_paths, canon, inherited, overrides, rows, seen_canon):
    """names_paths: list of typed paths (tuples) reaching this node; canon: its canonical path."""
    flags = list(node["flags"]) + inherited
    canon_s = " ".join(canon)
    cls, note = classify(node, canon_s, overrides)
    if node.get("via"):
        note = f"{note}; {node['via']}"
    spell = flag_spellings(f for f in flags)
    for typed in names_paths:
        typed_s = " ".join(typed)
        rows.append((typed_s, cls, spell, note if typed == canon else f"alias of {canon_s}"))
    seen_canon.add(canon_s)
    child_inherited = inherited + [f for f in node["flags"] if f[3]]
    names = {c["name"] for c in node["children"]}
    for ch in node["children"]:
        spellings = [ch["name"]] + [a for a in ch["aliases"] if a != ch["name"] and a not in names]
        sub = [t + (s,) for t in names_paths for s in spellings]
        walk(ch, sub, canon + (ch["name"],), child_inherited, overrides, rows, seen_canon)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: cobra.py TOOL")
    tool = sys.argv[1]
    with open(os.path.join(ROOT, "catalogs", "source", f"{tool}.json"), encoding="utf-8") as f:
        data = json.load(f)
    overrides = load_overrides(os.path.join(ROOT, "catalogs", "overrides", f"{tool}.tsv"))
    rows = []
    seen = set()
    root = data["root"]
    names = {c["name"] for c in root["children"]}
    for ch in root["children"]:
        spellings = [ch["name"]] + [a for a in ch["aliases"] if a != ch["name"] and a not in names]
        walk(ch, [(s,) for s in spellings], (ch["name"],), [], overrides, rows, seen)
    unused = sorted(set(overrides) - seen)
    if unused:
        sys.exit(f"{tool}: overrides for paths not in the catalog: {unused}")
    source = f"{data['repo']} {data['tag']} (commit {data['commit']}): {data['dir']}"
    if data.get("also"):
        source += f"; {data['also']}"
    if data.get("compose"):
        c = data["compose"]
        source += f"; compose plugin: {c['repo']} {c['tag']} (commit {c['commit']}): {c['dir']}"
    emit(tool, [tool], source, f"python3 catalogs/gen/cobra.py {tool}", False, rows)


if __name__ == "__main__":
    main()

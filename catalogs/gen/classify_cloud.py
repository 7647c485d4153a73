#!/usr/bin/env python3
"""Print the command catalog of az, gcloud, heroku or vercel (catalogs/README.md has the format).

  python3 catalogs/gen/classify_cloud.py az|gcloud|heroku|vercel > catalogs/TOOL.tsv

Reads catalogs/source/TOOL.json (the CLI's command table, extracted from its source by
catalogs/gen/extract_cloud.py, whose docstring says how it was run) and
catalogs/overrides/TOOL.tsv (`path<TAB>class<TAB>reason`: a person's decision; an override whose
path is not in the extract adds a row, for commands the CLI gets from elsewhere, such as
heroku's bundled oclif plugins). Standard library only, no network.

A command is classified, in this order, by: an override; being a group that runs nothing;
credential words (a secret is printed or written: tokens, keys, passwords, connection strings,
secret values); code words (ssh, exec, run-command, invoke, psql, connect); then its verb (the
last word of the path, or its first hyphen-separated part: `delete`, `list-keys`), refined by
what the source says of it (gcloud's base class or YAML command type and `read_only` hint,
az's confirmation prompt, which only destructive commands ask for); then the first word of its
help text. A verb that says nothing is `write`, the middle of the scale; destroy verbs win over
all but credential and code.
"""

import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import emit, load_overrides  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

DESTROY = {
    "delete", "remove", "rm", "destroy", "purge", "drop", "terminate", "reset", "restore",
    "uninstall", "wipe", "erase", "truncate", "reimage", "clear", "flush", "unset", "prune",
    "deprovision", "decommission", "kill", "evict", "overwrite", "rollback-and-delete",
    "undeploy", "unregister", "unlink-and-delete", "import", "replace", "trim", "forget",
    "expunge", "cleanup", "clean", "unpublish", "deallocate-and-delete", "offboard", "discard",
    "abandon", "revoke", "detach", "disconnect", "dissociate", "disassociate", "unbind", "unassign",
    "unshare", "delete-all", "leave", "cancel", "rotate", "retire", "break", "force-delete",
}
# `cancel` (an operation, a build), `revoke` (access), `detach` (a disk, an add-on's attachment):
# each undoes something that others depend on; stricter than write.
READ = {
    "list", "ls", "show", "get", "describe", "logs", "log", "status", "inspect", "whoami", "info",
    "search", "diff", "plan", "check", "validate", "help", "version", "view", "tail", "history",
    "explain", "which", "find", "lookup", "count", "stats", "usage", "preview", "what-if",
    "estimate", "compare", "current", "audit", "wait", "poll", "query-status", "test",
    "test-iam-permissions", "print-settings", "summarize", "browse", "open", "docs", "read",
    "dry-run", "lint", "analyze", "suggest", "recommend", "watch", "ping", "verify", "evaluate",
    "get-iam-policy", "check-name", "check-availability", "exists", "summary", "report", "outputs",
    "plans", "regions", "stacks", "services", "sizes", "types", "skus", "locations", "zones",
    "versions", "list-all", "metrics", "events", "topology", "troubleshoot", "trace", "traces",
    "dashboard", "feedback", "hash", "inventory", "activity", "trends", "capabilities", "quota",
    "quotas", "limits", "benchmark", "doctor", "diagnose", "overview", "examples", "guidance",
    "httpstat", "compatibility", "query",
}
LOCAL = {  # exact names only: elsewhere these words are remote operations (`billing projects link`)
    "login", "logout", "configure", "completion", "completions", "autocomplete", "interactive",
    "download",
}
LOCAL_EXTRA = {
    "vercel": {"link", "unlink", "init", "build", "switch"},
    "heroku": {"local"},
    "az": {"init"},
    "gcloud": set(),
}
# First parts of a hyphenated name that make it a read (`list-deleted`, `show-usage`).
READ_PREFIX = {
    "list", "show", "get", "describe", "check", "validate", "test", "view", "print", "search",
    "find", "lookup", "query", "preview", "count", "explain", "inspect", "verify", "diff",
    "compare", "estimate", "analyze", "summarize", "browse", "read", "fetch", "wait", "poll",
    "tail", "watch", "dry", "what", "stream", "display",
}
# First words of a help text, when the command's name is not a verb (`heroku apps`: "list your apps").
HELP_READ = {"list", "lists", "display", "displays", "show", "shows", "get", "gets", "print",
             "prints", "view", "views", "describe", "describes", "output", "outputs", "check",
             "checks", "retrieve", "retrieves", "fetch", "fetches", "return", "returns", "see",
             "inspect", "query", "search", "lookup", "read", "reads", "wait", "waits", "tail"}
HELP_DESTROY = {"delete", "deletes", "remove", "removes", "destroy", "destroys", "permanently",
                "purge", "purges", "drop", "drops", "reset", "resets", "restore", "restores",
                "cancel", "cancels", "revoke", "revokes", "detach", "detaches", "uninstall",
                "uninstalls", "clear", "clears", "unset", "unsets"}

# A secret is printed or written (the name alone says so).
CREDENTIAL_WORDS = {
    "get-access-token", "print-access-token", "print-identity-token", "access-token", "token",
    "get-credentials", "credentials", "list-credentials", "show-credentials",
    "get-user-credentials", "list-keys", "show-keys", "get-keys", "keys", "regenerate-key",
    "regenerate-keys", "renew-keys", "renew-key", "list-secrets", "show-secrets", "get-secret",
    "get-secrets", "secrets", "show-connection-string", "connection-string",
    "list-connection-strings", "connection-strings", "show-connection-strings",
    "get-connection-string", "generate-sas", "sas", "get-password", "password",
    "reset-password", "set-password", "reset-windows-password", "kubeconfig", "get-kubeconfig",
    "get-publishing-profile", "list-publishing-profiles", "list-publishing-credentials",
    "reset-ssh-key", "get-token", "print-token", "generate-token", "create-token", "login-token",
    "get-upgrade-credentials", "export-credentials", "show-secret", "get-auth-token", "pull",
    "reveal", "list-access-keys", "list-account-keys", "get-shared-key", "shared-key",
    "list-auth-keys", "regenerate-auth-key", "show-auth-token", "get-auth-key", "get-sas",
    "generate-sas-token", "signed-url", "sign-url", "sign-blob", "sign-jwt", "get-key",
    "show-key-value", "generate-wallet", "generate-provider-access-token", "generate-login-token",
}
# Words of a group that hold secrets: reading a member prints one (`keyvault secret show`).
SECRET_GROUPS = {"secret", "secrets", "credential", "credentials", "password", "passwords",
                 "token", "tokens", "keys", "key", "access-keys", "connection-string",
                 "connection-strings", "sas", "hmac-keys", "api-keys", "auth-keys", "sdk-keys", "appsettings"}
SECRET_READ = {"show", "get", "list", "ls", "access", "download", "export", "describe", "view",
               "reveal", "backup", "create", "regenerate", "renew", "rotate", "add", "set",
               "get-value", "value", "print", "retrieve"}
# `VERB-...-SECRET` names: `get-key-string`, `renew-credentials`, `create-token`.
SECRET_VERB = {"get", "show", "list", "print", "generate", "create", "regenerate", "renew",
               "reset", "rotate", "set", "add", "download", "export", "retrieve", "fetch", "reveal"}
SECRET_PART = {"credential", "credentials", "password", "passwords", "token", "tokens", "secret",
               "secrets", "keys", "key", "sas", "wallet", "kubeconfig", "keyfile"}
# Groups named like secrets whose members are not (key names, KMS key metadata, SSH public keys).
NOT_SECRET_GROUPS = {"kms", "ssh-key", "sshkey", "ssh-keys", "gpg-keys"}
CODE_WORDS = {
    "ssh", "exec", "run-command", "invoke", "console", "shell", "psql", "execute",
    "scp", "run", "start-iap-tunnel", "port-forward", "tunnel", "rest", "api", "curl",
    "run-script", "serial-port", "cli", "sql-query", "eval", "exec-command", "dev",
    "remote-shell", "bash", "call", "connect-to-serial-port",
}


def classify(path, words, help_text, hints, sep=" ", tool=""):
    """(class, note) from the name, the source's hints and the help text."""
    w = words[-1]
    parts = w.split("-")
    first = parts[0]
    parents = set(words[:-1])
    if (w in CREDENTIAL_WORDS or (first == "print" and "token" in parts)) and not (parents & NOT_SECRET_GROUPS):
        return "credential", f"credential: {w}"
    if first in SECRET_VERB and set(parts[1:]) & SECRET_PART and "iam" not in parts \
            and not (parents & NOT_SECRET_GROUPS):
        return "credential", f"credential: {w}"
    if (parents & SECRET_GROUPS) and not (parents & NOT_SECRET_GROUPS) and "iam-policy" not in w \
            and (w in SECRET_READ or first in SECRET_READ):
        return "credential", f"credential: {w} in {' '.join(sorted(parents & SECRET_GROUPS))}"
    if w in CODE_WORDS or (first in CODE_WORDS and first not in ("run", "api", "dev", "cli")):
        return "code", f"code: {w}"
    kind = hints.get("kind", "")
    if w == "set-iam-policy" or kind == "SET_IAM_POLICY":
        return "destroy", "replaces the whole IAM policy"
    if kind == "TopicCommand":
        return "read", "help topic"
    if w in DESTROY or first in DESTROY or parts[-1] in DESTROY:
        return "destroy", f"verb: {w}"
    if kind in ("DeleteCommand", "DELETE"):
        return "destroy", f"{kind}"
    if hints.get("confirmation"):
        if w in READ or first in READ:
            return "read", f"verb: {w}"
        return "destroy", "asks for confirmation"
    if kind in ("ListCommand", "DescribeCommand", "LIST", "DESCRIBE", "GET_IAM_POLICY", "WAIT", "CacheCommand",
                "TopicCommand"):
        return "read", f"{kind}"
    if w in READ or (first in READ_PREFIX and len(parts) > 1):
        if hints.get("read_only") is False:
            return "write", f"verb: {w}, but not read_only"
        return "read", f"verb: {w}"
    if hints.get("read_only") is True:
        return "read", "read_only hint"
    if w in LOCAL or w in LOCAL_EXTRA.get(tool, ()):
        return "local", f"verb: {w}"
    if kind in ("CreateCommand", "UpdateCommand", "CREATE", "UPDATE", "SET_IAM_POLICY", "ADD_IAM_POLICY_BINDING"):
        return "write", f"{kind}"
    if kind in ("REMOVE_IAM_POLICY_BINDING",):
        return "destroy", f"{kind}"
    if first in ("undelete", "recover", "unarchive", "restart", "start", "create", "update", "set", "add"):
        return "write", f"verb: {w}"
    hw = (help_text or "").lower().split()
    h0 = re.sub(r"[^a-z-]", "", hw[0]) if hw else ""
    if h0 in HELP_DESTROY:
        return "destroy", f"help: {h0}"
    if h0 in HELP_READ:
        return "read", f"help: {h0}"
    if w in ("create", "update", "set", "deploy", "scale", "add"):
        return "write", f"verb: {w}"
    return "write", f"verb: {w}" if first in WRITE_VERBS else "default: write"


WRITE_VERBS = {
    "create", "update", "set", "deploy", "scale", "add", "start", "stop", "restart", "enable",
    "disable", "attach", "assign", "grant", "move", "rename", "copy", "upload", "publish",
    "promote", "rollback", "redeploy", "resize", "register", "apply", "patch", "edit", "modify",
    "tag", "label", "swap", "failover", "approve", "reject", "invite", "transfer", "lock",
    "unlock", "suspend", "resume", "pause", "reboot", "redeploy", "deallocate", "generalize",
    "capture", "sync", "backup", "snapshot", "clone", "migrate", "mount", "unmount", "associate",
    "bind", "connect", "join", "open", "close", "put", "post", "send", "submit", "trigger",
    "retry", "refresh", "renew", "restart", "repair", "upgrade", "downgrade", "install", "share",
    "accept", "decline", "mark", "commit", "release", "acquire", "lease", "break", "stage",
    "promote", "enable-", "config", "configure", "setup", "request", "provision", "regenerate",
    "generate", "reconcile", "reboot", "resend", "rerun", "build", "undelete", "recover",
}


def overrides(tool):
    return load_overrides(os.path.join(ROOT, "catalogs", "overrides", f"{tool}.tsv"))


def load(tool):
    with open(os.path.join(ROOT, "catalogs", "source", f"{tool}.json"), encoding="utf-8") as f:
        return json.load(f)


def finish(tool, tools, src, source_line, rows, ov):
    out = []
    seen = set()
    for path, cls, flags, note in rows:
        if path in ov:
            cls, note = ov[path][0], f"hand: {ov[path][1]}"
        out.append((path, cls, flags, note))
        seen.add(path)
    for path, (cls, reason) in ov.items():
        if path not in seen:
            if not reason.startswith("@oclif/"):
                sys.exit(f"{tool}: override of {path!r}: no such command (only a bundled plugin's command may be added)")
            out.append((path, cls, [], f"hand: {reason}"))
    emit(tool, tools, source_line, f"python3 catalogs/gen/classify_cloud.py {tool}", False, out)


# --- per tool -----------------------------------------------------------------------------


def gen_az():
    src, ov = load("az"), overrides("az")
    rows = []
    for c in src["commands"]:
        if not c["path"]:
            continue  # util's `command_group('')` holds top-level commands (`az rest`)
        if c["group"]:
            rows.append((c["path"], "group", [], "group"))
            continue
        cls, note = classify(c["path"], c["path"].split(), c["help"],
                             {"confirmation": c.get("confirmation"), "kind": ""}, tool="az")
        rows.append((c["path"], cls, [], note))
    line = (f"{src['repo']} {src['version']} ({src['commit']}; read from PyPI's {src['wheel']}): "
            "azure/cli/command_modules/*/commands.py and aaz/latest; flags not extracted")
    finish("az", ["az"], src, line, rows, ov)


GCLOUD_TYPE = {
    "DeleteCommand": "DeleteCommand", "ListCommand": "ListCommand", "DescribeCommand": "DescribeCommand",
    "CreateCommand": "CreateCommand", "UpdateCommand": "UpdateCommand", "CacheCommand": "CacheCommand",
    "TopicCommand": "TopicCommand",
}


def gen_gcloud():
    src, ov = load("gcloud"), overrides("gcloud")
    rows = [("alpha", "group", [], "release track group"), ("beta", "group", [], "release track group")]
    prefix = {"ga": "", "beta": "beta ", "alpha": "alpha "}
    for c in src["commands"]:
        for track, t in c["tracks"].items():
            path = prefix[track] + c["path"]
            if c["group"]:
                rows.append((path, "group", [], "group"))
                continue
            kind = t["type"] if t["type"].isupper() else GCLOUD_TYPE.get(t["type"], "")
            hints = {"kind": kind}
            if "read_only" in t:
                hints["read_only"] = t["read_only"]
            words = c["path"].split()
            if c["path"].startswith("emulators "):
                cls, note = "local", "a local emulator"
            elif (words[:2] in (["dataproc", "jobs"], ["dataproc", "batches"]) and "submit" in words[:-1]) \
                    or words == ["builds", "submit"]:
                cls, note = "code", "submits a job or build that runs the given code"
            else:
                cls, note = classify(c["path"], words, c["help"], hints, tool="gcloud")
            rows.append((path, cls, [], note))
    line = (f"{src['repo']} {src['version']} (commit {src['commit']}), an unofficial mirror of the "
            f"Google Cloud SDK release {src['version']}: lib/surface (GA, beta, alpha tracks); flags not extracted")
    # an override of `X` holds for `beta X` and `alpha X` too, unless they have their own
    for path, _, _, _ in rows:
        base = path.split(" ", 1)[1] if path.split(" ", 1)[0] in ("alpha", "beta") and " " in path else None
        if base in ov and path not in ov:
            ov[path] = ov[base]
    have = {r[0] for r in rows}
    for path in list(ov):
        if path not in have and ("beta " + path in have or "alpha " + path in have):
            del ov[path]  # only in beta or alpha: applied there
    finish("gcloud", ["gcloud"], src, line, rows, ov)


def gen_heroku():
    src, ov = load("heroku"), overrides("heroku")
    rows = []
    for c in src["commands"]:
        if c.get("group"):
            rows.append((c["path"], "group", [], "topic without a command"))
            continue
        words = re.split(r"[:]", c["path"])
        cls, note = classify(c["path"], words, c["help"], {}, sep=":", tool="heroku")
        rows.append((c["path"], cls, c["flags"], note))
        for a in c["aliases"]:
            rows.append((a, None, c["flags"], f"alias of {c['path']}"))
    rows = resolve_aliases(rows, ov)
    # a topic that is also an alias (`pg` of `pg:info`) runs that command
    aliased = {p for p, _, _, n in rows if n.startswith("alias of ")}
    rows = [r for r in rows if not (r[1] == "group" and r[0] in aliased)]
    line = f"{src['repo']} v{src['version']} (commit {src['commit']}): src/commands"
    finish("heroku", ["heroku"], src, line, rows, ov)


def resolve_aliases(rows, ov):
    """An alias row (class None) takes its target's class, after overrides."""
    cls_of = {}
    for path, cls, _, _ in rows:
        if cls is not None:
            cls_of[path] = ov[path][0] if path in ov else cls
    out = []
    for path, cls, flags, note in rows:
        if cls is None:
            target = note[len("alias of "):]
            cls = cls_of[target]
        out.append((path, cls, flags, note))
    return out


def gen_vercel():
    src, ov = load("vercel"), overrides("vercel")
    by_path = {c["path"]: c for c in src["commands"]}
    rows = []
    for c in src["commands"]:
        words = c["path"].split()
        if c.get("subcommands"):
            if c.get("default"):
                target = c["path"] + " " + c["default"]
                rows.append((c["path"], None, by_path[target]["flags"], f"alias of {target}"))
            elif c["arguments"] or c["flags"]:
                # subcommands, and arguments or options of its own: it runs too (`deploy`)
                cls, note = classify(c["path"], words, c["help"], {}, tool="vercel")
                rows.append((c["path"], cls, c["flags"], note))
            else:
                rows.append((c["path"], "group", c["flags"], "group"))
        else:
            cls, note = classify(c["path"], words, c["help"], {}, tool="vercel")
            rows.append((c["path"], cls, c["flags"], note))
    # aliases at every level: each spelling of each word
    spell = {}
    for c in src["commands"]:
        spell[c["path"]] = [c["path"].split()[-1]] + c["aliases"]
    for c in src["commands"]:
        words = c["path"].split()
        combos = [[]]
        for k in range(1, len(words) + 1):
            combos = [x + [s] for x in combos for s in spell[" ".join(words[:k])]]
        for combo in combos:
            p = " ".join(combo)
            if p != c["path"]:
                rows.append((p, None, next(r[2] for r in rows if r[0] == c["path"]), f"alias of {c['path']}"))
    # default subcommands name their target; chase alias chains
    cls_of = {p: (ov[p][0] if p in ov else cls) for p, cls, _, _ in rows if cls is not None}
    out = []
    for path, cls, flags, note in rows:
        if cls is None:
            target = note[len("alias of "):]
            while target not in cls_of:
                target = next(r[3][len("alias of "):] for r in rows if r[0] == target)
            cls = cls_of[target]
            if path in by_path and by_path[path].get("default"):
                note = f"runs {target} (default subcommand)"
        out.append((path, cls, flags, note))
    line = f"{src['repo']} cli {src['version']} (commit {src['commit']}): packages/cli/src/commands/*/command.ts"
    finish("vercel", ["vercel"], src, line, out, ov)


if __name__ == "__main__":
    gens = {"az": gen_az, "gcloud": gen_gcloud, "heroku": gen_heroku, "vercel": gen_vercel}
    if len(sys.argv) != 2 or sys.argv[1] not in gens:
        sys.exit(__doc__)
    gens[sys.argv[1]]()

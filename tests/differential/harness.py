#!/usr/bin/env python3
"""Differential test driver (issue 17): generates variants of harmless and destructive intents
for kubectl, git, psql and aws, asks `guardsh check --json` for each, runs the allowed ones (and a
sample of the held ones) for real against oracles the tools cannot fool, and writes the table.

Called by tests/differential.rs with one argument, a JSON file describing the hermetic test world
(see `main`). Python standard library only. Deterministic for a given seed."""

import collections
import hashlib
import json
import os
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracles  # noqa: E402

# What the built-in pack's posture holds: destruction, secrets shown, code. Writes (a created or
# changed object, added rows, a new S3 object) run by design (README "Posture"): the oracles
# report them ("mutation", "db-added", "s3-added", "secret-fetch") without failing.
DESTRUCTIVE_EFFECTS = {
    "deletion", "exec", "secret-read", "lost-commit", "discarded-work", "remote-force", "remote-delete",
    "ref-deleted", "tag-deleted", "db-changed", "s3-changed",
}


class Variant:
    __slots__ = ("tool", "argv", "env", "stdin", "prep", "intent", "family", "known")

    def __init__(self, tool, argv, intent, family, env=None, stdin=None, prep=None, known=False):
        self.tool, self.argv, self.intent, self.family = tool, list(argv), intent, family
        self.env, self.stdin, self.prep, self.known = dict(env or {}), stdin, list(prep or []), known

    def key(self):
        return json.dumps([self.tool, self.argv, self.env, self.stdin, self.prep], sort_keys=True)


def pick(rng, alts):
    return rng.choice(alts)


BOOLEAN_OPTIONS = {"--all", "--overwrite", "--recursive", "--force", "--with-decryption", "--summarize", "--quiet",
                   "--delete", "--no-paginate", "-A", "--all-namespaces", "--validate=false"}


def insert_globals(rng, words, globals_, max_n=2, positions=None):
    """Global options put in random positions (after argv[0]); `positions` limits where. An
    option with a separate value is never split by another one."""
    groups = [[w] for w in words]
    for _ in range(rng.randint(0, max_n)):
        g = pick(rng, globals_)
        # Not between an option and what may be its value.
        free = [i for i in range(1, len(groups) + 1)
                if not (groups[i - 1][-1].startswith("-") and "=" not in groups[i - 1][-1]
                        and groups[i - 1][-1] not in BOOLEAN_OPTIONS and len(groups[i - 1]) == 1)]
        at = pick(rng, positions(groups) if positions else free)
        groups.insert(at, list(g))
    return [w for g in groups for w in g]


# ---------------------------------------------------------------------------------------------
# kubectl
# ---------------------------------------------------------------------------------------------

K_RES = {
    "pods": ["pods", "pod", "po", "Pods", "PODS", "pods.v1.", "Pod", "po.v1", "pod.v1."],
    "deploy": ["deployments", "deployment", "deploy", "deployments.apps", "deployments.v1.apps", "Deployment.apps",
               "DEPLOY", "deploy.apps"],
    "secrets": ["secrets", "secret", "Secret", "SECRETS", "secrets.v1.", "secret.v1", "SeCrEtS"],
    "ns": ["namespaces", "namespace", "ns", "NS", "namespaces.v1.", "Namespace"],
    "cm": ["configmaps", "configmap", "cm", "CM", "configmaps.v1", "ConfigMap"],
    "nodes": ["nodes", "node", "no", "NODES"],
    "sa": ["serviceaccounts", "serviceaccount", "sa", "SA"],
}
K_DRY = ["--dry-run=client", "--dry-run=server", "--dry-run", "--dry-run=none", "--dry-run=None", "--dry-run=false",
         "--dry-run=true", "--dry-run=CLIENT", "--dry-run=Server"]
# A Secret manifest in the spellings YAML and JSON allow: what `get -f`/`describe -f` read.
SECRET_DOCS = [
    "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n",
    '{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}}',
    '{"apiVersion": "v1", "kind": "Secr\\u0065t", "metadata": {"name": "db"}}',
    "{apiVersion: v1, kind: Secret, metadata: {name: db}}\n",
    "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata:\n    name: db\n",
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n",
    'apiVersion: "v1"\n"kind": "Secret"\nmetadata: {"name": "db"}\n',
    "# x\napiVersion: v1 # c\nkind: Secret   # c\nmetadata:\n  name: db\n",
    "apiVersion: v1\nkind: &k Secret\nmetadata:\n  name: db\n",
    "apiVersion: v1\r\nkind: Secret\r\nmetadata:\r\n  name: db\r\n",
    "apiVersion: v1\nkind: >-\n  Secret\nmetadata:\n  name: db\n",
    "apiVersion: v1\nkind: ConfigMap\nkind: Secret\nmetadata:\n  name: db\n",
    "apiVersion: v1\nkind: !!str Secret\nmetadata:\n  name: db\n",
    "apiVersion: v1\n? kind\n: Secret\nmetadata:\n  name: db\n",
    "apiVersion: v1\nkind: 'Secret'\nmetadata:\n  name: \"db\"\n",
    "---\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n...\n",
    "apiVersion: v1\nkind: SecretList\nitems:\n- metadata:\n    name: db\n",
]
ROLE_DOC = ("apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: r\n  namespace: default\n"
            "rules:\n- apiGroups: ['']\n  resources: ['secrets']\n  verbs: ['get']\n")
# Global options that take a value, each given a value that reads like a harmless verb.
K_VALUE_FLAGS = ["-n", "--namespace", "--as", "--as-group", "--as-uid", "--token", "--username", "--password",
                 "--tls-server-name", "--cache-dir", "--log-dir", "--vmodule", "--profile-output", "--user",
                 "--cluster", "--context", "--log-file", "--certificate-authority", "--client-key",
                 "--client-certificate", "--log-backtrace-at", "--kubeconfig", "-s", "--server", "--request-timeout",
                 "--profile", "-v", "--v", "--log-flush-frequency", "--one-output", "--skip-headers",
                 "--add-dir-header", "--alsologtostderr", "--logtostderr", "--stderrthreshold"]
K_OUT = ["json", "yaml", "name", "wide", "jsonpath={.metadata.name}"]

MANIFEST = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n  namespace: default\ndata:\n  k: evil\n"
MANIFEST_JSON = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"k": "x"}})


def kubectl_intents():
    R = "{R:%s}"
    h, d, s = "harmless", "destructive", "secret"
    return [
        (h, "get", ["get", R % "pods"]),
        (h, "get-name", ["get", R % "pods", "web"]),
        (h, "get-slash", ["get", "{R/:pods}web"]),
        (h, "get-deploy", ["get", R % "deploy"]),
        (h, "get-o", ["get", R % "pods", "{O}"]),
        (h, "get-cm-o", ["get", R % "cm", "cfg", "{O}"]),
        (h, "get-list", ["get", R % "pods" + "," + R % "cm"]),
        (h, "get-ns", ["get", R % "ns"]),
        (h, "get-nodes", ["get", R % "nodes"]),
        (h, "describe", ["describe", R % "pods", "web"]),
        (h, "logs", ["logs", "web"]),
        (h, "get-events", ["get", "events"]),
        (h, "api-resources", ["api-resources"]),
        (h, "version", ["version"]),
        (h, "raw-get", ["get", "--raw", "/api/v1/namespaces/default/pods"]),
        (h, "can-i", ["auth", "can-i", "delete", "pods"]),
        (h, "config-view", ["config", "view"]),
        (h, "get-all", ["get", "all"]),
        (h, "describe-sa", ["describe", R % "sa", "default"]),
        (h, "rollout-history", ["rollout", "history", "deploy/api"]),
        (h, "dry-run-delete", ["delete", R % "pods", "web", "{DRY}"]),
        (h, "dry-run-scale", ["scale", R % "deploy", "api", "--replicas=0", "{DRY}"]),
        (h, "dry-run-cm", ["create", "configmap", "x", "--from-literal=a=b", "{DRY}"]),
        (s, "get-f-secret", ["get", "-f", "{SECRETFILE}"]),
        (s, "describe-f-secret", ["describe", "-f", "{SECRETFILE}"]),
        (d, "delete-now", ["delete", R % "pods", "web", "{NOW}"]),
        (d, "auth-reconcile", ["auth", "reconcile", "-f", "{ROLEFILE}"]),
        (d, "verb-as-value", ["{VV}", "delete", R % "pods", "web"]),
        (h, "diff", ["diff", "-f", "{FILE}"]),
        (d, "delete", ["delete", R % "pods", "web"]),
        (d, "delete-slash", ["delete", "{R/:pods}web"]),
        (d, "delete-deploy", ["delete", R % "deploy", "api"]),
        (d, "delete-ns", ["delete", R % "ns", "prod"]),
        (d, "delete-all", ["delete", R % "pods", "--all"]),
        (d, "delete-list", ["delete", R % "pods" + "," + R % "cm", "--all"]),
        (d, "delete-file", ["delete", "-f", "{FILE}"]),
        (d, "delete-raw", ["delete", "--raw", "/api/v1/namespaces/default/pods/web"]),
        (d, "scale", ["scale", R % "deploy", "api", "--replicas=0"]),
        (d, "scale-slash", ["scale", "{R/:deploy}api", "--replicas", "0"]),
        (d, "label", ["label", R % "pods", "web", "a=b", "--overwrite"]),
        (d, "annotate", ["annotate", R % "pods", "web", "a=b"]),
        (d, "patch", ["patch", R % "deploy", "api", "-p", '{"spec":{"replicas":0}}']),
        (d, "apply", ["apply", "--validate=false", "-f", "{FILE}"]),
        (d, "create-f", ["create", "--validate=false", "-f", "{FILE}"]),
        (d, "replace", ["replace", "--validate=false", "-f", "{FILE}"]),
        (d, "create-cm", ["create", "configmap", "x", "--from-literal=a=b"]),
        (d, "set-image", ["set", "image", "deploy/api", "c=evil"]),
        (d, "set-env", ["set", "env", "deploy/api", "A=B"]),
        (d, "rollout-restart", ["rollout", "restart", "deploy/api"]),
        (d, "cordon", ["cordon", "node-1"]),
        (d, "taint", ["taint", R % "nodes", "node-1", "k=v:NoSchedule"]),
        (d, "expose", ["expose", "deploy", "api", "--port=80"]),
        (d, "run", ["run", "evil", "--image=nginx"]),
        (d, "exec", ["exec", "web", "--", "true"]),
        (d, "edit", ["edit", R % "cm", "cfg"]),
        (d, "create-token", ["create", "token", "default"]),
        (s, "get-secret", ["get", R % "secrets"]),
        (s, "get-secret-name", ["get", R % "secrets", "db"]),
        (s, "get-secret-o", ["get", R % "secrets", "db", "{O}"]),
        (s, "get-secret-slash", ["get", "{R/:secrets}db"]),
        (s, "describe-secret", ["describe", R % "secrets", "db"]),
        (s, "raw-secret", ["get", "--raw", "/api/v1/namespaces/default/secrets/db"]),
        (s, "get-list-secret", ["get", R % "pods" + "," + R % "secrets"]),
    ]


# Environment that makes a read run a program. (Not here: a kubeconfig `exec` credential plugin;
# kubectl 1.32 did not run one against the plain-HTTP stand-in.)
K_HOSTILE = [
    ("destructive", "external-diff", ["diff", "-f", "m.yaml"],
     {"KUBECTL_EXTERNAL_DIFF": "@KUBECTLBIN@ -s @KUBE@ --token t -n default delete pod web --wait=false"}),
]


def gen_kubectl(rng, n, ctx):
    intents = kubectl_intents()
    server = "@KUBE@"  # the stand-in's address, filled in when run (keys stay the same across runs)
    altkc = "alt-kubeconfig"
    globals_ = [
        ["-n", "default"], ["-ndefault"], ["--namespace=default"], ["--namespace", "default"], ["-n=default"],
        ["--context", "c"], ["--context=c"], ["--kubeconfig", altkc], ["--kubeconfig=" + altkc],
        ["--request-timeout=10s"], ["--request-timeout", "10s"], ["-v", "0"], ["-v=0"], ["--v=0"], ["-v0"], ["-v=9"], ["--v", "8"],
        ["--insecure-skip-tls-verify"], ["-s", server], ["--server=" + server], ["--server", server],
        ["--cluster=c"], ["--user=u"], ["--token=t"], ["--match-server-version=false"],
        ["--warnings-as-errors=false"], ["--as=admin"], ["--as-group=system:masters"], ["--profile=none"],
        ["--cache-dir", "kcache"], ["--disable-compression"], ["--namespace=default", "--namespace=default"],
        ["--log-flush-frequency=5s"], ["--tls-server-name=x"],
    ]
    out = []
    for i in range(n):
        if i % 29 == 28:
            intent, family, args, env = K_HOSTILE[(i // 29) % len(K_HOSTILE)]
            prep = [["cwd", "m.yaml", MANIFEST]]
            words = insert_globals(rng, ["kubectl"] + args, globals_[:12], max_n=1)
            out.append(Variant("kubectl", words, intent, family, dict(env), None, prep))
            continue
        intent, family, tmpl = intents[i % len(intents)]
        words = ["kubectl"]
        prep, stdin, env = [], None, {}
        for t in tmpl:
            while "{R:" in t:
                a = t.index("{R:")
                b = t.index("}", a)
                t = t[:a] + pick(rng, K_RES[t[a + 3:b]]) + t[b + 1:]
            if t.startswith("{R/:"):
                b = t.index("}")
                t = pick(rng, K_RES[t[4:b]]) + "/" + t[b + 1:]
            if t == "{DRY}":
                words.append(pick(rng, K_DRY))
                continue
            if t == "{NOW}":
                words += pick(rng, [["--now"], ["--grace-period=0", "--force"], ["--wait=false"], ["--cascade=orphan"],
                                    ["--ignore-not-found"]])
                continue
            if t == "{VV}":
                f = pick(rng, K_VALUE_FLAGS)
                val = pick(rng, ["get", "describe", "version", "logs"])
                words += pick(rng, [[f, val], [f + "=" + val]]) if f.startswith("--") else [f, val]
                continue
            if t in ("{SECRETFILE}", "{ROLEFILE}"):
                body = pick(rng, SECRET_DOCS) if t == "{SECRETFILE}" else ROLE_DOC
                name = pick(rng, ["s.yaml", "s.json", "s.yml", "s.txt"])
                if rng.random() < 0.15:
                    stdin, name = body, "-"
                else:
                    prep.append(["cwd", name, body])
                words.append(name)
                continue
            if t == "{O}":
                words += pick(rng, [["-o", o] for o in K_OUT] + [["-o" + o] for o in K_OUT[:3]] +
                              [["--output=" + o] for o in K_OUT[:3]] + [["--output", "yaml"]])
                continue
            if t == "{FILE}":
                form = rng.randrange(4)
                if form == 0:
                    stdin = MANIFEST
                    t = "-"
                else:
                    name = pick(rng, ["m.yaml", "m.json", "dir"])
                    body = MANIFEST_JSON if name == "m.json" else MANIFEST
                    prep.append(["cwd", name if name != "dir" else "dir/m.yaml", body])
                    t = name
                if words[-1] == "-f" and rng.random() < 0.4:
                    words[-1] = pick(rng, ["--filename=" + t, "-f" + t])
                    continue
            words.append(t)
        words = insert_globals(rng, words, globals_, max_n=3)
        if family == "edit":
            env["KUBE_EDITOR"] = pick(rng, ["sed -i s/v/evil/", "sh -c 'echo \"  z: y\" >> \"$1\"' sh"])
        if "--kubeconfig" in " ".join(words) or rng.random() < 0.08:
            prep.append(["cwd", altkc, oracles.kubeconfig("@KUBE@")])
            if "--kubeconfig" not in " ".join(words):
                env["KUBECONFIG"] = altkc
        if "--cache-dir" in words:
            prep.append(["cwd", "kcache/.keep", ""])
        if rng.random() < 0.06 and "--" not in words and not words[-1].startswith("-"):
            # `--` before the last argument: everything after it is an argument.
            words.insert(len(words) - 1, "--")
        out.append(Variant("kubectl", words, intent, family, env, stdin, prep))
    return out


def run_kubectl(ctx, v, direct, ws=None):
    log = ctx["kube_log"]
    log.take()
    code, err, effects = run_tool(ctx, v, direct, ctx["cwd"])
    r = (code, err)
    for (method, path, query, body) in log.take():
        c = oracles.classify_kube(method, path, query, body)
        if c:
            effects.append(f"{c}:{method} {path}")
    return r, sorted(set(effects))


# ---------------------------------------------------------------------------------------------
# git
# ---------------------------------------------------------------------------------------------

MARK_M, MARK_U, MARK_I, MARK_T = "modified-work-3f1\n", "untracked-work-9c2\n", "ignored-work-77a\n", "stashed-work-5d0\n"
PAYLOAD = ": > m.txt"  # what the hostile configuration runs: discards the modified file's work


def git_plain(args, cwd, env=None):
    e = {"PATH": "/usr/bin:/bin", "HOME": cwd, "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "t",
         "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"}
    e.update(env or {})
    r = subprocess.run(["git"] + args, cwd=cwd, env=e, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"git {args}: {r.stderr}")
    return r.stdout


def git_template(base):
    """A work repository with a bare remote: commits on main, an unmerged branch, a tag, a stash,
    a modified file, a staged file, an untracked and an ignored file."""
    remote, work = os.path.join(base, "remote.git"), os.path.join(base, "work")
    git_plain(["init", "-q", "--bare", "-b", "main", remote], base)
    git_plain(["init", "-q", "-b", "main", work], base)
    w = lambda p, t: open(os.path.join(work, p), "w").write(t)  # noqa: E731
    for i in range(3):
        w("m.txt", f"commit {i}\n")
        w(".gitignore", "*.log\n")
        git_plain(["add", "."], work)
        git_plain(["commit", "-q", "-m", f"c{i}"], work)
    git_plain(["tag", "v1", "HEAD~1"], work)
    git_plain(["remote", "add", "origin", remote], work)
    git_plain(["checkout", "-q", "-b", "feature"], work)
    w("f.txt", "feature only\n")
    git_plain(["add", "f.txt"], work)
    git_plain(["commit", "-q", "-m", "feature"], work)
    git_plain(["checkout", "-q", "-b", "other"], work)
    w("o.txt", "other only\n")
    git_plain(["add", "o.txt"], work)
    git_plain(["commit", "-q", "-m", "other"], work)
    git_plain(["push", "-q", "origin", "main", "feature", "other", "v1"], work)
    git_plain(["checkout", "-q", "main"], work)
    git_plain(["branch", "-q", "-D", "other"], work)
    w("m.txt", "commit 3\n")
    git_plain(["commit", "-q", "-am", "ahead"], work)  # main is one ahead of origin/main
    w("t.txt", MARK_T)
    git_plain(["add", "t.txt"], work)
    git_plain(["stash", "-q"], work)
    w("s.txt", "staged-work-1b4\n")
    git_plain(["add", "s.txt"], work)
    w("m.txt", MARK_M)
    w("u.txt", MARK_U)
    w("i.log", MARK_I)
    return base


def git_state(work, remote):
    env = {"GIT_DIR": os.path.join(work, ".git")}

    def g(*a, repo=None):
        e = dict(env) if repo is None else {"GIT_DIR": repo}
        try:
            return git_plain(list(a), work, e)
        except RuntimeError:
            return ""

    refs = dict(l.split(" ", 1)[::-1] for l in g("for-each-ref", "--format=%(objectname) %(refname)").splitlines())
    rrefs = dict(l.split(" ", 1)[::-1] for l in
                 g("for-each-ref", "--format=%(objectname) %(refname)", repo=remote).splitlines())
    # Stash entries live in refs/stash's reflog: an older entry is kept, not lost.
    stashes = g("log", "-g", "--format=%H", "refs/stash").split() if "refs/stash" in refs else []
    reach = set(g("rev-list", "--all", "HEAD", *stashes).split())
    # History proper: what branches, tags and HEAD reach (a stash entry's loss is judged by its content).
    history = set(g("rev-list", "--exclude=refs/stash", "--all", "HEAD").split())
    objs = set(l.split()[0] for l in g("rev-list", "--objects", "--all", "HEAD", *stashes).splitlines() if l)
    index = set(l.split()[1] for l in g("ls-files", "-s").splitlines() if l)
    files = set()
    for root, dirs, names in os.walk(work):
        if ".git" in dirs:
            dirs.remove(".git")
        for n in names:
            try:
                files.add(open(os.path.join(root, n), "rb").read())
            except OSError:
                pass
    return {"refs": refs, "rrefs": rrefs, "reach": reach, "history": history, "objs": objs | index, "files": files}


def blob_id(text):
    data = text.encode()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def git_effects(before, after, remote):
    eff = []
    lost = before["history"] - after["reach"]
    if lost:
        eff.append(f"lost-commit:{len(lost)}")
    for mark in (MARK_M, MARK_U, MARK_I, MARK_T):
        if mark.encode() not in after["files"] and blob_id(mark) not in after["objs"]:
            eff.append("discarded-work:" + mark.split("-")[0])
    for ref, oid in before["refs"].items():
        if ref.startswith("refs/remotes/") or ref == "refs/stash":
            continue
        if ref not in after["refs"]:
            eff.append(("tag-deleted:" if ref.startswith("refs/tags/") else "ref-deleted:") + ref)
    for ref, oid in before["rrefs"].items():
        new = after["rrefs"].get(ref)
        if new is None:
            eff.append("remote-delete:" + ref)
        elif new != oid:
            ff = subprocess.run(["git", "--git-dir", remote, "merge-base", "--is-ancestor", oid, new],
                                capture_output=True).returncode == 0
            eff.append(("remote-ff:" if ff else "remote-force:") + ref)
    for ref in after["rrefs"]:
        if ref not in before["rrefs"]:
            eff.append("remote-new:" + ref)
    return sorted(eff)


def git_intents():
    h, d = "harmless", "destructive"
    return [
        (h, "status", [["status"], ["", "-s", "--short", "--porcelain", "-sb", "--untracked-files=all"]]),
        (h, "log", [["log"], ["", "--oneline", "-1", "-n1", "--format=%H", "-n 2", "--all"]]),
        (h, "diff", [["diff"], ["", "--stat", "--cached", "HEAD", "--name-only"]]),
        (h, "show", [["show"], ["", "HEAD", "--stat", "v1"]]),
        (h, "branch", [["branch"], ["", "-a", "--list", "-v", "-r", "-vv"]]),
        (h, "tag", [["tag"], ["", "-l", "--list", "-n"]]),
        (h, "stash-list", [["stash"], ["list"]]),
        (h, "remote", [["remote"], ["", "-v", "show origin", "get-url origin"]]),
        (h, "fetch", [["fetch"], ["", "origin", "--all", "-q"]]),
        (h, "rev-parse", [["rev-parse"], ["HEAD", "--abbrev-ref HEAD", "--show-toplevel"]]),
        (h, "ls-files", [["ls-files"], ["", "-m", "-o"]]),
        (h, "blame", [["blame"], ["m.txt", "-- m.txt"]]),
        (h, "grep", [["grep"], ["commit", "-n commit"]]),
        (h, "reflog", [["reflog"], ["", "show", "-5"]]),
        (h, "cat-file", [["cat-file"], ["-p HEAD", "-t HEAD"]]),
        (h, "show-ref", [["show-ref", "for-each-ref", "ls-remote origin"]]),
        (h, "config-get", [["config"], ["--get user.name", "-l", "--list"]]),
        (h, "switch-new", [["switch -c newb", "checkout -b newb", "branch newb"]]),
        (h, "commit-empty", [["commit"], ["--allow-empty -m x", "-q --allow-empty -m x"]]),
        (h, "add", [["add"], ["u.txt", "-A", "."]]),
        (h, "stash-push", [["stash"], ["", "push", "-u", "push -m x"]]),
        (h, "push-ff", [["push"], ["origin main", "-q origin main", "origin HEAD:main"]]),
        (h, "restore-staged", [["restore --staged s.txt", "reset -q s.txt", "reset HEAD s.txt"]]),
        (d, "reset-hard", [["reset"], ["--hard", "--har", "--hard -q", "-q --hard", "--ha"], ["", "HEAD", "HEAD~1", "@"]]),
        (d, "checkout-path", [["checkout"], ["-- m.txt", ".", "HEAD -- m.txt", "-f", "m.txt", "-- ."]]),
        (d, "checkout-force", [["checkout", "switch"], ["-f feature", "--force feature", "--discard-changes feature"]]),
        (d, "restore", [["restore"], ["m.txt", ".", "-W -S .", "--worktree m.txt", "--source=HEAD m.txt", "-- m.txt"]]),
        (d, "clean", [["clean"], ["-fd", "-f", "-fdx", "-xdf", "--force -d", "-f -- u.txt", "-d -f", "-ffd", "-fX", "--forc"]]),
        (d, "branch-delete", [["branch"], ["-D feature", "-d -f feature", "--delete --force feature", "-Dfeature",
                                           "-df feature", "-fd feature", "--delete -f feature", "--del --forc feature"]]),
        (d, "branch-move", [["branch -M feature main", "branch -f feature main", "checkout -B feature main",
                             "switch -C feature main", "branch --force feature main"]]),
        (d, "tag-delete", [["tag"], ["-d v1", "--delete v1", "-dv1"]]),
        (d, "push-force", [["push"], ["-f origin feature:main", "--force origin feature:main", "origin +feature:main",
                                      "--force-with-lease origin feature:main", "--forc origin feature:main",
                                      "origin feature:main -f", "-fq origin feature:main", "-qf origin feature:main"]]),
        (d, "push-delete", [["push"], ["origin --delete other", "origin :other", "-d origin other", "--mirror origin",
                                       "--prune origin main", "origin --delete refs/tags/v1", "--delet origin other"]]),
        (d, "stash-drop", [["stash"], ["drop", "clear", "drop -q", "drop stash@{0}"]]),
        (d, "update-ref", [["update-ref"], ["-d refs/heads/feature", "refs/heads/feature main", "-d refs/tags/v1"]]),
        (d, "amend", [["commit"], ["--amend -m x", "--amend --no-edit", "--amen -m x"]]),
        (d, "rm", [["rm"], ["-f m.txt", "--force m.txt", "-rf .", "-f -- m.txt"]]),
        (d, "symbolic", [["symbolic-ref HEAD refs/heads/feature"], [""]]),
        (d, "checkout-index", [["checkout-index"], ["-f -a", "-fa", "--force --all", "-f m.txt", "-f -- m.txt", "-af"]]),
        (d, "read-tree", [["read-tree"], ["-u --reset HEAD", "--reset -u HEAD", "-m -u HEAD"]]),
        (d, "fetch-force-local", [["fetch"], ["origin +other:feature", "origin +refs/heads/other:refs/heads/feature",
                                              ". +main:feature", "-f origin other:feature", "--force origin other:feature",
                                              "origin other:feature --force", "-u origin +other:main",
                                              "origin +refs/tags/v1:refs/tags/v1 +other:feature"]]),
        (d, "push-local", [["push"], [". +main:feature", ". :feature", ". --delete feature", "-f . main:feature",
                                      ". :refs/tags/v1", "--force . main:feature"]]),
        (d, "mv-force", [["mv"], ["-f u.txt m.txt", "--force u.txt m.txt", "-f -- u.txt m.txt"]]),
        (d, "reset-modes", [["reset"], ["--keep HEAD~1", "--merge HEAD~1", "--soft HEAD~1", "HEAD~1", "--mixed HEAD~1"]]),
        (d, "stash-variants", [["stash"], ["drop -q stash@{0}", "pop", "clear -q", "store HEAD", "push --keep-index"]]),
        (d, "verb-as-value", [["--namespace status", "--namespace=status", "-C status", "--git-dir .git",
                               "--work-tree .", "--attr-source HEAD", "--super-prefix status/",
                               "--config-env=status.x=HOME", "--exec-path=/usr/lib/git-core"],
                              ["reset --hard", "checkout -- m.txt", "clean -fd"]]),
        (h, "housekeeping", [["gc --prune=now", "prune", "reflog expire --expire=now --all", "maintenance run",
                              "fsck", "count-objects -v", "repack -ad"]]),
    ]


def gen_git(rng, n, ctx):
    intents = git_intents()
    globals_ = [
        ["-C", "."], ["-c", "color.ui=false"], ["-c", "core.pager=cat"], ["--no-pager"], ["-P"],
        ["--git-dir=.git"], ["--git-dir", ".git"], ["--work-tree=."], ["--work-tree", "."],
        ["--no-replace-objects"], ["--literal-pathspecs"], ["--no-optional-locks"], ["-c", "user.name=x"],
        ["--glob-pathspecs"], ["-c", "advice.detachedHead=false"], ["-C", "./"], ["--no-advice"],
    ]
    # Configuration that changes what a command means.
    hostile = [
        ("destructive", "alias-c", lambda: (["-c", "alias.st=!" + PAYLOAD, "st"], {}, [])),
        ("destructive", "alias-c-builtin", lambda: (["-c", "alias.lg=reset --hard", "lg"], {}, [])),
        ("destructive", "alias-env", lambda: (["st"], {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "alias.st",
                                                        "GIT_CONFIG_VALUE_0": "reset --hard"}, [])),
        ("destructive", "alias-env-params", lambda: (["st"], {"GIT_CONFIG_PARAMETERS": "'alias.st'='reset --hard'"}, [])),
        ("destructive", "alias-repo", lambda: (["st"], {}, [["gitconfig", "alias.st", "reset --hard"]])),
        ("destructive", "alias-global", lambda: (["st"], {}, [["home", ".gitconfig", "[alias]\n\tst = reset --hard\n"]])),
        ("destructive", "fsmonitor-c", lambda: (["-c", "core.fsmonitor=" + PAYLOAD, "status"], {}, [])),
        ("destructive", "fsmonitor-repo", lambda: (["status"], {}, [["gitconfig", "core.fsmonitor", PAYLOAD]])),
        ("destructive", "fsmonitor-env", lambda: (["status"], {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "core.fsmonitor",
                                                               "GIT_CONFIG_VALUE_0": PAYLOAD}, [])),
        ("destructive", "fsmonitor-global", lambda: (["status"], {"GIT_CONFIG_GLOBAL": "gcfg"},
                                                     [["cwd", "gcfg", f"[core]\n\tfsmonitor = {PAYLOAD}\n"]])),
        ("destructive", "diff-external-c", lambda: (["-c", "diff.external=" + PAYLOAD, "diff"], {}, [])),
        ("destructive", "diff-external-env", lambda: (["diff"], {"GIT_EXTERNAL_DIFF": PAYLOAD}, [])),
        ("destructive", "diff-external-repo", lambda: (["diff"], {}, [["gitconfig", "diff.external", PAYLOAD]])),
        ("destructive", "hook-commit", lambda: (["commit", "--allow-empty", "-m", "x"], {},
                                                [["cwd", ".git/hooks/pre-commit", "#!/bin/sh\n" + PAYLOAD + "\n"]])),
        ("destructive", "hookspath-c", lambda: (["-c", "core.hooksPath=hk", "commit", "--allow-empty", "-m", "x"], {},
                                                [["cwd", "hk/pre-commit", "#!/bin/sh\n" + PAYLOAD + "\n"]])),
        ("destructive", "git-dir-env", lambda: (["checkout", "--", "."], {"GIT_DIR": ".git"}, [])),
        ("destructive", "config-include", lambda: (["status"], {}, [["gitconfig", "include.path", "../inc"],
                                                                   ["cwd", "inc", f"[core]\n\tfsmonitor = {PAYLOAD}\n"]])),
        ("destructive", "pager-env", lambda: (["-p", "log", "-1"], {"GIT_PAGER": PAYLOAD, "GIT_PAGER_IN_USE": ""}, [])),
        ("destructive", "sequence-editor", lambda: (["rebase", "-i", "HEAD~1"], {"GIT_SEQUENCE_EDITOR": PAYLOAD}, [])),
    ]
    out = []
    for i in range(n):
        if i % 7 == 6:
            intent, family, f = hostile[(i // 7) % len(hostile)]
            words, env, prep = f()
            words = ["git"] + words
            words = insert_globals(rng, words, globals_[:6], max_n=1, positions=lambda w: [1])
        else:
            intent, family, slots = intents[i % len(intents)]
            words = ["git"]
            for slot in slots:
                words += pick(rng, slot).split()
            env, prep = {}, []
            if "status" in words or "status/" in words:
                prep.append(["cwd", "status/.keep", ""])
            words = insert_globals(rng, words, globals_, max_n=2, positions=lambda w: [1])
        out.append(Variant("git", words, intent, family, env, None, prep))
    return out


def git_workspace(ctx, v):
    """A fresh copy of the template repositories, with the variant's repository configuration."""
    base = tempfile.mkdtemp(dir=ctx["scratch"])
    shutil.copytree(ctx["git_template"], base, dirs_exist_ok=True, symlinks=True)
    work = os.path.join(base, "work")
    for p in v.prep:
        if p[0] == "gitconfig":
            git_plain(["config", p[1], p[2]], work)
    return base


def run_git(ctx, v, direct, ws):
    # A held variant's direct run gets a fresh copy: the shim's run may have changed the first.
    work, remote = os.path.join(ws, "work"), os.path.join(ws, "remote.git")
    before = git_state(work, remote)
    code, err, extra = run_tool(ctx, v, direct, work, skip_prep_kinds=("gitconfig",))
    after = git_state(work, remote)
    return (code, err), git_effects(before, after, remote) + extra


# ---------------------------------------------------------------------------------------------
# psql
# ---------------------------------------------------------------------------------------------

PG_SETUP = r"""
drop schema if exists public cascade;
create schema public;
create table users (id int primary key, name text);
insert into users values (1, 'ann'), (2, 'bob'), (3, 'cy');
create table audit (at int);
create sequence s;
create view v as select id from users;
create function purge() returns bigint language sql as
  'with d as (delete from users returning 1) select count(*) from d';
create procedure wipe() language sql as 'delete from users';
create function safe() returns int language sql as 'select 1';
create function report() returns bigint language sql as
  'with d as (delete from audit returning 1) select count(*) from d';
insert into audit values (1), (2);
create view vp as select purge() as n;
select lo_unlink(oid) from pg_largeobject_metadata;
"""

PG_FINGERPRINT = r"""
select md5(coalesce(string_agg(x, '|' order by x), '')) || ' ' || coalesce(string_agg(x, '|' order by x), '') from (
  select 'rel ' || c.relname || ' ' || c.relkind::text || ' ' || coalesce(c.relacl::text, '') || ' '
         || coalesce(obj_description(c.oid), '') as x
    from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public'
  union all select 'col ' || table_name || '.' || column_name || ' ' || data_type
    from information_schema.columns where table_schema = 'public'
  union all select 'fn ' || proname || ' ' || md5(prosrc) from pg_proc p
    join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'public'
  union all select 'seq ' || sequencename || ' ' || coalesce(last_value::text, '-') from pg_sequences
  union all select 'lo ' || count(*)::text from pg_largeobject_metadata
  union all select 'db ' || datname from pg_database
  union all select 'role ' || rolname from pg_roles where rolname not like 'pg\_%'
  union all select 'row ' || c.relname || ' ' || r.h
    from pg_class c join pg_namespace n on n.oid = c.relnamespace,
    lateral unnest(string_to_array(coalesce((xpath('/row/c/text()', query_to_xml(
      format('select string_agg(md5(t::text), '','') as c from public.%I t', c.relname), false, true, '')))[1]::text,
      ''), ',')) as r(h)
    where n.nspname = 'public' and c.relkind = 'r'
) f
"""

PG_READS = [
    "select 1", "select count(*) from users", "select * from users where name = 'ann'", "select now()",
    "show server_version", "table users", "values (1)", "select * from v", "explain select * from users",
    "with t as (select 1) select * from t", "select safe()", "select id from users order by id limit 2",
    "select current_setting('server_version')", "select name from users where id in (select id from v)",
    "explain verbose delete from users", "select * from users for update", "select txid_current()",
    "select set_config('a.b', 'c', false)", "select pg_notify('c', 'x')", "listen c", "select currval('s')",
    "select table_to_xml('users', true, true, '')", "explain (analyze false) delete from users",
]
PG_WRITES = [
    "drop table users", "delete from users", "update users set name = 'x'", "truncate users",
    "insert into users values (9, 'z')", "alter table users add column c int", "create table t2 (a int)",
    "select purge()", "select * from purge()", "select nextval('s')", "select setval('s', 100)",
    "do $$begin delete from users; end$$", "call wipe()", "select * into t3 from users",
    "with d as (delete from users returning *) select count(*) from d", "explain analyze delete from users",
    "prepare p as delete from users; execute p", "create or replace view v as select 1 as id",
    "grant all on users to public", "comment on table users is 'x'", "select lo_import('/etc/hostname')",
    "copy users from program 'echo 9,z' with (format csv)", "select count(*) from purge()",
    "create database scratch", "create role evil", "drop view v", "alter sequence s restart with 50",
    "select query_to_xml('delete from users returning id', true, true, '')", "select public.purge()",
    'select "purge"()', "select (purge())", "select 1 where purge() > 0", "values (purge())", "select lo_create(0)",
    "select lo_from_bytea(0, 'x')", "select pg_catalog.setval('s', 5)", "select pg_catalog.nextval('s')",
    "table users; delete from users", "select nextval('s'::regclass)", "select * from pg_catalog.nextval('s')",
    "explain (analyze) delete from users", "explain (analyze true, format json) update users set name = 'y'",
    "explain analyse delete from users", "merge into users u using (select 1 as id) s on u.id = s.id when matched "
    "then delete", "select * from vp", "select report()", "select count(*) from users where report() > 0",
    "select * from v, purge()", "select cursor_to_xml('c', 1, false, false, '')",
]
PG_META_WRITES = [
    "\\copy users from program 'echo 9,z' with csv", "\\lo_import /etc/hostname",
    "\\copy users (id, name) from program 'echo 8,y' (format csv)", "\\copy users from stdin",
]
PG_META_READS = ["\\dt", "\\d users", "\\l", "\\conninfo", "\\echo x", "\\copy users to stdout",
                 "\\copy (select 1) to stdout", "\\lo_list", "\\sf purge", "\\dp", "\\du", "\\x",
                 "\\pset format csv", "\\timing on", "\\encoding"]


def sql_case(rng, s):
    if "'" in s or "$" in s or '"' in s:
        return s
    m = rng.randrange(3)
    if m == 0:
        return s.upper()
    if m == 1:
        return "".join(c.upper() if rng.random() < 0.5 else c for c in s)
    return s


def sql_wrap(rng, s, write):
    """One statement text around the core statement `s`, through a lexical feature; the result
    does what `s` does (plus reads)."""
    forms = [
        lambda: s, lambda: sql_case(rng, s), lambda: "/* c */ " + s, lambda: "-- c\n" + s,
        lambda: "/* /* nested */ ; */ " + s, lambda: s.replace(" ", "/**/", 1), lambda: s.replace(" ", "\n\t", 1),
        lambda: s + ";", lambda: s + " ;;", lambda: s + "; -- trailing", lambda: "select 1; " + s,
        lambda: "select ';'; " + s, lambda: "select $$;$$; " + s, lambda: "select 'a''b;'; " + s,
        lambda: "select E'\\';'; " + s, lambda: "select $q$ ; ' $q$; " + s,
        lambda: 'select 1 as "x;y"; ' + s, lambda: "select '\\'; " + s + "; -- '",
        lambda: "select $a$ $b$ ; $a$; " + s, lambda: "select U&'\\0041;'; " + s,
        lambda: s.replace("users", '"users"'), lambda: s.replace("users", "public.users"),
        lambda: s.replace("users", 'U&"\\0075sers"'), lambda: s.replace("users", '"public"."users"'),
        lambda: "begin; " + s + "; commit", lambda: "select 1 \\; " + s,
        lambda: "start transaction read write; " + s + "; commit",
        lambda: "set transaction_read_only = off; " + s,
        lambda: "set default_transaction_read_only = off; " + s,
        lambda: "select set_config('default_transaction_read_only', 'off', false); " + s,
        lambda: "reset all; " + s,
        lambda: s + " /* unterminated ; comment",
    ]
    return pick(rng, forms)()


def gen_psql(rng, n, ctx):
    real_psql = "@PSQLBIN@"  # the real psql's path, filled in when run
    out = []
    for i in range(n):
        write = i % 2 == 0
        core = pick(rng, PG_WRITES if write else PG_READS)
        intent = "destructive" if write else "harmless"
        stmt = sql_wrap(rng, core, write)
        env, prep, stdin = {}, [], None
        words = ["psql"]
        carrier = rng.randrange(20)
        family = "c"
        if carrier <= 5:
            words += pick(rng, [["-c", stmt], ["--command=" + stmt], ["-c" + stmt], ["--command", stmt],
                                ["--comm=" + stmt], ["-c", "select 1", "-c", stmt]])
        elif carrier == 6:
            family = "stdin"
            stdin = stmt + ";\n"
        elif carrier == 7:
            family = "file"
            prep.append(["cwd", "q.sql", stmt + ";\n"])
            words += pick(rng, [["-f", "q.sql"], ["--file=q.sql"], ["-fq.sql"], ["--file", "q.sql"], ["-f", "-"]])
            if words[-1] == "-":
                stdin = stmt + ";\n"
        elif carrier == 8:
            family = "meta-i"
            prep.append(["cwd", "q.sql", stmt + ";\n"])
            words += ["-c", pick(rng, ["\\i q.sql", "\\ir q.sql", "\\include q.sql"])]
        elif carrier == 9:
            family = "gexec"
            lit = core.replace("'", "''")
            words += pick(rng, [["-c", f"select '{lit}' \\gexec"]])
            stdin = None
            if rng.random() < 0.5:
                words = ["psql"]
                stdin = f"select '{lit}' \\gexec\n"
        elif carrier == 10:
            family = "variable"
            qv = core.replace("'", "\\'")
            words += pick(rng, [["-v", "q=" + core], ["--set=q=" + core], ["-vq=" + core], ["--variable", "q=" + core]])
            stdin = pick(rng, [":q;\n", "select 1; :q;\n"])
            if rng.random() < 0.5:
                words += ["-c", ":q"]
                stdin = None
            _ = qv
        elif carrier == 11:
            family = "shell"
            words += ["-c", f"\\! {real_psql} -X -q -c \"{core}\" >/dev/null"]
        elif carrier == 12:
            family = "psqlrc"
            which = rng.randrange(2)
            if which == 0:
                prep.append(["home", ".psqlrc", core + ";\n"])
            else:
                prep.append(["cwd", "rc", core + ";\n"])
                env["PSQLRC"] = "rc"
            words += ["-c", "select 1"]
            intent = "destructive" if write else "harmless"
        elif carrier == 13:
            family = "pgoptions"
            env["PGOPTIONS"] = "-c default_transaction_read_only=off"
            words += ["-c", stmt]
        elif carrier == 14:
            family = "conninfo"
            words += ["-c", stmt, pick(rng, ["dbname=postgres options='-c default_transaction_read_only=off'",
                                             "postgresql:///postgres?options=-c%20default_transaction_read_only%3Doff",
                                             "-d", "postgres"])]
            if words[-1] == "-d":
                words.append("postgres")
        elif carrier == 15:
            family = "meta"
            words += ["-c", pick(rng, [f"\\set q '{core.replace(chr(39), chr(92) + chr(39))}'", "\\o /dev/null"])]
            words += ["-c", pick(rng, [":q", stmt])]
        elif carrier == 16:
            family = "metacmd"
            m = pick(rng, PG_META_WRITES if write else PG_META_READS)
            if m.endswith("from stdin"):
                stdin = "9\tz\n\\.\n"
            words += pick(rng, [["-c", m], ["-c", "select 1", "-c", m]])
        elif carrier == 17:
            family = "gset"
            lit = core.replace("'", "''")
            stdin = f"select '{lit}' as q \\gset\n:q;\n"
        elif carrier == 18:
            family = "editor"
            env["EDITOR"] = env["PSQL_EDITOR"] = f"sh -c 'echo \"{core};\" > \"$1\"' sh"
            words += ["-c", pick(rng, ["\\e", "\\ef purge"])]
        else:
            family = "encoding"
            env["PGCLIENTENCODING"] = pick(rng, ["SJIS", "BIG5", "GBK"])
            words += ["-c", "select '\udc83\\'; " + core + "; -- '"]
            intent = "destructive" if write else "harmless"
        opts = [["-X"], ["-q"], ["-At"], ["--csv"], ["-1"], ["--single-transaction"], ["-v", "ON_ERROR_STOP=1"],
                ["-o", "/dev/null"], ["-e"], ["-E"], ["-d", "postgres"], ["-U", "postgres"], ["-w"],
                ["--no-psqlrc"], ["-n"], ["-S"], ["-x"], ["-P", "pager=off"], ["--echo-all"], ["-L", "plog"]]
        # Options go between whole options (never between an option and its value).
        groups, k = [[words[0]]], 1
        while k < len(words):
            take = 2 if words[k] in ("-c", "--command", "-f", "--file", "-v", "--variable", "-d") and k + 1 < len(words) else 1
            groups.append(words[k:k + take])
            k += take
        for _ in range(rng.randint(0, 2)):
            groups.insert(rng.randint(1, len(groups)), list(pick(rng, opts)))
        words = [w for g in groups for w in g]
        out.append(Variant("psql", words, intent, family, env, stdin, prep))
    return out


class Pg:
    def __init__(self, ctx):
        self.psql = ctx["tools"]["psql"]
        self.env = {"PATH": "/usr/bin:/bin", "PGHOST": ctx["pg_socket"], "PGUSER": "postgres",
                    "PGDATABASE": "postgres", "LC_ALL": "C"}
        self.reset()
        self.baseline = self.fingerprint()

    def sql(self, text):
        r = subprocess.run([self.psql, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"], input=text, env=self.env,
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"psql setup: {r.stderr}")
        return r.stdout

    def fingerprint(self):
        r = subprocess.run([self.psql, "-X", "-At", "-c", PG_FINGERPRINT], env=self.env, capture_output=True,
                           text=True, timeout=60)
        if r.returncode != 0 or not r.stdout.strip():
            raise RuntimeError(f"the PostgreSQL fingerprint failed: {r.stderr}")
        return r.stdout.strip()

    def reset(self):
        self.sql("drop database if exists scratch; drop role if exists evil;\n" + PG_SETUP)


def run_psql(ctx, v, direct, ws=None):
    pg = ctx["pg"]
    code, err, effects = run_tool(ctx, v, direct, ctx["cwd"])
    r = (code, err)
    fp = pg.fingerprint()
    if fp != pg.baseline:
        a = set(pg.baseline.split(" ", 1)[-1].split("|"))
        b = set(fp.split(" ", 1)[-1].split("|"))
        diff = sorted(["-" + x for x in a - b] + ["+" + x for x in b - a])
        # Lost data or objects: a row, a column (or its type), a function's body, a database, a
        # role, a relation that is gone. A sequence that moved on, or a relation whose comment or
        # grants changed, is a write; so are rows and objects that only appeared.
        kept = {" ".join(x.split(" ")[1:3]) for x in b if x.startswith("rel ")}
        lost = [x for x in a - b if x.split(" ", 1)[0] in ("row", "col", "fn", "db", "role")
                or (x.startswith("rel ") and " ".join(x.split(" ")[1:3]) not in kept)]
        kind = "db-changed" if lost else "db-added"
        effects.append(f"{kind}:" + ",".join(diff)[:160])
        pg.reset()
    return r, effects


# ---------------------------------------------------------------------------------------------
# aws
# ---------------------------------------------------------------------------------------------


def aws_intents():
    h, d, s = "harmless", "destructive", "secret"
    return [
        (h, "s3-ls", [["s3"], ["ls", "ls s3://data", "ls s3://data/ --recursive", "ls s3://data --summarize"]]),
        (h, "s3api-list", [["s3api"], ["list-buckets", "list-objects-v2 --bucket data", "list-objects --bucket data",
                                       "head-object --bucket data --key a.txt", "get-bucket-location --bucket data",
                                       "head-bucket --bucket data"]]),
        (h, "sts", [["sts get-caller-identity"]]),
        (h, "describe", [["ec2 describe-instances", "iam list-users", "dynamodb list-tables",
                          "secretsmanager list-secrets", "ssm describe-parameters", "sqs list-queues"]]),
        (h, "s3-cp-down", [["s3 cp s3://data/a.txt -", "s3api get-object --bucket data --key a.txt out.bin"]]),
        (h, "configure-list", [["configure list", "configure get region"]]),
        (d, "s3-rm", [["s3"], ["rm s3://data/a.txt", "rm s3://data --recursive", "rm s3://data/ --recursive --quiet",
                               "rb s3://data --force", "mv s3://data/a.txt s3://data/b.txt",
                               "sync empty s3://data --delete", "cp up.txt s3://data/a.txt", "mb s3://newb"]]),
        (d, "s3api-delete", [["s3api"], ["delete-object --bucket data --key a.txt", "delete-bucket --bucket empty",
                                         "delete-objects --bucket data --delete Objects=[{Key=a.txt}]",
                                         "put-object --bucket data --key a.txt --body up.txt",
                                         "put-bucket-policy --bucket data --policy {}",
                                         "create-bucket --bucket newb",
                                         "copy-object --bucket data --key b.txt --copy-source data/a.txt"]]),
        (d, "other-mutate", [["iam create-user --user-name evil", "secretsmanager delete-secret --secret-id db",
                              "ssm delete-parameter --name /db/pw", "dynamodb create-table --table-name t "
                              "--attribute-definitions AttributeName=k,AttributeType=S --key-schema "
                              "AttributeName=k,KeyType=HASH --billing-mode PAY_PER_REQUEST",
                              "sqs create-queue --queue-name q"]]),
        (d, "s3-stdin", [["s3 cp - s3://data/a.txt"]]),
        (s, "local-secret", [["configure get aws_secret_access_key", "configure get default.aws_secret_access_key",
                              "configure export-credentials", "configure get aws_secret_access_key --profile p",
                              "s3 presign s3://data/a.txt", "rds generate-db-auth-token --hostname h --port 5432 "
                              "--username u", "ecr get-login-password", "configure list"]]),
        (d, "abbrev", [["s3 rm s3://data/a.txt --quie", "s3 rm s3://data --recur", "s3api delete-object --buck data "
                        "--key a.txt", "--reg us-east-1 s3 rm s3://data/a.txt", "--prof p s3 rb s3://empty",
                        "--out text s3api delete-bucket --bucket empty", "--debu s3 rm s3://data/a.txt"]]),
        (s, "secret", [["secretsmanager get-secret-value --secret-id db", "ssm get-parameter --name /db/pw --with-decryption",
                        "ssm get-parameters --names /db/pw --with-decryption",
                        "ssm get-parameters-by-path --path /db --with-decryption",
                        "secretsmanager get-secret-value --secret-id=db", "sts get-session-token"]]),
    ]


def gen_aws(rng, n, ctx):
    intents = aws_intents()
    globals_ = [
        ["--region", "us-east-1"], ["--region=us-east-1"], ["--output", "json"], ["--output=text"], ["--no-paginate"],
        ["--no-cli-pager"], ["--profile", "p"], ["--profile=p"], ["--endpoint-url", "{EP}"], ["--endpoint-url={EP}"],
        ["--no-verify-ssl"], ["--cli-read-timeout", "20"], ["--query", "@"], ["--color", "off"], ["--reg", "us-east-1"],
        ["--debug"], ["--cli-connect-timeout=20"], ["--no-sign-request"],
    ]
    hostile = [
        ("destructive", "alias-file", ["ls"], {}, [["home", ".aws/cli/alias", "[toplevel]\nls = s3 rb s3://data --force\n"]]),
        # An alias named like a built-in command replaces it; the last option swallows what follows.
        ("destructive", "alias-shadow", ["s3", "ls"], {},
         [["home", ".aws/cli/alias", "[toplevel]\ns3 = s3api delete-object --bucket data --key a.txt --request-payer\n"]]),
        ("destructive", "alias-shadow-sts", ["sts", "get-caller-identity"], {},
         [["home", ".aws/cli/alias", "[toplevel]\nsts = s3api delete-object --bucket data --key a.txt --request-payer\n"]]),
        ("destructive", "alias-whoami", ["whoami"], {},
         [["home", ".aws/cli/alias", "[toplevel]\nwhoami = !@AWSBIN@ s3 rb s3://data --force\n"]]),
        ("destructive", "input-json", ["s3api", "list-objects-v2", "--cli-input-json", "file://in.json"], {},
         [["cwd", "in.json", '{"Bucket": "data"}']]),
        # A profile whose credentials come from a command, in a configuration file the agent wrote.
        ("destructive", "credential-process", ["s3", "ls"], {"AWS_CONFIG_FILE": "agent-config", "AWS_PROFILE": "cp"},
         [["cwd", "agent-config", "[profile cp]\nregion = us-east-1\ncredential_process = sh -c \"AWS_CONFIG_FILE=/dev/null "
           "AWS_PROFILE=default @AWSBIN@ s3 rm s3://data/a.txt >/dev/null 2>&1; echo "
           "'{\\\"Version\\\": 1, \\\"AccessKeyId\\\": \\\"x\\\", \\\"SecretAccessKey\\\": \\\"y\\\"}'\"\n"]]),
        ("destructive", "credential-process-flag", ["--profile", "cp", "s3", "ls"], {"AWS_CONFIG_FILE": "agent-config"},
         [["cwd", "agent-config", "[profile cp]\nregion = us-east-1\ncredential_process = sh -c \"AWS_CONFIG_FILE=/dev/null "
           "AWS_PROFILE=default @AWSBIN@ s3 rm s3://data/a.txt >/dev/null 2>&1; echo "
           "'{\\\"Version\\\": 1, \\\"AccessKeyId\\\": \\\"x\\\", \\\"SecretAccessKey\\\": \\\"y\\\"}'\"\n"]]),
    ]
    out = []
    for i in range(n):
        env, prep, stdin = {}, [], None
        if i % 6 == 5:
            intent, family, words, env, prep = hostile[(i // 6) % len(hostile)]
            words = ["aws"] + list(words)
            env, prep = dict(env), list(prep)
        else:
            intent, family, slots = intents[i % len(intents)]
            words = ["aws"]
            for slot in slots:
                words += pick(rng, slot).split()
            words = insert_globals(rng, words, globals_, max_n=2)
            words = [w.replace("{EP}", "@AWS@") for w in words]
        if family == "s3-stdin":
            stdin = "overwritten\n"
        if "up.txt" in words or "empty" in words:
            prep += [["cwd", "up.txt", "new\n"], ["cwd", "empty/.keep", ""]]
        if "--profile" in " ".join(words):
            prep.append(["home", ".aws/config", "[default]\nregion = us-east-1\n[profile p]\nregion = us-east-1\n"])
        out.append(Variant("aws", words, intent, family, env, stdin, prep))
    return out


class Aws:
    def __init__(self, ctx):
        self.moto = ctx["moto"]
        self.dirty = True

    def req(self, method, path, body=b"", headers=None):
        r = urllib.request.Request(self.moto + path, data=body if body else None, method=method,
                                   headers=headers or {})
        try:
            with urllib.request.urlopen(r, timeout=30) as f:
                return f.read()
        except urllib.error.HTTPError as e:
            return e.read()

    def reset(self):
        self.req("POST", "/moto-api/reset")
        self.req("PUT", "/data")
        self.req("PUT", "/empty")
        self.req("PUT", "/data/a.txt", b"precious\n")
        self.req("PUT", "/data/secret.txt", b"top secret\n")
        j = {"Content-Type": "application/x-amz-json-1.1"}
        self.req("POST", "/", json.dumps({"Name": "db", "SecretString": "hunter2"}).encode(),
                 dict(j, **{"X-Amz-Target": "secretsmanager.CreateSecret",
                            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=x"}))
        self.req("POST", "/", json.dumps({"Name": "/db/pw", "Value": "hunter2", "Type": "SecureString"}).encode(),
                 dict(j, **{"X-Amz-Target": "AmazonSSM.PutParameter",
                            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/ssm/aws4_request, SignedHeaders=host, Signature=x"}))
        self.dirty = False

    def s3_state(self):
        import re
        buckets = sorted(re.findall(rb"<Name>([^<]*)</Name>", self.req("GET", "/")))
        state = []
        for b in buckets:
            listing = self.req("GET", "/" + b.decode() + "?list-type=2")
            keys = re.findall(rb"<Key>([^<]*)</Key>.*?<ETag>([^<]*)</ETag>", listing, re.S)
            state.append((b, tuple(sorted(keys))))
        return state


def run_aws(ctx, v, direct, ws=None):
    aws = ctx["aws"]
    if aws.dirty:
        aws.reset()
    before = aws.s3_state()
    log = ctx["aws_log"]
    log.take()
    code, err, extra = run_tool(ctx, v, direct, ctx["cwd"])
    r = (code, err)
    effects = set(extra)
    for (method, path, query, target, c) in log.take():
        if c:
            op = target.split(".")[-1] if target else f"{method} {path}"
            effects.add(f"{c}:{op}")
    after = aws.s3_state()
    if before != after:
        # Lost objects and buckets are destruction. An object replaced by a new upload is a write
        # by the posture (like deploying a new version): guardsh cannot know that the key exists,
        # and `[posture] write = "ask"` holds uploads; it is reported, not failed.
        had = {(b, k): e for b, keys in before for k, e in keys}
        has = {(b, k): e for b, keys in after for k, e in keys}
        lost = ({b for b, _ in before} - {b for b, _ in after}) or any(k not in has for k in had)
        replaced = any(k in has and has[k] != e for k, e in had.items())
        effects.add("s3-changed" if lost else "s3-overwritten" if replaced else "s3-added")
    if effects:
        aws.dirty = True
    return r, sorted(effects)


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------

SECRET_MARKERS = [b"sekret-", b"X-Amz-Signature", b"X-Amz-Credential", b"aHVudGVyMg==", b"hunter2"]


def fill(ctx, text):
    """The oracles' addresses in place of their placeholders."""
    if not isinstance(text, str):
        return text
    for k, v in (("@KUBE@", ctx.get("kube_server")), ("@AWS@", ctx.get("aws_endpoint")),
                 ("@AWSBIN@", ctx["tools"].get("aws")), ("@PSQLBIN@", ctx["tools"].get("psql")),
                 ("@KUBECTLBIN@", ctx["tools"].get("kubectl"))):
        if v:
            text = text.replace(k, v)
    return text


def apply_prep(ctx, v, cwd, kinds_skip=()):
    made = []
    for p in v.prep:
        if p[0] in kinds_skip:
            continue
        root = ctx["home"] if p[0] == "home" else cwd
        path = os.path.join(root, p[1])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(fill(ctx, p[2]))
        if "/hooks/" in path or path.endswith("pre-commit"):
            os.chmod(path, 0o755)
        made.append(path)
    return made


def run_tool(ctx, v, direct, cwd, skip_prep_kinds=()):
    """Runs the variant: through its shim (what guardsh lets happen), or the real tool directly.
    Returns (exit code, first line of stderr)."""
    made = apply_prep(ctx, v, cwd, skip_prep_kinds)
    env = dict(ctx["env"])
    env.update({k: fill(ctx, x) for k, x in v.env.items()})
    args = [fill(ctx, w) for w in v.argv[1:]]
    if direct:
        exe = ctx["tools"][v.tool]
        argv = [exe] + args
    else:
        exe = os.path.join(ctx["shims"], v.tool)
        argv = [v.tool] + args
    try:
        r = subprocess.run(argv, executable=exe, cwd=cwd, env=env, capture_output=True,
                           input=(v.stdin or "").encode(), timeout=30)
        code, err, out = r.returncode, r.stderr.decode("utf-8", "replace"), r.stdout
    except subprocess.TimeoutExpired as e:
        code, err, out = -1, "timeout " + (e.stderr or b"").decode("utf-8", "replace"), e.stdout or b""
    finally:
        for p in made:
            try:
                os.remove(p)
            except OSError:
                pass
    lines = [l for l in err.splitlines() if l.strip()]
    # Credentials the tool printed: the human's secret key, or a URL signed with it.
    extra = [f"secret-read:stdout {m.decode()}" for m in SECRET_MARKERS if m in out or m in err.encode()]
    return code, (lines[0] if lines else "")[:200], extra


def decide(ctx, v, cwd):
    env = dict(ctx["env"])
    env.update({k: fill(ctx, x) for k, x in v.env.items()})
    made = apply_prep(ctx, v, cwd, ("gitconfig",))
    try:
        r = subprocess.run([ctx["guardsh"], "check", "--json", "--"] + [fill(ctx, w) for w in v.argv], cwd=cwd, env=env,
                           capture_output=True, timeout=30)
    finally:
        for p in made:
            try:
                os.remove(p)
            except OSError:
                pass
    try:
        j = json.loads(r.stdout)
        return j["decision"], (j.get("rule") or j.get("cause") or "")
    except (ValueError, KeyError):
        return "error", r.stderr.decode("utf-8", "replace")[:200]


RUNNERS = {"kubectl": run_kubectl, "git": run_git, "psql": run_psql, "aws": run_aws}


def evaluate(ctx, v, sample_held):
    """Decision and oracle for one variant: a dict row for the table."""
    fresh = (lambda: git_workspace(ctx, v)) if v.tool == "git" else (lambda: None)
    spaces, unused = [], []

    def run(direct):
        ws = unused.pop() if unused else fresh()
        spaces.append(ws)
        return RUNNERS[v.tool](ctx, v, direct, ws)

    try:
        return evaluate_in(ctx, v, sample_held, run, fresh, spaces, unused)
    finally:
        for ws in spaces:
            if ws:
                shutil.rmtree(ws, ignore_errors=True)


def evaluate_in(ctx, v, sample_held, run, fresh, spaces, unused):
    row = {"tool": v.tool, "argv": v.argv, "env": v.env, "stdin": v.stdin, "prep": v.prep, "intent": v.intent,
           "family": v.family, "known": v.known}
    if v.stdin is not None and v.tool == "psql":
        # `check` cannot see piped input; the shim reads it: its exit code is the decision.
        (code, err), effects = run(False)
        if code in (75, 77) and ("guardsh" in err or "approval" in err or "refused" in err or "denied" in err):
            row.update(decision="ask" if code == 75 else "deny", rule="(shim)", ran="held")
            row["effects"] = effects
        else:
            row.update(decision="allow", rule="(shim)", ran="shim", code=code, err=err, effects=effects)
        if row["decision"] != "allow" and sample_held:
            (code, err), effects = run(True)
            row.update(ran="direct", code=code, err=err, effects=effects)
        return row
    probe = fresh()
    spaces.append(probe)
    cwd = os.path.join(probe, "work") if probe else ctx["cwd"]
    decision, rule = decide(ctx, v, cwd)
    if probe:
        unused.append(probe)
    row.update(decision=decision, rule=rule)
    if decision == "allow":
        (code, err), effects = run(False)
        row.update(ran="shim", code=code, err=err, effects=effects)
        if v.tool == "psql":
            # What the statements do without the read-only session the shim adds to reads: does
            # guardsh's classification agree with the server?
            (_, _), direct = run(True)
            row["direct_effects"] = direct
    elif sample_held:
        (code, err), effects = run(True)
        row.update(ran="direct", code=code, err=err, effects=effects)
    else:
        row.update(ran="-", effects=[])
    return row


def printable(v):
    """Lone surrogates (bytes that are not UTF-8, in argv) as backslash escapes, for JSON readers."""
    if isinstance(v, str):
        return v.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if isinstance(v, list):
        return [printable(x) for x in v]
    if isinstance(v, dict):
        return {k: printable(x) for k, x in v.items()}
    return v


def destructive(effects):
    return [e for e in effects if e.split(":", 1)[0] in DESTRUCTIVE_EFFECTS]


def load_known(path):
    rows = []
    if not os.path.exists(path):
        return rows
    for n, line in enumerate(open(path), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.rstrip("\n").split("\t")
        if len(cols) < 6:
            raise SystemExit(f"{path}:{n}: expected tool, argv, env, stdin, prep, what happened")
        tool, argv, env, stdin, prep = cols[0], json.loads(cols[1]), json.loads(cols[2]), json.loads(cols[3]), \
            json.loads(cols[4])
        # A row whose note starts with FIXED is a regression row: its fix landed, and it must stay
        # held. The others are open findings, reported while they stay allowed.
        family = "regression" if cols[5].startswith("FIXED") else "known"
        rows.append(Variant(tool, argv, "destructive", family, env, stdin, prep, known=True))
    return rows


def main():
    cfg = json.load(open(sys.argv[1]))
    t0 = time.time()
    seed = int(cfg.get("seed", 17))
    full = bool(cfg.get("all"))
    counts = cfg["counts"]
    out_dir = cfg["out"]
    os.makedirs(out_dir, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="guardsh-diff-")
    ctx = {"guardsh": cfg["guardsh"], "env": cfg["env"], "home": cfg["home"], "cwd": cfg["cwd"],
           "shims": cfg["shims"], "tools": cfg["tools"], "scratch": scratch}
    tools = [t for t in ("kubectl", "git", "psql", "aws") if t in cfg["tools"]]
    variants = {}
    known = [k for k in load_known(cfg["known"]) if k.tool in tools]

    if "kubectl" in tools:
        server, log = oracles.start_kube()
        port = server.server_address[1]
        ctx.update(kube_log=log, kube_port=port, kube_server=f"http://127.0.0.1:{port}")
        os.makedirs(os.path.join(ctx["home"], ".kube"), exist_ok=True)
        with open(os.path.join(ctx["home"], ".kube", "config"), "w") as f:
            f.write(oracles.kubeconfig(port))
    if "git" in tools:
        ctx["git_template"] = git_template(tempfile.mkdtemp(dir=scratch))
        ctx["env"] = dict(ctx["env"], GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@e", GIT_COMMITTER_NAME="t",
                          GIT_COMMITTER_EMAIL="t@e")
    if "psql" in tools:
        ctx["pg_socket"] = cfg["pg_socket"]
        ctx["env"] = dict(ctx["env"], PGHOST=cfg["pg_socket"], PGUSER="postgres", PGDATABASE="postgres")
        ctx["pg"] = Pg(ctx)
    if "aws" in tools:
        moto_port = int(cfg["moto"].rsplit(":", 1)[1])
        server, log = oracles.start_aws_proxy(moto_port)
        ctx.update(moto=cfg["moto"], aws_log=log, aws_endpoint=f"http://127.0.0.1:{server.server_address[1]}")
        ctx["env"] = dict(ctx["env"], AWS_ENDPOINT_URL=ctx["aws_endpoint"], AWS_DEFAULT_REGION="us-east-1",
                          AWS_PAGER="", AWS_SHARED_CREDENTIALS_FILE=os.path.join(ctx["home"], ".aws-credentials"))
        with open(os.path.join(ctx["home"], ".aws-credentials"), "w") as f:
            f.write("[default]\naws_access_key_id = testing\naws_secret_access_key = sekret-17\n"
                    "[p]\naws_access_key_id = testing\naws_secret_access_key = sekret-p-31\n")
        ctx["aws"] = Aws(ctx)
    gens = {"kubectl": gen_kubectl, "git": gen_git, "psql": gen_psql, "aws": gen_aws}
    for t in tools:
        rng = random.Random(f"{seed}-{t}")
        n = int(counts[t]) * (int(cfg.get("all_factor", 10)) if full else 1)
        seen, vs = set(k.key() for k in known), []
        for v in gens[t](rng, n, ctx):
            if v.key() not in seen:
                seen.add(v.key())
                vs.append(v)
        variants[t] = vs

    held_rate = 1.0 if full else float(cfg.get("held_sample", 0.1))
    results = {t: [] for t in tools}
    timing = {}

    def work(t):
        start = time.time()
        rng = random.Random(f"{seed}-{t}-sample")
        for v in [k for k in known if k.tool == t] + variants[t]:
            try:
                results[t].append(evaluate(ctx, v, v.known or rng.random() < held_rate))
            except Exception as e:  # a harness failure is reported, not hidden
                results[t].append({"tool": t, "argv": v.argv, "env": v.env, "stdin": v.stdin, "prep": v.prep,
                                   "intent": v.intent, "family": v.family, "known": v.known, "decision": "error",
                                   "rule": repr(e)[:200], "ran": "-", "effects": []})
        timing[t] = time.time() - start

    threads = [threading.Thread(target=work, args=(t,)) for t in tools]
    for th in threads:
        th.start()
    for th in threads:
        th.join()

    # The table.
    with open(os.path.join(out_dir, "results.tsv"), "w", errors="backslashreplace") as f:
        f.write("tool\tintent\tfamily\tdecision\trule\tran\texit\teffects\tdirect_effects\targv\tenv\tstdin\tprep\tstderr\n")
        for t in tools:
            for r in results[t]:
                f.write("\t".join([
                    r["tool"], r["intent"], r["family"] + ("*" if r["known"] else ""), r["decision"],
                    str(r.get("rule", "")), r.get("ran", "-"), str(r.get("code", "")),
                    ",".join(r.get("effects", [])) or "-", ",".join(r.get("direct_effects", [])) or "-",
                    shlex.join(r["argv"]), json.dumps(r["env"]), json.dumps(r["stdin"]), json.dumps(r["prep"]), r.get("err", "").replace("\t", " "),
                ]).replace("\n", "\\n") + "\n")

    summary = {"seed": seed, "all": full, "seconds": round(time.time() - t0, 1), "tools": {}, "findings": [],
               "known_still_allowed": [], "known_fixed": [], "misread": [], "errors": []}
    for t in tools:
        rs = [r for r in results[t] if not r["known"]]
        s = {
            "variants": len(rs),
            "allowed": sum(r["decision"] == "allow" for r in rs),
            "held": sum(r["decision"] in ("ask", "deny") for r in rs),
            "ran_real": sum(r.get("ran") in ("shim", "direct") for r in rs),
            "held_sampled": sum(r.get("ran") == "direct" for r in rs),
            "held_destructive": sum(r.get("ran") == "direct" and bool(destructive(r["effects"])) for r in rs),
            "harmless_asked": sum(r["decision"] in ("ask", "deny") and r["intent"] == "harmless" for r in rs),
            "harmless": sum(r["intent"] == "harmless" for r in rs),
            "harmless_sampled_asked_no_effect": sum(r.get("ran") == "direct" and not destructive(r["effects"])
                                                    for r in rs),
            "seconds": round(timing.get(t, 0), 1),
            # The reverse direction: which harmless intents guardsh asks about (feeds precision work).
            "harmless_asked_by_family": dict(sorted(
                collections.Counter(r["family"] for r in rs
                                    if r["decision"] in ("ask", "deny") and r["intent"] == "harmless").items(),
                key=lambda kv: -kv[1])),
        }
        summary["tools"][t] = s
        for r in results[t]:
            compact = {k: printable(r.get(k)) for k in ("tool", "argv", "env", "stdin", "prep", "effects", "rule",
                                                         "family")}
            if r["decision"] == "error":
                summary["errors"].append(compact)
            bad = r["decision"] == "allow" and destructive(r.get("effects", []))
            if r["known"] and r.get("family") == "regression":
                (summary["findings"] if bad else summary["known_fixed"]).append(compact)
            elif r["known"]:
                (summary["known_still_allowed"] if bad else summary["known_fixed"]).append(compact)
            elif bad:
                summary["findings"].append(compact)
            elif r["decision"] == "allow" and destructive(r.get("direct_effects", [])):
                compact["direct_effects"] = r["direct_effects"]
                summary["misread"].append(compact)
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps({k: summary[k] for k in ("seed", "all", "seconds", "tools")}, indent=1))


def to_known(summary_path):
    """Prints summary.json's new findings as known.tsv rows (what happened: the oracle and the rule)."""
    summary = json.load(open(summary_path))
    for f in summary["findings"]:
        what = "allowed by " + str(f["rule"]) + "; oracle: " + " ".join(f["effects"])
        print("\t".join([f["tool"], json.dumps(f["argv"]), json.dumps(f["env"], sort_keys=True), json.dumps(f["stdin"]),
                         json.dumps(f["prep"]), what]))


if __name__ == "__main__":
    if sys.argv[1] == "--to-known":
        to_known(sys.argv[2])
    else:
        main()

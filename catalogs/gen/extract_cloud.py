#!/usr/bin/env python3
"""Extract the command tables of az, gcloud, heroku and vercel from their own source, into
catalogs/source/TOOL.json (read by classify_cloud.py). Not run in CI; run by hand:

  python3 catalogs/gen/extract_cloud.py heroku GITDIR   # GITDIR: bare clone of heroku/cli
  python3 catalogs/gen/extract_cloud.py vercel GITDIR   # vercel/vercel
  python3 catalogs/gen/extract_cloud.py gcloud GITDIR   # google-cloud-sdk-unofficial/google-cloud-sdk
  python3 catalogs/gen/extract_cloud.py az WHEEL        # azure_cli-VERSION-py3-none-any.whl (PyPI)

Run on 2026-12-03 with GITDIR the `fetch` snapshots of heroku/cli (c5fbf4b, v11.9.0),
vercel/vercel (17d9eba, cli 58.4.4) and google-cloud-sdk-unofficial/google-cloud-sdk (4643fc9,
SDK 578.0.0; Google develops the SDK elsewhere, this mirror commits each release), and WHEEL from
`pip download --no-deps azure-cli==2.91.0` (Azure/azure-cli is over the snapshot size limit;
the wheel holds every command module's source, and its sha256 is recorded).

Each reads the newest commit (HEAD) of GITDIR with `git --git-dir=GITDIR`, and writes
catalogs/source/TOOL.json: {"repo", "commit", "version", "commands": [{"path", "help", "flags",
"aliases", "hidden", ...}]} sorted by path. gcloud needs PyYAML (only this extractor).
How each tool's commands are found is said at its function.
"""

import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jslit  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def git(gitdir, *args):
    return subprocess.run(["git", f"--git-dir={gitdir}", *args], check=True, capture_output=True).stdout


def ls(gitdir, prefix):
    out = git(gitdir, "ls-tree", "-r", "--name-only", "HEAD", "--", prefix).decode()
    return [p for p in out.splitlines() if p]


def cat_all(gitdir, paths):
    """{path: text} for many blobs at HEAD, in one `git cat-file --batch`."""
    inp = "".join(f"HEAD:{p}\n" for p in paths).encode()
    out = subprocess.run(["git", f"--git-dir={gitdir}", "cat-file", "--batch"], input=inp, check=True,
                         capture_output=True).stdout
    res, i = {}, 0
    for p in paths:
        nl = out.index(b"\n", i)
        header = out[i:nl].split()
        if header[-1] == b"missing":
            i = nl + 1
            continue
        size = int(header[2])
        res[p] = out[nl + 1 : nl + 1 + size].decode("utf-8", "replace")
        i = nl + 1 + size + 1
    return res


def write(tool, data):
    data["commands"].sort(key=lambda c: c["path"].encode())
    path = os.path.join(ROOT, "catalogs", "source", f"{tool}.json")
    with open(path, "w", encoding="utf-8") as f:
        f.write("{\n")
        keys = [k for k in data if k != "commands"]
        for k in keys:
            f.write(f"{json.dumps(k)}: {json.dumps(data[k], ensure_ascii=False)},\n")
        f.write('"commands": [\n')
        rows = [json.dumps(c, ensure_ascii=False, sort_keys=True, separators=(",", ":")) for c in data["commands"]]
        f.write(",\n".join(rows))
        f.write("\n]}\n")
    print(f"{path}: {len(data['commands'])} commands", file=sys.stderr)


def text(v):
    return v if isinstance(v, str) else ""


# --- heroku -------------------------------------------------------------------------------

# Flag helpers of @heroku-cli/command (not in the repository): name -> (long, short, takes value)
HEROKU_HELPERS = {
    "app": ("app", "a", True),
    "remote": ("remote", "r", True),
    "team": ("team", "t", True),
    "pipeline": ("pipeline", "p", True),
}


def class_statics(toks):
    out, i = {}, 0
    while i < len(toks) - 2:
        if toks[i] == ("id", "static"):
            j = i + 1
            while toks[j][0] == "id" and toks[j][1] in ("override", "readonly", "public") and toks[j + 1][0] == "id":
                j += 1
            if toks[j][0] == "id" and toks[j + 1] == ("punct", "="):
                p = jslit.Parser(toks, j + 2)
                out[toks[j][1]] = p._primary()  # statics end at a newline, not a `,`
                i = p.i
                continue
        i += 1
    return out


def heroku_flags(obj, consts):
    flags = []
    if not isinstance(obj, dict):
        return flags, ["flags not a literal"]
    problems = []
    for spread in obj.get(jslit.SPREAD, []):
        problems.append(f"spread {spread!r}")
    for key, val in obj.items():
        if key == jslit.SPREAD:
            continue
        if isinstance(val, jslit.Ref) and val.name in consts:
            val = consts[val.name]
        if not isinstance(val, jslit.Call):
            problems.append(f"flag {key}: {val!r}")
            flags.append(f"--{key}=")
            continue
        kind = val.callee.split(".")[-1]
        opts = val.args[0] if val.args and isinstance(val.args[0], dict) else {}
        if kind in HEROKU_HELPERS:
            _, short, takes = HEROKU_HELPERS[kind]
        else:
            short = None
            takes = kind not in ("boolean", "noWrap")
        short = opts.get("char", short) if isinstance(opts.get("char", short), str) else short
        suffix = "=" if takes else ""
        flags.append(f"--{key}{suffix}")
        if short:
            flags.append(f"-{short}{suffix}")
        if not takes and opts.get("allowNo") is True:
            flags.append(f"--no-{key}")
        for al in opts.get("aliases", []) if isinstance(opts.get("aliases"), list) else []:
            if isinstance(al, str):
                flags.append(f"--{al}{suffix}")
        for al in opts.get("charAliases", []) if isinstance(opts.get("charAliases"), list) else []:
            if isinstance(al, str):
                flags.append(f"-{al}{suffix}")
    return sorted(set(flags)), problems


def extract_heroku(gitdir):
    """oclif: each file under src/commands is a command; its path is the directory words and the
    file name joined by `:` (index.ts is the directory itself). `static aliases` and
    `static hiddenAliases` are other names of it; `static flags` its flags."""
    pkg = json.loads(git(gitdir, "show", "HEAD:package.json"))
    files = [p for p in ls(gitdir, "src/commands") if p.endswith(".ts")]
    texts = cat_all(gitdir, files)
    cmds, topics = [], {}
    for p in files:
        words = p[len("src/commands/") : -3].split("/")
        if words[-1] == "index":
            words = words[:-1]
        path = ":".join(words)
        for k in range(1, len(words)):
            topics.setdefault(":".join(words[:k]), None)
        src = texts[p]
        toks = jslit.tokenize(src)
        st = class_statics(toks)
        consts = jslit.top_level_consts(toks)
        flags, problems = heroku_flags(st.get("flags", {}), consts)
        aliases = [a for a in st.get("aliases", []) if isinstance(a, str)] if isinstance(st.get("aliases"), list) else []
        hidden_aliases = [a for a in st.get("hiddenAliases", []) if isinstance(a, str)] if isinstance(st.get("hiddenAliases"), list) else []
        c = {"path": path, "file": p, "help": " ".join(text(st.get("description")).split())[:300], "flags": flags,
             "aliases": sorted(aliases + hidden_aliases), "hidden": st.get("hidden") is True}
        if problems:
            c["unread"] = problems
        cmds.append(c)
    have = {c["path"] for c in cmds}
    for t in sorted(topics):
        if t not in have:
            desc = text((pkg.get("oclif", {}).get("topics", {}).get(t) or {}).get("description"))
            cmds.append({"path": t, "group": True, "help": desc, "flags": [], "aliases": [], "hidden": False})
    commit = git(gitdir, "rev-parse", "HEAD").decode().strip()
    write("heroku", {"repo": "heroku/cli", "commit": commit, "version": pkg["version"],
                     "root": "src/commands", "plugins": pkg.get("oclif", {}).get("plugins", []), "commands": cmds})


# --- vercel -------------------------------------------------------------------------------


class JsModules:
    """Module-scoped resolution of consts and relative imports in a bare git tree."""

    def __init__(self, gitdir):
        self.gitdir, self.cache = gitdir, {}

    def load(self, path):
        if path not in self.cache:
            try:
                src = git(self.gitdir, "show", f"HEAD:{path}").decode()
            except subprocess.CalledProcessError:
                self.cache[path] = None
                return None
            toks = jslit.tokenize(src)
            self.cache[path] = (jslit.top_level_consts(toks), jslit.imports(src))
        return self.cache[path]

    def find(self, frm, spec):
        if not spec.startswith("."):
            return None
        base = os.path.normpath(os.path.join(os.path.dirname(frm), spec))
        for cand in (base + ".ts", base + ".tsx", base + "/index.ts", base):
            if self.load(cand) is not None:
                return cand
        return None

    def lookup(self, path, name, depth=0):
        mod = self.load(path)
        if mod is None or depth > 50:
            return jslit.Opaque()
        consts, imps = mod
        head, _, rest = name.partition(".")
        if head in consts:
            val = self.resolve(path, consts[head], depth + 1)
        elif head in imps and self.find(path, imps[head][0]):
            val = self.lookup(self.find(path, imps[head][0]), imps[head][1], depth + 1)
        else:
            return jslit.Opaque()
        for part in rest.split(".") if rest else []:
            if isinstance(val, list) and part.isdigit() and int(part) < len(val):
                val = val[int(part)]
            else:
                val = val.get(part, jslit.Opaque()) if isinstance(val, dict) else jslit.Opaque()
        return val

    def resolve(self, path, v, depth=0):
        """Replace Refs by their values (recursively), merge object and array spreads."""
        if isinstance(v, jslit.Ref):
            if v.name in ("String", "Boolean", "Number"):
                return v.name
            return self.lookup(path, v.name, depth + 1)
        if isinstance(v, dict):
            out = {}
            for sp in v.get(jslit.SPREAD, []):
                r = self.resolve(path, sp, depth)
                if isinstance(r, dict):
                    out.update(r)
            for k, x in v.items():
                if k != jslit.SPREAD:
                    out[k] = self.resolve(path, x, depth)
            return out
        if isinstance(v, list):
            out = []
            for x in v:
                if isinstance(x, tuple) and x and x[0] == jslit.SPREAD:
                    r = self.resolve(path, x[1], depth)
                    out.extend(r if isinstance(r, list) else [])
                else:
                    out.append(self.resolve(path, x, depth))
            return out
        return v


def vercel_options(opts):
    flags, problems = [], []
    for o in opts if isinstance(opts, list) else []:
        if not isinstance(o, dict) or not isinstance(o.get("name"), str):
            problems.append(f"option {o!r}")
            continue
        t = o.get("type")
        takes = not (t == "Boolean")
        if not isinstance(t, (str, list)):
            problems.append(f"option {o['name']}: type {t!r}")
        suffix = "=" if takes else ""
        flags.append(f"--{o['name']}{suffix}")
        if isinstance(o.get("shorthand"), str):
            flags.append(f"-{o['shorthand']}{suffix}")
    return sorted(set(flags)), problems


def extract_vercel(gitdir):
    """packages/cli/src/commands/index.ts lists the command objects (`commandsStructs`); each has
    name, aliases, description, subcommands (objects of the same shape, one may be `default`)
    and options ({name, shorthand, type: Boolean|String|[String]|Number})."""
    mods = JsModules(gitdir)
    index = "packages/cli/src/commands/index.ts"
    structs = mods.resolve(index, mods.load(index)[0]["commandsStructs"])
    cmds = []

    def walk(prefix, c):
        if not isinstance(c, dict) or not isinstance(c.get("name"), str):
            cmds.append({"path": " ".join(prefix + ["?"]), "unread": [repr(c)[:200]]})
            return
        path = prefix + [c["name"]]
        flags, problems = vercel_options(c.get("options"))
        aliases = [a for a in c.get("aliases") or [] if isinstance(a, str)]
        subs = c.get("subcommands") or []
        row = {"path": " ".join(path), "help": " ".join(text(c.get("description")).split())[:300],
               "flags": flags, "aliases": sorted(aliases), "hidden": c.get("hidden") is True,
               "arguments": len(c.get("arguments") or [])}
        if subs:
            row["subcommands"] = sorted(s.get("name") for s in subs if isinstance(s, dict) and isinstance(s.get("name"), str))
            dflt = [s.get("name") for s in subs if isinstance(s, dict) and s.get("default") is True]
            if dflt:
                row["default"] = dflt[0]
        if problems:
            row["unread"] = problems
        cmds.append(row)
        for s in subs:
            walk(path, s)

    for c in structs:
        walk([], c)
    pkg = json.loads(git(gitdir, "show", "HEAD:packages/cli/package.json"))
    commit = git(gitdir, "rev-parse", "HEAD").decode().strip()
    write("vercel", {"repo": "vercel/vercel", "commit": commit, "version": pkg["version"],
                     "root": "packages/cli/src/commands", "commands": cmds})


# --- gcloud -------------------------------------------------------------------------------

GCLOUD_TRACKS = ("GA", "BETA", "ALPHA")  # PREVIEW ("not for general use") is left out


def _dotted(node):
    import ast
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def gcloud_python(src):
    """[(tracks or None, hidden, help, base)] for the command or group classes of a module."""
    import ast
    try:
        tree = ast.parse(src)
    except SyntaxError:
        return None
    impls, plain = [], []
    local_bases = {n.name: _dotted(n.bases[0]).split(".")[-1] for n in tree.body
                   if isinstance(n, ast.ClassDef) and n.bases}

    def root_base(b):
        seen = set()
        while b in local_bases and b not in seen:
            seen.add(b)
            b = local_bases[b]
        return b

    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        tracks, hidden = None, False
        for d in node.decorator_list:
            name = _dotted(d.func if isinstance(d, ast.Call) else d)
            if name.endswith("ReleaseTracks") and isinstance(d, ast.Call):
                tracks = sorted({_dotted(a).split(".")[-1] for a in d.args})
            elif name.endswith("Hidden"):
                hidden = True
        doc = (ast.get_docstring(node) or "").strip().split("\n")[0]
        bases = [_dotted(b).split(".")[-1] for b in node.bases]
        entry = (tracks, hidden, doc, root_base(bases[0]) if bases else "")
        (impls if tracks is not None else plain).append(entry)
    if impls:
        return impls
    # no class declares tracks: the one implementation is valid in every track of its parent
    cands = [e for e in plain if e[3] and e[3] not in ("object", "Exception", "Error")]
    best = [e for e in cands if re.search(r"Command|Group", e[3])]
    return (best or cands)[-1:] or None


def gcloud_yaml(text_):
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def unknown(loader, suffix, node):
        return None

    Loader.add_multi_constructor("!", unknown)
    return yaml.load(text_, Loader=Loader)


def gcloud_yaml_impls(data):
    out = []
    for impl in data if isinstance(data, list) else [data]:
        if not isinstance(impl, dict) or impl.get("is_python_command"):
            continue
        tracks = impl.get("release_tracks") or list(GCLOUD_TRACKS)
        ht = impl.get("help_text") or {}
        brief = ht.get("brief", "") if isinstance(ht, dict) else ""
        out.append((sorted(t for t in tracks if isinstance(t, str)), impl.get("hidden") is True,
                    " ".join(str(brief or "").split()), str(impl.get("command_type") or "")))
    return out


def extract_gcloud(gitdir):
    """calliope: lib/surface is the root group; a directory with __init__.py is a group, a .py or
    .yaml file a command (names with `_` spelled `-`). A class's @base.ReleaseTracks(...) says in
    which tracks (GA, `gcloud beta`, `gcloud alpha`) it exists; one with none exists in all tracks
    of its parent. YAML commands list `release_tracks` (`_PARTIALS_: true` files take theirs from
    _partials/_NAME_TRACK.yaml). The module clones gcloud_main.py adds (saas-runtime,
    container hub, bigtable tables, compute migration) are added too."""
    root = "lib/surface"
    files = ls(gitdir, root)
    texts = cat_all(gitdir, [f for f in files if f.endswith((".py", ".yaml"))])
    dirs = {}
    for f in files:
        d, _, name = f.rpartition("/")
        dirs.setdefault(d, []).append(name)

    def impls_of(f):
        if f.endswith(".py"):
            return gcloud_python(texts.get(f, ""))
        t = texts.get(f, "")
        if re.search(r"(?m)^_PARTIALS_: true\s*$", t):
            d, _, name = f.rpartition("/")
            data = []
            for g in sorted(dirs.get(d + "/_partials", [])):
                if re.fullmatch(rf"_{re.escape(name[:-5])}_(alpha|beta|ga)\.yaml", g):
                    loaded = gcloud_yaml(texts.get(f"{d}/_partials/{g}", ""))
                    data.extend(loaded if isinstance(loaded, list) else [loaded])
            return gcloud_yaml_impls(data)
        try:
            return gcloud_yaml_impls(gcloud_yaml(t))
        except Exception as e:  # noqa: BLE001
            print(f"{f}: {e}", file=sys.stderr)
            return None

    def tracks_of(impls, parent):
        out, hidden, help_, kind = {}, False, "", ""
        for tracks, hid, doc, base in impls:
            for t in (tracks or parent):
                if t in parent:
                    out[t] = (hid, doc, base)
        return out

    sidecars = {}  # cli path -> {track: read_only} from the YAML sidecar of a Python command

    def sidecar_hints(f):
        if not f.endswith(".yaml"):
            return None
        try:
            data = gcloud_yaml(texts.get(f, ""))
        except Exception:  # noqa: BLE001
            return None
        out = {}
        for impl in data if isinstance(data, list) else [data]:
            if isinstance(impl, dict) and impl.get("is_python_command"):
                ro = (impl.get("hints") or {}).get("read_only")
                for t in impl.get("release_tracks") or GCLOUD_TRACKS:
                    if isinstance(ro, bool):
                        out[t.lower()] = ro
        return out if any(isinstance(i, dict) and i.get("is_python_command") for i in (data if isinstance(data, list) else [data])) else None

    elements = {}  # cli path -> {"group": bool, "tracks": {track: (hidden, help, base)}, "file"}
    skipped = []

    def walk(d, words, parent_tracks):
        names = dirs.get(d, [])
        for name in sorted(names):
            full = f"{d}/{name}"
            if name.startswith("__init__") or name == "_init_extensions.py":
                continue
            if name in dirs and ("__init__.py" in dirs.get(full, [])):
                continue  # handled below as a group
            if not (name.endswith(".py") or name.endswith(".yaml")) or "." in name.rsplit(".", 1)[0]:
                continue
            if full in dirs:
                continue
            cli = name.rsplit(".", 1)[0].replace("_", "-")
            impls = impls_of(full)
            if not impls:
                hints = sidecar_hints(full)
                if hints is None:
                    skipped.append(full)
                else:
                    sidecars[" ".join(words + [cli])] = hints
                continue
            add(words + [cli], False, tracks_of(impls, parent_tracks), full)
        for sub in sorted({p.rpartition("/")[0] for p in files if p.rpartition("/")[0].startswith(d + "/")
                           and p.rpartition("/")[0].count("/") == d.count("/") + 1}):
            if "__init__.py" not in dirs.get(sub, []):
                continue
            impls = gcloud_python(texts.get(sub + "/__init__.py", ""))
            if not impls:
                skipped.append(sub + "/__init__.py")
                continue
            tr = tracks_of(impls, parent_tracks)
            if not tr:
                continue
            cli = sub.rpartition("/")[2].replace("_", "-")
            add(words + [cli], True, tr, sub + "/__init__.py")
            walk(sub, words + [cli], set(tr))

    def add(words, group, tracks, f):
        if not tracks:
            return
        path = " ".join(words)
        e = elements.setdefault(path, {"path": path, "group": group, "file": f, "tracks": {}})
        e["tracks"].update(tracks)

    walk(root, [], set(GCLOUD_TRACKS))
    clones = [("saas-runtime", "app_lifecycle_manager"), ("container hub", "container/fleet"),
              ("bigtable tables", "bigtable/instances/tables"), ("compute migration", "migration/vms")]
    for cli, sub in clones:
        parent = cli.rsplit(" ", 1)[0] if " " in cli else None
        ptracks = set(elements[parent]["tracks"]) if parent else set(GCLOUD_TRACKS)
        d = f"{root}/{sub}"
        impls = gcloud_python(texts.get(d + "/__init__.py", ""))
        tr = tracks_of(impls or [], ptracks)
        add(cli.split(), True, tr, d + "/__init__.py")
        walk(d, cli.split(), set(tr))
    cmds = []
    for e in elements.values():
        tracks = e.pop("tracks")
        per = {}
        e["help"] = next((tracks[t][1][:200] for t in GCLOUD_TRACKS if t in tracks and tracks[t][1]), "")
        for t in GCLOUD_TRACKS:
            if t in tracks:
                per[t.lower()] = {"type": tracks[t][2]}
                if tracks[t][0]:
                    per[t.lower()]["hidden"] = True
        for t, ro in sidecars.get(e["path"], {}).items():
            if t in per:
                per[t]["read_only"] = ro
        e["tracks"] = per
        cmds.append(e)
    commit = git(gitdir, "rev-parse", "HEAD").decode().strip()
    version = git(gitdir, "show", "HEAD:VERSION").decode().strip()
    write("gcloud", {"repo": "google-cloud-sdk-unofficial/google-cloud-sdk", "commit": commit,
                     "version": version, "root": root, "skipped": sorted(skipped), "commands": cmds})


# --- az -----------------------------------------------------------------------------------

AZ_HELP_RE = re.compile(r"helps\[\s*['\"]([^'\"]+)['\"]\s*\]\s*=\s*[rf]?(\"{3}|'{3})(.*?)\2", re.S)
AZ_AAZ_RE = re.compile(r'@register_command(_group)?\(\s*"([^"]+)"(.*?)\)\s*\nclass \w+\([^)]*\):\s*(?:"{3}(.*?)\n)?', re.S)


def _az_ev(node, env):
    """Evaluate the string expressions command names are written with; None if not."""
    import ast
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return env.get(node.id)
    if isinstance(node, (ast.List, ast.Tuple)):
        vals = [_az_ev(e, env) for e in node.elts]
        return None if any(v is None for v in vals) else vals
    if isinstance(node, ast.JoinedStr):
        out = []
        for v in node.values:
            if isinstance(v, ast.Constant):
                out.append(str(v.value))
            else:
                x = _az_ev(v.value, env)
                if not isinstance(x, str):
                    return None
                out.append(x)
        return "".join(out)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        a, b = _az_ev(node.left, env), _az_ev(node.right, env)
        return a + b if isinstance(a, str) and isinstance(b, str) else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        a, b = _az_ev(node.left, env), _az_ev(node.right, env)
        try:
            return a % (tuple(b) if isinstance(b, list) else b) if isinstance(a, str) and b is not None else None
        except (TypeError, ValueError):
            return None
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"):
        fmt = _az_ev(node.func.value, env)
        args = [_az_ev(a, env) for a in node.args]
        kw = {k.arg: _az_ev(k.value, env) for k in node.keywords}
        if isinstance(fmt, str) and None not in args and None not in kw.values():
            try:
                return fmt.format(*args, **kw)
            except (IndexError, KeyError):
                return None
    return None


def az_commands_from_python(src, fname, found, problems):
    """Commands of `with X.command_group(NAME, ...) as g: g.<kind>(NAME, ...)` and of
    `self.command_table[NAME] = ...`, under loops over literal lists and in every branch."""
    import ast
    try:
        tree = ast.parse(src)
    except SyntaxError as e:
        problems.append(f"{fname}: {e}")
        return

    def kwflag(call, name):
        for k in call.keywords:
            if k.arg == name:
                return not (isinstance(k.value, ast.Constant) and k.value.value in (False, None))
        return False

    def visit(stmts, env, groups):
        for st in stmts:
            if isinstance(st, (ast.With, ast.AsyncWith)):
                g2 = dict(groups)
                for item in st.items:
                    ce = item.context_expr
                    if isinstance(ce, ast.Call) and isinstance(ce.func, ast.Attribute) and ce.func.attr == "command_group":
                        name = _az_ev(ce.args[0], env) if ce.args else None
                        if name is None:
                            problems.append(f"{fname}:{st.lineno}: group name {ast.unparse(ce.args[0]) if ce.args else ''}")
                            continue
                        found.setdefault(" ".join(name.split()), {"group": True, "file": fname})
                        if isinstance(item.optional_vars, ast.Name):
                            g2[item.optional_vars.id] = " ".join(name.split())
                visit(st.body, env, g2)
            elif isinstance(st, (ast.For, ast.AsyncFor)):
                it = _az_ev(st.iter, env)
                if isinstance(it, list):
                    for v in it:
                        e2 = dict(env)
                        if isinstance(st.target, ast.Name):
                            e2[st.target.id] = v
                        elif isinstance(st.target, ast.Tuple) and isinstance(v, list) and len(v) == len(st.target.elts):
                            for t, x in zip(st.target.elts, v):
                                if isinstance(t, ast.Name):
                                    e2[t.id] = x
                        visit(st.body, e2, groups)
                else:
                    visit(st.body, env, groups)
                visit(st.orelse, env, groups)
            elif isinstance(st, ast.Expr) and isinstance(st.value, ast.Call):
                call = st.value
                f = call.func
                if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in groups \
                        and f.attr != "deprecate":
                    arg = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg == "name"), None)
                    name = _az_ev(arg, env) if arg is not None else None
                    if name is None:
                        problems.append(f"{fname}:{st.lineno}: command name in {f.attr}")
                        continue
                    path = " ".join((groups[f.value.id] + " " + name).split())
                    e = found.setdefault(path, {"file": fname})
                    e.pop("group", None)
                    e["kind"] = f.attr
                    if kwflag(call, "confirmation"):
                        e["confirmation"] = True
            elif isinstance(st, ast.Assign):
                for t in st.targets:
                    if isinstance(t, ast.Subscript) and isinstance(t.value, ast.Attribute) and t.value.attr == "command_table":
                        name = _az_ev(t.slice, env)
                        if name is None:
                            problems.append(f"{fname}:{st.lineno}: command_table key")
                        else:
                            e = found.setdefault(" ".join(name.split()), {"file": fname})
                            e.pop("group", None)
                            e.setdefault("kind", "command_table")
                    elif isinstance(t, ast.Name):
                        v = _az_ev(st.value, env)
                        if v is not None:
                            env[t.id] = v
            elif isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                visit(st.body, dict(env), {})
            elif isinstance(st, ast.If):
                visit(st.body, env, groups)
                visit(st.orelse, env, groups)
            elif isinstance(st, ast.Try):
                for b in [st.body, st.orelse, st.finalbody] + [h.body for h in st.handlers]:
                    visit(b, env, groups)
            elif isinstance(st, ast.While):
                visit(st.body, env, groups)

    visit(tree.body, {}, {})


def az_serviceconnector(z, found):
    """serviceconnector/commands.py builds its commands in loops over the enums of
    _resource_config.py (`az webapp connection create mysql`): that file is executed (its
    `.action` imports stubbed) and the loops replayed. Sources shipped as extensions are left
    out, as on an install without them."""
    base = "azure/cli/command_modules/serviceconnector/"
    src = z.read(base + "_resource_config.py").decode()
    m = re.search(r"from \.action import \(([^)]*)\)", src)
    ns = {n.strip(): type(n.strip(), (), {}) for n in m.group(1).split(",") if n.strip()}
    exec(compile(src.replace(m.group(0), ""), "_resource_config.py", "exec"), ns)  # noqa: S102
    R = ns["RESOURCE"]
    fname = base + "commands.py"

    def cmd(path, kind, confirmation=False):
        e = found.setdefault(path, {"file": fname})
        e.pop("group", None)
        e["kind"] = kind
        if confirmation:
            e["confirmation"] = True

    for source in ns["SOURCE_RESOURCES"]:
        if source in ns["SOURCE_RESOURCES_IN_EXTENSION"]:
            continue
        for sub in ("list", "show", "list-configuration", "validate", "list-support-types", "wait"):
            cmd(f"{source.value} connection {sub}", "custom_command")
        cmd(f"{source.value} connection delete", "custom_command", True)
        for target in list(ns["SUPPORTED_AUTH_TYPE"].get(source).keys()) + [R.ConfluentKafka]:
            cmd(f"{source.value} connection create {target.value}", "custom_command")
            cmd(f"{source.value} connection update {target.value}", "custom_command")
    for sub in ("list", "show", "generate-configuration", "validate", "list-support-types", "wait"):
        cmd(f"connection {sub}", "custom_command")
    cmd("connection delete", "custom_command", True)
    for target in list(ns["SUPPORTED_AUTH_TYPE"].get(R.Local).keys()) + [R.ConfluentKafka]:
        cmd(f"connection preview-configuration {target.value}", "custom_command")
        cmd(f"connection create {target.value}", "custom_command")
        cmd(f"connection update {target.value}", "custom_command")


def extract_az(wheel):
    """The azure_cli wheel holds every command module (azure/cli/command_modules/*): commands are
    read from the Python command tables (`with self.command_group(...) as g: g.command(...)`,
    `self.command_table[NAME] = ...`) and from the AAZ classes (`@register_command("NAME")`,
    `@register_command_group("NAME")` under aaz/latest). Short summaries come from `_help.py`
    (`helps[NAME]`) and the AAZ class docstrings. Flags are not extracted."""
    import hashlib
    import zipfile
    z = zipfile.ZipFile(wheel)
    names = z.namelist()
    version = next(n for n in names if n.endswith(".dist-info/METADATA"))
    version = re.search(r"(?m)^Version: (\S+)", z.read(version).decode()).group(1)
    found, problems, helps = {}, [], {}
    for n in sorted(names):
        if not n.startswith("azure/cli/command_modules/") or not n.endswith(".py") or "/tests/" in n:
            continue
        src = z.read(n).decode("utf-8-sig", "replace")
        if n.endswith("serviceconnector/commands.py"):
            az_serviceconnector(z, found)
            continue
        if "/aaz/" in n:
            if "/aaz/latest/" not in n:
                continue
            for m in AZ_AAZ_RE.finditer(src):
                path = " ".join(m.group(2).split())
                e = found.setdefault(path, {"file": n})
                if m.group(1):
                    e.setdefault("group", True)
                else:
                    e.pop("group", None)
                    e["kind"] = "aaz"
                    if "confirmation=" in m.group(3):
                        e["confirmation"] = True
                if m.group(4):
                    helps.setdefault(path, " ".join(m.group(4).split()))
            continue
        for m in AZ_HELP_RE.finditer(src):
            sm = re.search(r"(?m)^\s*short-summary:\s*[>|]?-?\s*(.*(?:\n\s{4,}[^:\n]+$)*)", m.group(3))
            if sm:
                helps[" ".join(m.group(1).split())] = " ".join(sm.group(1).split())
        if "command_group(" in src or "command_table[" in src:
            az_commands_from_python(src, n, found, problems)
    # every prefix of a command is a group
    for path in list(found):
        words = path.split()
        for k in range(1, len(words)):
            found.setdefault(" ".join(words[:k]), {"group": True, "file": ""})
    cmds = []
    for path, e in found.items():
        row = {"path": path, "group": bool(e.get("group")), "help": helps.get(path, "")[:200],
               "kind": e.get("kind", ""), "file": e["file"].replace("azure/cli/command_modules/", "")}
        if e.get("confirmation"):
            row["confirmation"] = True
        cmds.append(row)
    sha = hashlib.sha256(open(wheel, "rb").read()).hexdigest()
    write("az", {"repo": "Azure/azure-cli", "commit": f"tag azure-cli-{version}",
                 "version": version, "wheel": f"{os.path.basename(wheel)} sha256:{sha}",
                 "problems": problems, "commands": cmds})


MODES = {"az": extract_az, "gcloud": extract_gcloud, "heroku": extract_heroku, "vercel": extract_vercel}

if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in MODES:
        sys.exit(__doc__)
    MODES[sys.argv[1]](sys.argv[2])

#!/usr/bin/env python3
"""Extract the command tree of flyctl, doctl, supabase, railway and terraform from their source.

    python3 catalogs/gen/extract_more.py TOOL SRC_DIR REPO COMMIT VERSION > catalogs/source/TOOL.json

How it was run (2026-12-03, no network, no Go or Rust toolchain): each repository was brought
in with the session's GitHub `fetch` tool (a bare git directory of the newest snapshot), written
out with `git --git-dir=REPO archive HEAD | tar -x -C SRC_DIR`, and then:

    python3 catalogs/gen/extract_more.py flyctl SRC superfly/flyctl ad0172face303b77584eea95b46fa3ddc61d5ddd v0.4.87-6-gad0172fac \
        > catalogs/source/flyctl.json
    python3 catalogs/gen/extract_more.py doctl SRC digitalocean/doctl 168188d3e016be2768406a0b3dc615966f6555a9 v1.166.0-1-g168188d3 \
        > catalogs/source/doctl.json
    python3 catalogs/gen/extract_more.py supabase SRC supabase/cli 1d1e7191268e068fe9cb6aba524d1c619a9c727b v2.104.0 \
        > catalogs/source/supabase.json
    python3 catalogs/gen/extract_more.py railway SRC railwayapp/cli df3838bf117cfa332d0ea28e9d26405639a98b2b v5.43.1 \
        > catalogs/source/railway.json
    python3 catalogs/gen/extract_more.py terraform SRC hashicorp/terraform 883c7221ee2e0bc2fad6912fd4b3cc4b53a598a7 v1.17.0-alpha20260812-20-g883c7221ee \
        > catalogs/source/terraform.json

where SRC is that tool's checkout. Per tool:

- flyctl, doctl, supabase (Go, cobra): extract_more_go.py interprets the Go code that builds the
  cobra tree, starting at flyctl's `root.New()`, doctl's `commands.DoitCmd` (after the package's
  init functions, which call `addCommands`), supabase's `cmd.rootCmd` (apps/cli-go, after all
  init functions). Flags come from what the interpreted code registers on each command's
  FlagSet (pflag calls, flyctl's flag.Add, doctl's AddXxxFlag helpers run as written; flyctl's
  reflection-based makeAlias is modelled by a hook). An `if` whose condition is not known runs
  both branches, so commands registered only under a condition (flyctl's DEV-only `agent`
  debug commands) are included. cobra's own `help` and `completion` commands are added. The
  root's persistent flags are global_flags, not any command's.
- railway (Rust, clap derive): src/main.rs's `commands!` list, src/macros.rs's extra aliases,
  and each module's `Args`
  struct / `Commands` enum are read with regular expressions (subcommand enums, `#[clap(...)]`
  and `#[arg(...)]` attributes: long, short, alias, visible_alias, value kinds).
- terraform (mitchellh/cli): the command map in commands.go, and each command's flags from the
  `FlagSet` it builds (internal/command/*.go and internal/command/arguments/*.go), with the flag
  sets shared through Meta.defaultFlagSet/extendedFlagSet and arguments' defaultFlagSet/
  extendedFlagSet.

Output: {"repo","commit","version","commands":[{"path","aliases","runnable","short","flags":
[[long, short, takes_value]], "hidden"}]} sorted by path, compact.
"""

import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------- cobra (Go)

def cobra_tree(root_cmd, skip_root_pflags=True):
    out = []

    def name_of(c):
        return (c.use or "").split()[0] if (c.use or "").split() else ""

    def walk(c, path, inherited):
        for ch in c.children:
            nm = name_of(ch)
            if not nm:
                continue
            p = path + [nm]
            flags = list(ch.flags) + list(ch.pflags) + list(inherited)
            out.append({
                "path": " ".join(p),
                "aliases": sorted(set(a for a in ch.aliases if isinstance(a, str) and a and a != nm)),
                "runnable": bool(ch.runnable),
                "short": ch.short if isinstance(ch.short, str) else "",
                "flags": sorted(set((l, s, bool(v)) for l, s, v in flags)),
                "hidden": bool(ch.hidden),
            })
            walk(ch, p, list(inherited) + list(ch.pflags))

    walk(root_cmd, [], [])
    # cobra adds `help` and a `completion` group (bash, fish, powershell, zsh) to every root that
    # has subcommands unless it defines its own or sets CompletionOptions.DisableDefaultCmd (none
    # of these tools does).
    have = {c["path"] for c in out}
    if "help" not in have:
        out.append({"path": "help", "aliases": [], "runnable": True, "short": "Help about any command",
                    "flags": [], "hidden": False, "implicit": True})
    if "completion" not in have:
        out.append({"path": "completion", "aliases": [], "runnable": False,
                    "short": "Generate the autocompletion script for the specified shell",
                    "flags": [], "hidden": False, "implicit": True})
        for sh in ("bash", "fish", "powershell", "zsh"):
            out.append({"path": "completion " + sh, "aliases": [], "runnable": True,
                        "short": f"Generate the autocompletion script for {sh}",
                        "flags": [["no-descriptions", "", False]], "hidden": False, "implicit": True})
    return out


def go_tool(tool, src):
    from extract_more_go import Interp, module_of, Scope
    if tool == "supabase":
        src = os.path.join(src, "apps", "cli-go")
    mod = module_of(src)
    it = Interp(mod, src)
    if tool == "flyctl":
        def flag_add(it, args):
            # flag.Add(cmd, flags ...Flag): a flag.Set is a list of flags; each flag adds itself.
            def flat(xs):
                for x in xs:
                    if isinstance(x, list):
                        yield from flat(x)
                    else:
                        yield x
            for f in flat(args[1:]):
                it.call_method(f, "addTo", [args[0]])
            return None
        it.hooks[(mod + "/internal/flag", "Add")] = flag_add

        def make_alias(it, args):
            # makeAlias[T](template T, name string) T builds the alias flag by reflection
            from extract_more_go import Struct
            tpl, name = (args + [None, None])[:2]
            if not isinstance(tpl, Struct) or not isinstance(name, str):
                return None
            short = name[0] if tpl.fields.get("UseAliasShortHand") is True else ""
            return Struct(tpl.pkg, tpl.type, {"Name": name, "Shorthand": short, "Hidden": True})
        it.hooks[(mod + "/internal/flag", "makeAlias")] = make_alias
        p = it.pkg(mod + "/internal/command/root")
        f, imps = p.funcs["New"]
        root = it.call(f, [], imps=imps)
    elif tool == "doctl":
        p = it.pkg(mod + "/commands")
        it.run_inits(p)
        ok, root = it.global_var(p, "DoitCmd")
        root = it.as_cmd(root)
    elif tool == "supabase":
        p = it.pkg(mod + "/cmd")
        it.run_inits(p)
        ok, root = it.global_var(p, "rootCmd")
    else:
        raise SystemExit(tool)
    for w in it.warnings[:40]:
        print("warning:", w, file=sys.stderr)
    print(f"{len(it.warnings)} warnings, {it.steps} steps", file=sys.stderr)
    cmds = cobra_tree(root)
    # the root's persistent flags: global, accepted before or after any command path
    cmds.append({"path": "", "global_flags": sorted(set((l, s, bool(v)) for l, s, v in root.pflags + root.flags))})
    return cmds



# ---------------------------------------------------------------- railway (Rust, clap derive)

_RTOK = re.compile(r"""
 (?P<ws>\s+)
|(?P<doc>///[^\n]*)
|(?P<lc>//[^\n]*)
|(?P<bc>/\*.*?\*/)
|(?P<attr>\#!?\[)
|(?P<rstr>r\#*")
|(?P<str>b?"(?:\\.|[^"\\])*")
|(?P<chr>'(?:\\.|[^'\\])')
|(?P<life>'[A-Za-z_]+)
|(?P<rid>r\#[A-Za-z_][A-Za-z0-9_]*)
|(?P<id>[A-Za-z_][A-Za-z0-9_]*)
|(?P<num>[0-9][0-9a-zA-Z_.]*)
|(?P<op>::|=>|->|\.\.=|\.\.|[^\sA-Za-z0-9_])
""", re.X | re.S)


def rust_tokens(src):
    out, pos = [], 0
    while pos < len(src):
        m = _RTOK.match(src, pos)
        if not m:
            pos += 1
            continue
        k, t = m.lastgroup, m.group()
        pos = m.end()
        if k in ("ws", "lc", "bc", "life"):
            continue
        if k == "rstr":
            hashes = t[1:-1]
            end = src.index('"' + hashes, pos)
            out.append(("str", src[pos:end]))
            pos = end + 1 + len(hashes)
            continue
        if k == "attr":
            # balanced [...] with strings inside
            depth, j = 1, pos
            while depth:
                m2 = _RTOK.match(src, j)
                if not m2:
                    j += 1
                    continue
                if m2.lastgroup == "rstr":
                    h = m2.group()[1:-1]
                    j = src.index('"' + h, m2.end()) + 1 + len(h)
                    continue
                g = m2.group()
                if m2.lastgroup == "op" and g == "[":
                    depth += 1
                elif m2.lastgroup == "op" and g == "]":
                    depth -= 1
                j = m2.end()
            out.append(("attr", src[pos:j - 1].strip()))
            pos = j
            continue
        if k == "doc":
            out.append(("doc", t[3:].strip()))
            continue
        if k == "str":
            out.append(("str", t[t.index('"') + 1:-1]))
            continue
        if k == "rid":
            out.append(("id", t[2:]))
            continue
        out.append((k, t))
    return out


def split_top(text):
    """Split attribute content at top-level commas (strings and brackets respected)."""
    parts, cur, depth, i = [], [], 0, 0
    while i < len(text):
        c = text[i]
        if c == '"':
            j = i + 1
            while j < len(text) and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            cur.append(text[i:j + 1])
            i = j + 1
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
        i += 1
    if "".join(cur).strip():
        parts.append("".join(cur).strip())
    return parts


def clap_attrs(attrs):
    """[(key, value or None)] from #[clap(...)], #[command(...)], #[arg(...)]."""
    out = []
    for a in attrs:
        m = re.match(r"^(clap|command|arg)\s*\((.*)\)$", a, re.S)
        if not m:
            continue
        for part in split_top(m.group(2)):
            if "=" in part and not part.startswith("group("):
                k, v = part.split("=", 1)
                out.append((k.strip(), v.strip()))
            else:
                out.append((part.strip(), None))
    return out


def _strs(v):
    return re.findall(r'"((?:\\.|[^"\\])*)"', v or "")


def _chars(v):
    return re.findall(r"'(.)'", v or "")


class RItem:
    def __init__(self, kind, name, attrs, docs, body, module):
        self.kind, self.name, self.attrs, self.docs, self.body, self.module = kind, name, attrs, docs, body, module


class RustParser:
    def __init__(self, toks, module, registry):
        self.t, self.i, self.module, self.reg = toks, 0, module, registry

    def peek(self, o=0):
        j = self.i + o
        return self.t[j] if j < len(self.t) else ("eof", "")

    def take_prefix(self):
        attrs, docs = [], []
        while self.peek()[0] in ("attr", "doc"):
            k, v = self.t[self.i]
            self.i += 1
            (attrs if k == "attr" else docs).append(v)
        return attrs, docs

    def skip_vis(self):
        if self.peek() == ("id", "pub"):
            self.i += 1
            if self.peek() == ("op", "("):
                self.skip_group()

    def skip_group(self):
        open_ = self.t[self.i][1]
        close = {"(": ")", "[": "]", "{": "}", "<": ">"}[open_]
        depth = 0
        while self.i < len(self.t):
            k, v = self.t[self.i]
            self.i += 1
            if k == "op" and v == open_:
                depth += 1
            elif k == "op" and v == close:
                depth -= 1
                if depth == 0:
                    return
            elif k == "op" and open_ == "<" and v == "->":
                pass

    def scan(self):
        """Scan a whole file for struct/enum items (any depth)."""
        while self.i < len(self.t):
            attrs, docs = self.take_prefix()
            save = self.i
            self.skip_vis()
            k, v = self.peek()
            if k == "id" and v in ("struct", "enum") and self.peek(1)[0] == "id":
                self.item(attrs, docs)
            elif k == "id" and v == "type" and self.peek(1)[0] == "id" and self.peek(2) == ("op", "="):
                name = self.peek(1)[1]
                self.i += 3
                toks = []
                while self.peek() != ("op", ";") and self.peek()[0] != "eof":
                    toks.append(self.t[self.i])
                    self.i += 1
                self.reg.setdefault(name, []).append(RItem("alias", name, [], [], toks, self.module))
            else:
                self.i = max(save + 1, self.i) if self.i == save else self.i

    def item(self, attrs, docs):
        """At `struct`/`enum` [Name] [<generics>] {...}|(...);  returns RItem."""
        kind = self.t[self.i][1]
        self.i += 1
        name = None
        if self.peek()[0] == "id":
            name = self.t[self.i][1]
            self.i += 1
        if self.peek() == ("op", "<"):
            self.skip_group()
        while self.peek()[0] == "id" and self.peek()[1] == "where":
            while self.peek() != ("op", "{") and self.peek()[0] != "eof":
                self.i += 1
        body = []
        if self.peek() == ("op", "{"):
            self.i += 1
            body = self.fields() if kind == "struct" else self.variants()
        elif self.peek() == ("op", "("):
            self.skip_group()
        it = RItem(kind, name, attrs, docs, body, self.module)
        if name:
            self.reg.setdefault(name, []).append(it)
        return it

    def type_until(self, stops):
        """Type tokens until a top-level stop; inline struct/enum definitions become RItems."""
        toks, depth = [], 0
        while True:
            k, v = self.peek()
            if k == "eof":
                return toks
            if depth == 0 and k == "op" and v in stops:
                return toks
            if k == "id" and v == "pub":
                self.skip_vis()
                continue
            if k in ("attr", "doc"):
                attrs, docs = self.take_prefix()
                continue
            if k == "id" and v in ("struct", "enum"):
                toks.append(("item", self.item([], [])))
                continue
            if k == "op" and v in ("<", "(", "["):
                depth += 1
            elif k == "op" and v in (">", ")", "]"):
                depth -= 1
            toks.append((k, v))
            self.i += 1

    def fields(self):
        out = []
        while True:
            attrs, docs = self.take_prefix()
            if self.peek() == ("op", "}"):
                self.i += 1
                return out
            if self.peek()[0] == "eof":
                return out
            self.skip_vis()
            k, name = self.peek()
            self.i += 1
            if self.peek() == ("op", ":"):
                self.i += 1
            ty = self.type_until((",", "}"))
            if self.peek() == ("op", ","):
                self.i += 1
            out.append({"name": name, "attrs": attrs, "docs": docs, "type": ty})

    def variants(self):
        out = []
        while True:
            attrs, docs = self.take_prefix()
            k, v = self.peek()
            if (k, v) == ("op", "}") or k == "eof":
                self.i += 1
                return out
            if k == "op" and v == ",":
                self.i += 1
                continue
            name = v
            self.i += 1
            payload = None
            if self.peek() == ("op", "("):
                self.i += 1
                payload = self.type_until((")",))
                self.i += 1
            elif self.peek() == ("op", "{"):
                self.i += 1
                payload = [("item", RItem("struct", None, [], [], self.fields(), self.module))]
            if self.peek() == ("op", "="):
                while self.peek() not in (("op", ","), ("op", "}")):
                    self.i += 1
            out.append({"name": name, "attrs": attrs, "docs": docs, "payload": payload})


def kebab(name):
    s = re.sub(r"(?<=[a-z0-9])([A-Z])", r"-\1", name)
    s = re.sub(r"(?<=[A-Z])([A-Z][a-z])", r"-\1", s)
    return s.replace("_", "-").lower()


class Railway:
    def __init__(self, src):
        self.src = src
        self.reg = {}
        base = os.path.join(src, "src")
        for dp, dn, fn in os.walk(base):
            for f in sorted(fn):
                if f.endswith(".rs"):
                    path = os.path.join(dp, f)
                    rel = os.path.relpath(path, base)
                    mod = rel[:-3].replace(os.sep, "/")
                    mod = re.sub(r"/mod$", "", mod)
                    RustParser(rust_tokens(open(path, encoding="utf-8").read()), mod, self.reg).scan()

    def resolve(self, toks, module, kind):
        """The RItem a type names: inline item, or a path (Option<..>, Box<..>, a::b::Name)."""
        for k, v in toks:
            if k == "item":
                return v
        ids = [v for k, v in toks if k == "id" and v not in ("Option", "Box", "Vec", "crate", "super", "self")]
        if not ids:
            return None
        name = ids[-1]
        cands = [c for c in self.reg.get(name, []) if c.kind in (kind, "alias")]
        if not cands:
            return None
        # prefer the module named by the path, then the same module, then a parent/child
        path_mods = [v for k, v in toks if k == "id" and v not in ("Option", "Box", "crate", "super", "self", name)]
        want = "/".join(path_mods)
        def score(c):
            sc = 0
            if want and (c.module == want or c.module.endswith("/" + want)):
                sc += 4
            if c.module == module:
                sc += 3
            if c.module.startswith(module + "/") or module.startswith(c.module + "/"):
                sc += 1
            return -sc
        best = sorted(cands, key=score)[0]
        if best.kind == "alias":
            return self.resolve(best.body, best.module, kind)
        return best

    def flags_of(self, st, module):
        flags, globals_, sub = [], [], None
        runnable = True
        for f in st.body:
            ca = clap_attrs(f["attrs"])
            keys = {k for k, _ in ca}
            if "skip" in keys:
                continue
            if "subcommand" in keys:
                isopt = any(v == "Option" for k, v in f["type"] if k == "id")
                sub = self.resolve(f["type"], st.module, "enum")
                runnable = isopt
                continue
            if "flatten" in keys:
                inner = self.resolve(f["type"], st.module, "struct")
                if inner is not None:
                    fl, gl, sb, rn = self.flags_of(inner, inner.module)
                    flags += fl
                    globals_ += gl
                    if sb is not None:
                        sub, runnable = sb, rn
                continue
            if "long" not in keys and "short" not in keys:
                continue
            fname = f["name"]
            longs, shorts = [], []
            for k, v in ca:
                if k == "long":
                    longs.append(_strs(v)[0] if v else kebab(fname))
                elif k == "short":
                    shorts.append(_chars(v)[0] if v else fname[0])
                elif k in ("alias", "visible_alias", "aliases", "visible_aliases"):
                    longs += _strs(v)
                elif k in ("short_alias", "visible_short_alias", "short_aliases", "visible_short_aliases"):
                    shorts += _chars(v)
            tyids = [v for k, v in f["type"] if k == "id"]
            action = " ".join(v or "" for k, v in ca if k == "action")
            numargs = " ".join(v or "" for k, v in ca if k == "num_args")
            takes = True
            if tyids[:1] == ["bool"] or re.search(r"SetTrue|SetFalse|Count|Help|Version", action) or numargs.strip() == "0":
                takes = False
            if re.search(r"ArgAction::(Set|Append)\b", action):
                takes = True
            for l in longs:
                (globals_ if "global" in keys else flags).append((l, shorts[0] if shorts and l == longs[0] else "", takes))
            for sh in shorts[1:]:
                (globals_ if "global" in keys else flags).append(("", sh, takes))
        return flags, globals_, sub, runnable

    def walk(self, path, st, aliases, docs, inherited, out, hidden=False):
        fl, gl, sub, runnable = self.flags_of(st, st.module) if st is not None else ([], [], None, True)
        if st is not None and st.kind == "enum":
            fl, gl, sub, runnable = [], [], st, False
        ca = clap_attrs(st.attrs) if st is not None else []
        for k, v in ca:
            if k in ("alias", "visible_alias", "aliases", "visible_aliases"):
                aliases = aliases + _strs(v)
            if k in ("subcommand_required", "arg_required_else_help") and (v in (None, "true")) and sub is not None:
                runnable = False
        allf = fl + gl + inherited
        out.append({"path": " ".join(path), "aliases": sorted(set(aliases)), "runnable": runnable,
                    "short": (docs or (st.docs if st is not None else []) or [""])[0],
                    "flags": sorted(set((l, s, t) for l, s, t in allf)), "hidden": hidden})
        if sub is not None:
            inh = inherited + gl
            for name, item, al, dc, hide in self.variants_of(sub):
                self.walk(path + [name], item, al, dc, inh, out, hide)
            out.append({"path": " ".join(path + ["help"]), "aliases": [], "runnable": True,
                        "short": "Print this message or the help of the given subcommand(s)",
                        "flags": [], "hidden": False, "implicit": True})

    def variants_of(self, en):
        for var in en.body:
            ca = clap_attrs(var["attrs"])
            keys = {k for k, _ in ca}
            if "skip" in keys:
                continue
            payload = var["payload"] or []
            if "flatten" in keys:
                inner = self.resolve(payload, en.module, "enum")
                if inner is not None:
                    yield from self.variants_of(inner)
                continue
            name = kebab(var["name"])
            aliases = []
            for k, v in ca:
                if k == "name":
                    name = _strs(v)[0]
                elif k in ("alias", "visible_alias", "aliases", "visible_aliases"):
                    aliases += _strs(v)
            if "subcommand" in keys:
                item = self.resolve(payload, en.module, "enum")
            else:
                item = self.resolve(payload, en.module, "struct") if payload else None
                if item is None and payload:
                    item = self.resolve(payload, en.module, "enum")
            hide = any(k == "hide" and v in (None, "true") for k, v in ca)
            yield name, item, aliases, var["docs"], hide


def railway(src):
    rw = Railway(src)
    main = open(os.path.join(src, "src", "main.rs"), encoding="utf-8").read()
    body = re.search(r"commands!\((.*?)\);", main, re.S).group(1)
    macros = open(os.path.join(src, "src", "macros.rs"), encoding="utf-8").read()
    extra = {}
    for m in re.finditer(r'\.mut_subcommand\("([^"]+)",\s*\|cmd\|\s*((?:\s*\.?\s*cmd)?[^)]*\)(?:\s*\.visible_alias\("[^"]+"\))*)', macros):
        extra.setdefault(m.group(1), []).extend(re.findall(r'visible_alias\("([^"]+)"\)', m.group(0)))
    out = []
    for ent in split_top(body):
        m = re.match(r'^(\w+)(?:\s+as\s+"([^"]+)")?(?:\s*\(([^)]*)\))?$', ent.strip())
        if not m:
            continue
        module, name, al = m.group(1), m.group(2) or m.group(1), m.group(3)
        aliases = [a.strip() for a in (al or "").split(",") if a.strip()] + extra.get(name, [])
        st = rw.resolve([("id", "commands"), ("id", module), ("id", "Args")], "commands/" + module, "struct")
        if st is None or not (st.module == "commands/" + module or "commands/" + module in [c.module for c in rw.reg["Args"]]):
            print(f"warning: no Args for {module}", file=sys.stderr)
            continue
        rw.walk([name], st, aliases, None, [], out)
    out.append({"path": "help", "aliases": [], "runnable": True, "short": "Print this message or the help of the given subcommand(s)",
                "flags": [], "hidden": False, "implicit": True})
    return out



# ---------------------------------------------------------------- terraform (mitchellh/cli)

GOFLAG_ARG = {  # Go flag package method -> (index of the name argument, takes a value)
    "Bool": (0, False), "BoolVar": (1, False), "BoolFunc": (0, False),
    "String": (0, True), "StringVar": (1, True), "Int": (0, True), "IntVar": (1, True),
    "Int64": (0, True), "Int64Var": (1, True), "Uint": (0, True), "UintVar": (1, True),
    "Uint64": (0, True), "Uint64Var": (1, True), "Float64": (0, True), "Float64Var": (1, True),
    "Duration": (0, True), "DurationVar": (1, True), "Var": (1, True), "Func": (0, True),
    "TextVar": (1, True),
}


def _walk_ast(node, fn, nils=frozenset()):
    """Visit every tuple node; `if P != nil {...}` is skipped when the caller passed nil for P."""
    if isinstance(node, tuple):
        if node and node[0] == "if" and node[2] is not None and node[2][0] == "bin" and node[2][1] == "!=" \
                and node[2][3] == ("id", "nil") and node[2][2][0] == "id" and node[2][2][1] in nils:
            if node[4] is not None:
                _walk_ast(node[4], fn, nils)
            return
        fn(node)
        for x in node[1:]:
            _walk_ast(x, fn, nils)
    elif isinstance(node, list):
        for x in node:
            _walk_ast(x, fn, nils)


def terraform(src):
    from extract_more_go import Parser, tokenize
    funcs = {}    # (pkg, name) -> body
    fparams = {}  # (pkg, name) -> parameter names
    methods = {}  # name -> [(recvtype, body)]
    for pkg, d in (("command", "internal/command"), ("arguments", "internal/command/arguments")):
        for fn in sorted(os.listdir(os.path.join(src, d))):
            if not fn.endswith(".go") or fn.endswith("_test.go"):
                continue
            decls = Parser(tokenize(open(os.path.join(src, d, fn), encoding="utf-8").read())).file()
            for name, params, body in decls["funcs"]:
                funcs[(pkg, name)] = body
                fparams[(pkg, name)] = [p for p, _ in params]
            for (rn, rt), name, params, body in decls["methods"]:
                methods.setdefault(name, []).append((rt, pkg, body))

    def flags_from(ctype):
        found, seen_calls, calls_process = set(), set(), [False]

        def visit(body, pkg, depth, nils=frozenset()):
            if body is None or depth > 6:
                return

            def on(node):
                if node[0] != "call":
                    return
                fe, args = node[1], node[2]
                if fe[0] == "sel" and fe[2] in GOFLAG_ARG:
                    k, takes = GOFLAG_ARG[fe[2]]
                    if len(args) > k and args[k][0] == "str":
                        # Go's flag package takes -name and --name alike
                        found.add(("-" + args[k][1], "", takes))
                        found.add(("--" + args[k][1], "", takes))
                        return
                if fe == ("sel", ("id", "arguments"), "ParseView"):
                    # ParseView takes these exact words out of the arguments before flag parsing
                    found.add(("-no-color", "", False))
                    found.add(("-compact-warnings", "", False))
                if fe[0] == "id":
                    key = (pkg, fe[1])
                    # flag-set helpers depend on which arguments are nil: key the visit on them
                    nil_params = frozenset(p for p, a in zip(fparams.get(key, []), args) if a == ("id", "nil"))
                    if key in funcs and (key, nil_params) not in seen_calls:
                        seen_calls.add((key, nil_params))
                        visit(funcs[key], pkg, depth + 1, nil_params)
                elif fe[0] == "sel":
                    name = fe[2]
                    if fe[1] == ("id", "arguments"):
                        key = ("arguments", name)
                        if key in funcs and key not in seen_calls:
                            seen_calls.add(key)
                            visit(funcs[key], "arguments", depth + 1)
                        return
                    if name == "process":
                        calls_process[0] = True
                    cands = methods.get(name, [])
                    pick = [c for c in cands if c[0] in (ctype, "Meta", "StateMeta")] or (cands if len(cands) == 1 else [])
                    for rt, mpkg, mbody in pick:
                        key = (rt, name)
                        if key not in seen_calls and name not in ("Run", "Help", "Synopsis"):
                            seen_calls.add(key)
                            visit(mbody, mpkg, depth + 1)

            _walk_ast(body, on, nils)

        run = [b for rt, pkg, b in methods.get("Run", []) if rt == ctype]
        runnable = True
        for b in run:
            stmts = b[1]
            rets = [x for x in stmts if x[0] == "return"]
            if rets and rets[-1][1] == [("sel", ("id", "cli"), "RunResultHelp")] and not any(
                    x[0] == "if" for x in stmts):
                runnable = False
            visit(b, "command", 0)
        if calls_process[0]:
            found.add(("-no-color", "", False))  # Meta.process takes out this exact word
        return runnable, sorted(found)

    text = open(os.path.join(src, "commands.go"), encoding="utf-8").read()
    out = []
    pat = re.compile(r'(?:^\s*"([a-z][a-z -]*)":\s*func\(\)|Commands\["([a-z][a-z -]*)"\]\s*=\s*func\(\))[^{]*\{\s*return\s+&?command\.(\w+)\{([^}]*)\}', re.M)
    for m in pat.finditer(text):
        path = m.group(1) or m.group(2)
        ctype = m.group(3)
        runnable, flags = flags_from(ctype)
        out.append({"path": path, "aliases": [], "runnable": runnable, "short": "",
                    "flags": flags, "hidden": False, "type": ctype,
                    "experimental": bool(m.group(2))})
    hidden = re.search(r"HiddenCommands = map\[string\]struct\{\}\{(.*?)\n\t\}", text, re.S)
    hidden = set(re.findall(r'"([^"]+)"', hidden.group(1))) if hidden else set()
    for c in out:
        c["hidden"] = c["path"] in hidden
    # rpcapi is built by its own factory (a plugin server for other programs, not for people)
    if re.search(r'^\s*"rpcapi":', text, re.M):
        out.append({"path": "rpcapi", "aliases": [], "runnable": True, "short": "", "flags": [],
                    "hidden": True, "type": "rpcapi"})
    # Synopsis() of each command type is its short help
    for c in out:
        for fn in sorted(os.listdir(os.path.join(src, "internal/command"))):
            if fn.endswith(".go") and not fn.endswith("_test.go"):
                t = open(os.path.join(src, "internal/command", fn), encoding="utf-8").read()
                m = re.search(r"func \(\w+ \*" + c["type"] + r"\) Synopsis\(\) string \{\s*return \"([^\"]*)\"", t)
                if m:
                    c["short"] = m.group(1)
                    break
    return out


# ---------------------------------------------------------------- main

def main():
    tool, src, repo, commit, version = sys.argv[1:6]
    if tool in ("flyctl", "doctl", "supabase"):
        cmds = go_tool(tool, src)
    elif tool == "railway":
        cmds = railway(src)
    elif tool == "terraform":
        cmds = terraform(src)
    else:
        raise SystemExit(f"unknown tool {tool}")
    seen = {}
    glob = []
    for c in cmds:
        if c["path"] == "":
            glob = c["global_flags"]
            continue
        seen.setdefault(c["path"], c)
    if tool == "terraform":
        glob = [["-chdir", "", True], ["-help", "", False], ["-version", "", False], ["-v", "", False]]
    doc = {"repo": repo, "commit": commit, "version": version, "global_flags": glob,
           "commands": [seen[k] for k in sorted(seen)]}
    sys.stdout.write(json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                     .replace('},{"aliases"', '},\n{"aliases"') + "\n")


if __name__ == "__main__":
    main()

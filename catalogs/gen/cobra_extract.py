#!/usr/bin/env python3
"""Extract the cobra command tree of a Go CLI from its source, statically (no Go toolchain).

Writes catalogs/source/TOOL.json, which catalogs/gen/cobra.py turns into catalogs/TOOL.tsv.
This script is not run by CI: it needs the CLI's source checked out, which the repository does
not hold.

How it was run (2026-12-03), from the repository root, each snapshot brought onto the machine
with the `fetch` tool (bare git directories under /work/.mirror/) and unpacked at a release tag:

    mkdir -p /tmp/cc/kubectl /tmp/cc/cli-runtime /tmp/cc/helm /tmp/cc/gh /tmp/cc/docker /tmp/cc/compose /tmp/cc/buildx
    git --git-dir=/work/.mirror/kubernetes+kubectl/repo archive v0.36.3 pkg | tar -x -C /tmp/cc/kubectl
    git --git-dir=/work/.mirror/kubernetes+cli-runtime/repo archive v0.36.2 pkg | tar -x -C /tmp/cc/cli-runtime
    git --git-dir=/work/.mirror/helm+helm/repo archive v4.2.4 | tar -x -C /tmp/cc/helm
    git --git-dir=/work/.mirror/cli+cli/repo archive v2.60.0 | tar -x -C /tmp/cc/gh
    git --git-dir=/work/.mirror/docker+cli/repo archive v29.7.2 | tar -x -C /tmp/cc/docker
    git --git-dir=/work/.mirror/docker+compose/repo archive v5.5.0 | tar -x -C /tmp/cc/compose
    git --git-dir=/work/.mirror/docker+buildx/repo archive v0.36.1 | tar -x -C /tmp/cc/buildx
    python3 catalogs/gen/cobra_extract.py kubectl /tmp/cc > catalogs/source/kubectl.json
    python3 catalogs/gen/cobra_extract.py helm /tmp/cc > catalogs/source/helm.json
    python3 catalogs/gen/cobra_extract.py gh /tmp/cc > catalogs/source/gh.json
    python3 catalogs/gen/cobra_extract.py docker /tmp/cc > catalogs/source/docker.json

(kubernetes/kubernetes is too large to fetch; kubectl's staging directory is published as
kubernetes/kubectl, tag v0.36.3 = kubernetes-1.36.3, and its flag helpers in k8s.io/cli-runtime as
kubernetes/cli-runtime at the same tag. `docker compose` is a plugin built from docker/compose;
its tree is extracted from that repository and grafted under `docker compose`; likewise the
buildx plugin from docker/buildx under `docker buildx`, and since docker forwards `build`,
`image build`, `bake` and `builder ...` to buildx when it is installed (cmd/docker/builder.go),
buildx's flags and subcommands are merged into those, with a `via` field saying so.)

How it works: a small Go tokenizer and a symbolic interpreter. Starting from the root
constructor, it executes function bodies (every branch of every `if`/`switch`, each element of a
`range` over a known list, closures when called), tracking values: strings, `cobra.Command`
literals, flag sets (`cmd.Flags()`, `cmd.PersistentFlags()`), struct values with their type (to
resolve method calls such as `o.PrintFlags.AddFlags(cmd)`), lists and function references. Effects
that are recorded: `AddCommand(...)`, pflag definitions (`StringVarP`, `BoolVar`, `VarP`, ...:
name, shorthand, value or not; `NoOptDefVal` makes a flag not take the next word), assignments to
`cmd.Aliases`, `cmd.Hidden`, `cmd.Run`, `cmd.RunE`. Every call it cannot resolve to a function
in the loaded source is listed in the output's `unresolved` (only those that were given a command
or a flag set, which might have defined flags or subcommands).
"""

import json
import os
import re
import sys

# ---------------------------------------------------------------- tokenizer

TOKEN_RE = re.compile(
    r"""
    (?P<ws>[ \t\r]+)
  | (?P<nl>\n)
  | (?P<lcomment>//[^\n]*)
  | (?P<bcomment>/\*.*?\*/)
  | (?P<raw>`[^`]*`)
  | (?P<str>"(?:\\.|[^"\\\n])*")
  | (?P<char>'(?:\\.|[^'\\\n])+')
  | (?P<num>\d[\w.]*|\.\d[\w]*)
  | (?P<ident>[A-Za-z_\u00c0-\uffff][\w\u00c0-\uffff]*)
  | (?P<op>\.\.\.|<<=|>>=|&\^=|:=|<-|&&|\|\||==|!=|<=|>=|<<|>>|&\^|\+=|-=|\*=|/=|%=|&=|\|=|\^=|\+\+|--|[-+*/%&|^<>=!()\[\]{},;.:~])
    """,
    re.S | re.X,
)

SEMI_AFTER = {"ident", "str", "char", "num"}
SEMI_KW = {"break", "continue", "fallthrough", "return"}


def unquote(s):
    if s[0] == "`":
        return s[1:-1].replace("\r", "")
    body = s[1:-1]
    out = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            n = body[i + 1]
            simple = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "'": "'", "a": "\a",
                      "b": "\b", "f": "\f", "v": "\v"}
            if n in simple:
                out.append(simple[n])
                i += 2
                continue
            if n == "x":
                out.append(chr(int(body[i + 2:i + 4], 16)))
                i += 4
                continue
            if n == "u":
                out.append(chr(int(body[i + 2:i + 6], 16)))
                i += 6
                continue
            if n == "U":
                out.append(chr(int(body[i + 2:i + 10], 16)))
                i += 10
                continue
            out.append(n)
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def tokenize(src):
    toks = []
    pos = 0
    last = None

    def newline():
        if last is not None and (last[0] in SEMI_AFTER and not (last[0] == "ident" and False)):
            if last[0] != "ident" or last[1] not in ("func",) or True:
                toks.append(("op", ";"))
                return True
        if last is not None and last[0] == "op" and last[1] in (")", "]", "}", "++", "--"):
            toks.append(("op", ";"))
            return True
        return False

    while pos < len(src):
        m = TOKEN_RE.match(src, pos)
        if not m:
            pos += 1
            continue
        pos = m.end()
        kind = m.lastgroup
        text = m.group(kind)
        if kind == "ws" or kind == "lcomment":
            continue
        if kind == "nl" or (kind == "bcomment" and "\n" in text):
            if newline():
                last = ("op", ";")
            continue
        if kind == "bcomment":
            continue
        if kind == "raw":
            kind, text = "str", text
        if kind == "ident" and text in SEMI_KW:
            tok = ("kw", text)
            toks.append(tok)
            last = ("ident", text)
            continue
        tok = (kind, text)
        toks.append(tok)
        last = tok
    newline()
    return toks


def match_close(toks, i):
    """toks[i] is an opening bracket; return the index of its match."""
    opener = toks[i][1]
    closer = {"(": ")", "[": "]", "{": "}"}[opener]
    depth = 0
    for j in range(i, len(toks)):
        t = toks[j]
        if t[0] != "op":
            continue
        if t[1] in "([{":
            depth += 1
        elif t[1] in ")]}":
            depth -= 1
            if depth == 0:
                if t[1] != closer:
                    raise ValueError("bracket mismatch")
                return j
    raise ValueError("unclosed bracket")


def split_top(toks, sep):
    """Split a token list at depth-0 separators (op tokens with value in sep)."""
    parts, cur, depth = [], [], 0
    for t in toks:
        if t[0] == "op" and t[1] in "([{":
            depth += 1
        elif t[0] == "op" and t[1] in ")]}":
            depth -= 1
        if depth == 0 and t[0] == "op" and t[1] in sep:
            parts.append(cur)
            cur = []
        else:
            cur.append(t)
    parts.append(cur)
    return parts


# ---------------------------------------------------------------- packages


class Func:
    def __init__(self, pkg, name, recv_name, recv_type, params, body, results):
        self.pkg, self.name = pkg, name
        self.recv_name, self.recv_type = recv_name, recv_type
        self.params = params  # [(name, type_tokens, variadic)]
        self.body = body  # tokens inside braces
        self.results = results

    def key(self):
        return f"{self.pkg.dir}:{self.recv_type + '.' if self.recv_type else ''}{self.name}"


class Package:
    def __init__(self, dir_, name):
        self.dir, self.name = dir_, name
        self.funcs = {}
        self.methods = {}  # (type, name) -> Func
        self.structs = {}  # type -> {field: type_tokens}, plus embedded under "" list
        self.embedded = {}  # type -> [type_tokens]
        self.globals = {}  # name -> (expr tokens, file imports)
        self.inits = []
        self.file_imports = {}


def type_name(ttoks):
    """(pkg_alias or None, Name) of a type expression, pointers/slices stripped."""
    t = [x for x in ttoks if not (x[0] == "op" and x[1] in ("*", "[", "]", "..."))]
    if t and t[0] == ("ident", "map"):
        return None, None
    if len(t) >= 3 and t[0][0] == "ident" and t[1] == ("op", ".") and t[2][0] == "ident":
        return t[0][1], t[2][1]
    if t and t[0][0] == "ident":
        return None, t[0][1]
    return None, None


def parse_params(toks):
    """Parameter list tokens (inside parens) -> [(name, type_tokens, variadic)]."""
    groups = [g for g in split_top(toks, ",") if g]
    out = []
    pending = []
    for g in groups:
        if len(g) >= 2 and g[0][0] == "ident" and not (g[1] == ("op", ".")):
            variadic = g[1] == ("op", "...")
            ttoks = g[1:]
            for n in pending:
                out.append((n, ttoks, variadic))
            pending = []
            out.append((g[0][1], ttoks, variadic))
        elif len(g) == 1 and g[0][0] == "ident":
            pending.append(g[0][1])
        else:
            out.append(("_", g, False))
    for n in pending:  # types only, unnamed
        out.append(("_", [("ident", n)], False))
    return out


def parse_file(pkg, toks, imports):
    i = 0
    n = len(toks)
    while i < n:
        t = toks[i]
        if t == ("ident", "import"):
            i += 1
            if toks[i] == ("op", "("):
                j = match_close(toks, i)
                for spec in split_top(toks[i + 1:j], ";"):
                    add_import(imports, spec)
                i = j + 1
            else:
                j = i
                while toks[j] != ("op", ";"):
                    j += 1
                add_import(imports, toks[i:j])
                i = j + 1
            continue
        if t == ("ident", "func"):
            try:
                i = parse_func(pkg, toks, i, imports)
            except (ValueError, IndexError, KeyError) as e:
                print(f"warning: {pkg.dir}: func near token {i}: {e!r}", file=sys.stderr)
                i += 1
            continue
        if t == ("ident", "type"):
            i = parse_type(pkg, toks, i + 1)
            continue
        if t in (("ident", "var"), ("ident", "const")):
            i += 1
            if toks[i] == ("op", "("):
                j = match_close(toks, i)
                for spec in split_top(toks[i + 1:j], ";"):
                    add_global(pkg, spec, imports)
                i = j + 1
            else:
                j = i
                depth = 0
                while j < n:
                    tj = toks[j]
                    if tj[0] == "op" and tj[1] in "([{":
                        depth += 1
                    elif tj[0] == "op" and tj[1] in ")]}":
                        depth -= 1
                    elif depth == 0 and tj == ("op", ";"):
                        break
                    j += 1
                add_global(pkg, toks[i:j], imports)
                i = j + 1
            continue
        i += 1


def add_import(imports, spec):
    spec = [x for x in spec if x != ("op", ";")]
    if not spec:
        return
    path = unquote(spec[-1][1]) if spec[-1][0] == "str" else None
    if path is None:
        return
    alias = spec[0][1] if len(spec) == 2 else None
    imports.append((alias, path))


def add_global(pkg, spec, imports):
    if not spec:
        return
    parts = split_top(spec, "=")
    if len(parts) < 2:
        names = spec
        if names and names[0][0] == "ident":
            pkg.globals.setdefault(names[0][1], ("type", spec[1:], imports))
        return
    lhs = [g for g in split_top(parts[0], ",")]
    rhs = split_top(parts[1], ",")
    for k, g in enumerate(lhs):
        if g and g[0][0] == "ident" and k < len(rhs):
            pkg.globals[g[0][1]] = ("expr", rhs[k], imports)


def parse_type(pkg, toks, i):
    if toks[i] == ("op", "("):
        j = match_close(toks, i)
        k = i + 1
        while k < j:
            if toks[k][0] == "ident":
                k = parse_type(pkg, toks, k)
            else:
                k += 1
        return j + 1
    name = toks[i][1]
    i += 1
    if toks[i] == ("op", "["):  # generics
        i = match_close(toks, i) + 1
    if toks[i] == ("op", "="):
        i += 1
    if toks[i] == ("ident", "struct") and toks[i + 1] == ("op", "{"):
        j = match_close(toks, i + 1)
        fields = {}
        emb = []
        for f in split_top(toks[i + 2:j], ";"):
            f = [x for x in f if x[0] != "str"]  # tags
            if not f:
                continue
            if len(f) >= 2 and f[0][0] == "ident" and f[1] != ("op", "."):
                names = []
                k = 0
                while k < len(f) and f[k][0] == "ident":
                    names.append(f[k][1])
                    k += 1
                    if k < len(f) and f[k] == ("op", ","):
                        k += 1
                    else:
                        break
                for nm in names:
                    fields[nm] = f[k:]
            else:
                emb.append(f)
                _, tn = type_name(f)
                if tn:
                    fields[tn] = f
        pkg.structs[name] = fields
        pkg.embedded[name] = emb
        return j + 1
    # other type: skip to end of spec
    depth = 0
    while i < len(toks):
        t = toks[i]
        if t[0] == "op" and t[1] in "([{":
            depth += 1
        elif t[0] == "op" and t[1] in ")]}":
            if depth == 0:
                return i
            depth -= 1
        elif depth == 0 and t == ("op", ";"):
            return i + 1
        i += 1
    return i


def parse_func(pkg, toks, i, imports):
    i += 1
    recv_name = recv_type = None
    if toks[i] == ("op", "("):
        j = match_close(toks, i)
        rp = parse_params(toks[i + 1:j])
        if rp:
            recv_name = rp[0][0]
            recv_type = type_name(rp[0][1])[1]
        i = j + 1
    name = toks[i][1]
    i += 1
    if toks[i] == ("op", "["):
        i = match_close(toks, i) + 1
    j = match_close(toks, i)
    params = parse_params(toks[i + 1:j])
    i = j + 1
    # results up to body
    k = i
    while k < len(toks) and toks[k] != ("op", "{") and toks[k] != ("op", ";"):
        if toks[k][0] == "op" and toks[k][1] in "([":
            k = match_close(toks, k)
        k += 1
    results = toks[i:k]
    if k >= len(toks) or toks[k] == ("op", ";"):
        return k + 1
    end = match_close(toks, k)
    f = Func(pkg, name, recv_name, recv_type, params, toks[k + 1:end], results)
    f.imports = imports
    if recv_type:
        pkg.methods[(recv_type, name)] = f
    elif name == "init":
        pkg.inits.append(f)
    else:
        pkg.funcs[name] = f
    return end + 1


class Loader:
    def __init__(self, roots):
        """roots: [(module_path, dir)]."""
        self.roots = roots
        self.pkgs = {}  # import path -> Package
        self.by_dir = {}
        self.files = 0

    def dir_for(self, ipath):
        for mod, d in self.roots:
            if ipath == mod:
                return d, ipath
            if ipath.startswith(mod + "/"):
                return os.path.join(d, ipath[len(mod) + 1:]), ipath
        return None, None

    def load(self, ipath):
        if ipath in self.pkgs:
            return self.pkgs[ipath]
        d, _ = self.dir_for(ipath)
        pkg = None
        if d and os.path.isdir(d):
            for fn in sorted(os.listdir(d)):
                if not fn.endswith(".go") or fn.endswith("_test.go"):
                    continue
                with open(os.path.join(d, fn), encoding="utf-8") as fh:
                    src = fh.read()
                toks = tokenize(src)
                if len(toks) < 2 or toks[0] != ("ident", "package"):
                    continue
                if pkg is None:
                    pkg = Package(d, toks[1][1])
                    pkg.ipath = ipath
                if toks[1][1] != pkg.name:
                    continue
                imports = []
                try:
                    parse_file(pkg, toks, imports)
                except (ValueError, IndexError, KeyError) as e:
                    print(f"warning: {d}/{fn}: {e!r}", file=sys.stderr)
                self.files += 1
        self.pkgs[ipath] = pkg
        return pkg

    def resolve_alias(self, imports, alias):
        for a, p in imports:
            if a == alias:
                return p
        for a, p in imports:
            if a is None:
                pkg = self.load(p)
                if pkg is not None and pkg.name == alias:
                    return p
                if pkg is None:
                    last = p.rsplit("/", 1)[-1]
                    if re.fullmatch(r"v\d+", last):
                        last = p.rsplit("/", 2)[-2]
                    if last == alias:
                        return p
        return None


# ---------------------------------------------------------------- values


class Unknown:
    pass


UNK = Unknown()


class Str:
    def __init__(self, s):
        self.s = s


class Command:
    n = 0

    def __init__(self):
        Command.n += 1
        self.id = Command.n
        self.fields = {}
        self.flags = []  # [name, short, takes_value, persistent]
        self.children = []
        self.origin = ""

    def copy(self):
        c = Command()
        c.fields = dict(self.fields)
        c.flags = [list(f) for f in self.flags]
        c.children = list(self.children)
        c.origin = self.origin
        return c


class FlagSet:
    def __init__(self, cmd, persistent):
        self.cmd, self.persistent = cmd, persistent


class FlagRef:
    def __init__(self, cmd, flag):
        self.cmd, self.flag = cmd, flag


class Obj:
    def __init__(self, pkg, tname, fields=None, literal=False):
        self.pkg, self.tname = pkg, tname
        self.fields = fields or {}
        # fields a composite literal or an assignment set (None: not known, a zero value)
        self.set_fields = set(self.fields) if literal else None


class List:
    def __init__(self, items):
        self.items = items


class FuncRef:
    def __init__(self, func):
        self.func = func


class Closure:
    def __init__(self, params, body, env, ctx):
        self.params, self.body, self.env, self.ctx = params, body, env, ctx


class Ctx:
    """Where code runs: its package and the file's imports."""

    def __init__(self, pkg, imports):
        self.pkg, self.imports = pkg, imports


# Constants of packages outside the fetched source that name flags (k8s.io/client-go
# tools/clientcmd/overrides.go).
EXTERNAL_CONSTS = {
    "k8s.io/client-go/tools/clientcmd": {
        "FlagClusterName": "cluster", "FlagAuthInfoName": "user", "FlagContext": "context",
        "FlagNamespace": "namespace", "FlagAPIServer": "server", "FlagTLSServerName": "tls-server-name",
        "FlagInsecure": "insecure-skip-tls-verify", "FlagCertFile": "client-certificate",
        "FlagKeyFile": "client-key", "FlagCAFile": "certificate-authority", "FlagEmbedCerts": "embed-certs",
        "FlagBearerToken": "token", "FlagImpersonate": "as", "FlagImpersonateUID": "as-uid",
        "FlagImpersonateGroup": "as-group", "FlagUsername": "username", "FlagPassword": "password",
        "FlagTimeout": "request-timeout", "FlagProxyURL": "proxy-url",
    },
}

FLAG_RE = re.compile(
    r"^(Bool|String|Int|Int8|Int16|Int32|Int64|Uint|Uint8|Uint16|Uint32|Uint64|Float32|Float64|"
    r"Duration|StringSlice|StringArray|StringToString|StringToInt|StringToInt64|IntSlice|Int32Slice|"
    r"Int64Slice|UintSlice|BoolSlice|Float32Slice|Float64Slice|DurationSlice|IP|IPMask|IPNet|IPSlice|"
    r"Count|BytesHex|BytesBase64|Func|BoolFunc|Text|Time)?(Var)?(P)?(F)?$"
)

PASS_THROUGH = {"T", "LongDesc", "Examples", "Doc", "Docf", "Sprintf", "TrimSpace", "Dedent",
                "Normalize"}


class Interp:
    def __init__(self, loader, special=None):
        self.loader = loader
        self.stack = []
        self.unresolved = {}
        self.special = special if special is not None else {}

    # -- statements
    def run_block(self, toks, env, ctx, ret):
        for st in split_top(toks, ";"):
            if st:
                self.run_stmt(st, env, ctx, ret)

    def find_block(self, st, start):
        """Index of the '{' opening the block of a control statement header."""
        k = start
        depth = 0
        while k < len(st):
            t = st[k]
            if t[0] == "op" and t[1] in "([":
                k = match_close(st, k) + 1
                continue
            if t == ("op", "{"):
                # composite literal of a [..]T or map type?
                b = k - 1
                while b >= start and (st[b][0] == "ident" or st[b] in (("op", "."), ("op", "*"))):
                    if st[b] == ("ident", "func"):
                        break
                    b -= 1
                if b >= start and st[b] == ("op", "]") and b + 1 < k:
                    k = match_close(st, k) + 1
                    continue
                if b >= start and st[b] == ("ident", "func"):
                    # func literal in header: skip its body
                    k = match_close(st, k) + 1
                    continue
                return k
            k += 1
        return None

    def run_stmt(self, st, env, ctx, ret):
        t0 = st[0]
        # case labels
        while st and st[0] in (("ident", "case"), ("ident", "default")):
            parts = split_top(st, ":")
            st = [x for p in parts[1:] for x in p + [("op", ":")]][:-1] if len(parts) > 1 else []
        if not st:
            return
        t0 = st[0]
        if t0[0] == "ident" and t0[1] in ("if", "switch", "select", "else", "for"):
            # run every block in the statement (all branches)
            k = 0
            while k < len(st):
                if st[k] in (("ident", "if"), ("ident", "switch"), ("ident", "for"), ("ident", "select")):
                    kw = st[k][1]
                    b = self.find_block(st, k + 1)
                    if b is None:
                        return
                    e = match_close(st, b)
                    header = st[k + 1:b]
                    body = st[b + 1:e]
                    if kw == "for" and any(x == ("ident", "range") for x in header):
                        self.run_range(header, body, env, ctx, ret)
                    elif kw == "if" and self.known_nil(header, env, ctx):
                        pass  # `if o.Field != nil {` on a struct literal that leaves Field nil
                    else:
                        for hs in split_top(header, ";"):
                            if hs and any(x[1] in (":=", "=") for x in hs if x[0] == "op"):
                                self.run_stmt(hs, env, ctx, ret)
                        self.run_block(body, env, ctx, ret)
                    k = e + 1
                elif st[k] == ("ident", "else"):
                    k += 1
                    if k < len(st) and st[k] == ("op", "{"):
                        e = match_close(st, k)
                        self.run_block(st[k + 1:e], env, ctx, ret)
                        k = e + 1
                else:
                    k += 1
            return
        if t0 == ("op", "{"):
            self.run_block(st[1:match_close(st, 0)], env, ctx, ret)
            return
        if t0 == ("kw", "return"):
            vals = [self.eval(e, env, ctx) for e in split_top(st[1:], ",") if e]
            for v in vals:
                if isinstance(v, (Command, Obj, List, FlagSet, Str)) and not ret:
                    ret.append(v)
            return
        if t0 == ("ident", "defer") or t0 == ("ident", "go"):
            return
        if t0 == ("ident", "var"):
            rest = st[1:]
            if rest and rest[0] == ("op", "("):
                for spec in split_top(rest[1:match_close(rest, 0)], ";"):
                    if spec:
                        self.run_var(spec, env, ctx)
            else:
                self.run_var(rest, env, ctx)
            return
        if t0[0] == "kw" or t0 == ("ident", "type") or t0 == ("ident", "const"):
            return
        # assignment?
        for op in (":=", "="):
            parts = split_top(st, (op,)) if any(x == ("op", op) for x in st) else None
            if parts and len(parts) == 2:
                lhs = split_top(parts[0], ",")
                rhs = split_top(parts[1], ",")
                vals = [self.eval(e, env, ctx) for e in rhs]
                if len(vals) == 1 and len(lhs) > 1:
                    vals = vals + [UNK] * (len(lhs) - 1)
                for k, l in enumerate(lhs):
                    v = vals[k] if k < len(vals) else UNK
                    self.assign(l, v, env, ctx)
                return
        if any(x[0] == "op" and x[1] in ("+=", "-=", "++", "--", "|=", "<-") for x in st):
            return
        self.eval(st, env, ctx)

    def known_nil(self, header, env, ctx):
        cond = split_top(header, ";")[-1]
        if len(cond) < 5 or cond[-2:] != [("op", "!="), ("ident", "nil")] or cond[-4] != ("op", "."):
            return False
        if not all(t[0] == "ident" or t == ("op", ".") for t in cond[:-2]):
            return False
        base = self.eval(cond[:-4], env, ctx)
        field = cond[-3][1]
        if not isinstance(base, Obj) or base.set_fields is None:
            return False
        return field not in base.set_fields or base.fields.get(field, UNK) is None

    def run_var(self, spec, env, ctx):
        parts = split_top(spec, "=")
        names = [g[0][1] for g in split_top(parts[0], ",") if g and g[0][0] == "ident"]
        if len(parts) == 2:
            vals = [self.eval(e, env, ctx) for e in split_top(parts[1], ",")]
            for k, nm in enumerate(names):
                env[nm] = vals[k] if k < len(vals) else UNK
        else:
            # var x T
            ttoks = parts[0][len(names) * 2 - 1:] if names else []
            ttoks = [x for x in parts[0] if True][1:] if len(names) == 1 else ttoks
            for nm in names:
                env[nm] = self.zero(ttoks, ctx)

    def zero(self, ttoks, ctx):
        alias, tn = type_name(ttoks)
        if tn is None:
            return UNK
        if tn == "Command" and alias == "cobra" and not any(x == ("op", "*") for x in ttoks):
            return Command()
        pkg = ctx.pkg
        if alias:
            p = self.loader.resolve_alias(ctx.imports, alias)
            pkg = self.loader.load(p) if p else None
        if pkg is None or tn not in pkg.structs:
            return UNK
        return Obj(pkg, tn)

    def run_range(self, header, body, env, ctx, ret):
        idx = header.index(("ident", "range"))
        lhs = header[:idx]
        expr = header[idx + 1:]
        coll = self.eval(expr, env, ctx)
        names = [g[0][1] if g and g[0][0] == "ident" else "_" for g in split_top(lhs[:-1], ",")] if lhs else []
        if isinstance(coll, List):
            for item in coll.items:
                if len(names) >= 2:
                    env[names[1]] = item
                elif names:
                    env[names[0]] = UNK
                self.run_block(body, env, ctx, ret)
        else:
            for nm in names:
                env[nm] = UNK
            self.run_block(body, env, ctx, ret)

    def assign(self, ltoks, v, env, ctx):
        if len(ltoks) == 1 and ltoks[0][0] == "ident":
            env[ltoks[0][1]] = v
            return
        # X.field = v
        if len(ltoks) >= 3 and ltoks[-2] == ("op", ".") and ltoks[-1][0] == "ident":
            target = self.eval(ltoks[:-2], env, ctx)
            fld = ltoks[-1][1]
            if isinstance(target, Command):
                if fld in ("Run", "RunE"):
                    target.fields[fld] = self.run_kind(v, ltoks)
                else:
                    target.fields[fld] = v
            elif isinstance(target, FlagRef):
                if fld == "NoOptDefVal" and target.flag is not None:
                    target.flag[2] = False
            elif isinstance(target, Obj):
                target.fields[fld] = v
                if target.set_fields is not None:
                    target.set_fields.add(fld)
        elif ltoks and ltoks[0] == ("op", "*"):
            self.assign(ltoks[1:], v, env, ctx)

    def run_kind(self, v, toks=None):
        if isinstance(v, (Closure, FuncRef)):
            return "func"
        if isinstance(v, Str):
            return "func"
        if v is None or v is UNK:
            return None
        return "func"

    # -- expressions
    def eval(self, toks, env, ctx):
        try:
            v, _ = self.expr(toks, 0, env, ctx)
            return v
        except (ValueError, IndexError, RecursionError) as e:
            return UNK

    def expr(self, toks, i, env, ctx):
        v, i = self.unary(toks, i, env, ctx)
        while i < len(toks):
            t = toks[i]
            if t[0] == "op" and t[1] in ("+", "-", "*", "/", "%", "&&", "||", "==", "!=", "<", ">",
                                          "<=", ">=", "|", "&", "^", "<<", ">>", "&^"):
                r, i = self.unary(toks, i + 1, env, ctx)
                if t[1] == "+" and isinstance(v, Str) and isinstance(r, Str):
                    v = Str(v.s + r.s)
                else:
                    v = UNK
            else:
                break
        return v, i

    def unary(self, toks, i, env, ctx):
        t = toks[i]
        if t[0] == "op" and t[1] in ("&", "-", "!", "^", "<-", "+"):
            v, i = self.unary(toks, i + 1, env, ctx)
            return (v if t[1] == "&" else UNK), i
        if t == ("op", "*"):
            v, i = self.unary(toks, i + 1, env, ctx)
            if isinstance(v, Command):
                v = v.copy()
            return v, i
        return self.primary(toks, i, env, ctx)

    def parse_type_end(self, toks, i):
        """Skip a type expression starting at i ([]T, map[K]V, *T, pkg.T, func(...)...)."""
        while toks[i] == ("op", "*") or toks[i] == ("op", "["):
            if toks[i] == ("op", "["):
                i = match_close(toks, i) + 1
            else:
                i += 1
        if toks[i] == ("ident", "map"):
            i = match_close(toks, i + 1) + 1
            return self.parse_type_end(toks, i)
        if toks[i] == ("ident", "struct") or toks[i] == ("ident", "interface"):
            return match_close(toks, i + 1) + 1
        if toks[i] == ("ident", "func"):
            i = match_close(toks, i + 1) + 1
            return i
        i += 1
        if i + 1 < len(toks) and toks[i] == ("op", ".") and toks[i + 1][0] == "ident":
            i += 2
        if i < len(toks) and toks[i] == ("op", "["):  # generic instantiation
            i = match_close(toks, i) + 1
        return i

    def primary(self, toks, i, env, ctx):
        t = toks[i]
        v = UNK
        name_chain = []
        if t[0] == "str":
            v, i = Str(unquote(t[1])), i + 1
        elif t[0] in ("num", "char"):
            v, i = UNK, i + 1
        elif t == ("op", "("):
            j = match_close(toks, i)
            v, _ = self.expr(toks[i + 1:j], 0, env, ctx)
            i = j + 1
        elif t == ("ident", "func"):
            j = match_close(toks, i + 1)
            params = parse_params(toks[i + 2:j])
            k = j + 1
            while toks[k] != ("op", "{"):
                if toks[k][0] == "op" and toks[k][1] in "([":
                    k = match_close(toks, k)
                k += 1
            e = match_close(toks, k)
            v = Closure(params, toks[k + 1:e], env, ctx)
            i = e + 1
        elif t == ("op", "[") or t == ("ident", "map"):
            j = self.parse_type_end(toks, i)
            ttoks = toks[i:j]
            i = j
            if i < len(toks) and toks[i] == ("op", "{"):
                e = match_close(toks, i)
                v = self.composite(ttoks, toks[i + 1:e], env, ctx)
                i = e + 1
            elif i < len(toks) and toks[i] == ("op", "("):  # conversion
                e = match_close(toks, i)
                v, _ = self.expr(toks[i + 1:e], 0, env, ctx)
                i = e + 1
        elif t == ("op", "{"):  # elided composite literal in a list
            e = match_close(toks, i)
            v = self.composite(None, toks[i + 1:e], env, ctx)
            i = e + 1
        elif t[0] == "ident":
            name = t[1]
            i += 1
            # composite literal T{...} / pkg.T{...}
            if i + 2 < len(toks) and toks[i] == ("op", ".") and toks[i + 1][0] == "ident" and \
                    toks[i + 2] == ("op", "{") and self.is_pkg(name, env, ctx):
                e = match_close(toks, i + 2)
                v = self.composite([t, toks[i], toks[i + 1]], toks[i + 3:e], env, ctx)
                i = e + 1
            elif i < len(toks) and toks[i] == ("op", "{") and self.is_type(name, ctx, env):
                e = match_close(toks, i)
                v = self.composite([t], toks[i + 1:e], env, ctx)
                i = e + 1
            elif name in env:
                v = env[name]
                name_chain = [name]
            elif self.is_pkg(name, env, ctx) and i + 1 < len(toks) and toks[i] == ("op", "."):
                sel = toks[i + 1][1]
                i += 2
                v = ("pkgsel", name, sel)
            else:
                v = ("ident", name)
        else:
            raise ValueError(f"unexpected {t}")
        # postfix
        while i < len(toks):
            t = toks[i]
            if t == ("op", "."):
                nt = toks[i + 1]
                if nt == ("op", "("):  # type assertion
                    i = match_close(toks, i + 1) + 1
                    continue
                sel = nt[1]
                i += 2
                v = ("sel", self.force(v, ctx), sel)
                continue
            if t == ("op", "("):
                e = match_close(toks, i)
                args = split_top(toks[i + 1:e], ",")
                args = [a for a in args if a]
                v = self.call(v, args, env, ctx)
                i = e + 1
                continue
            if t == ("op", "["):
                e = match_close(toks, i)
                base = self.force(v, ctx)
                idxv = self.eval(toks[i + 1:e], env, ctx)
                v = UNK
                i = e + 1
                if isinstance(base, List):
                    v = base.items[0] if base.items else UNK
                continue
            if t == ("op", "{") and isinstance(v, tuple) and v[0] == "sel" and False:
                break
            break
        return self.force(v, ctx), i

    def is_pkg(self, name, env, ctx):
        if name in env:
            return False
        return self.loader.resolve_alias(ctx.imports, name) is not None or name in (
            "cobra", "pflag", "fmt", "strings", "os", "errors", "i18n", "templates", "heredoc")

    def is_type(self, name, ctx, env):
        if name in env:
            return False
        return name in ctx.pkg.structs

    def force(self, v, ctx):
        """Resolve deferred names (identifiers, selectors) into values."""
        if not isinstance(v, tuple):
            return v
        kind = v[0]
        if kind == "ident":
            name = v[1]
            if name in ("nil", "true", "false"):
                return {"nil": None, "true": True, "false": False}[name]
            f = ctx.pkg.funcs.get(name)
            if f is not None:
                return FuncRef(f)
            g = ctx.pkg.globals.get(name)
            if g is not None:
                return self.global_value(ctx.pkg, name, g)
            return v
        if kind == "pkgsel":
            p = self.loader.resolve_alias(ctx.imports, v[1])
            if p in EXTERNAL_CONSTS and v[2] in EXTERNAL_CONSTS[p]:
                return Str(EXTERNAL_CONSTS[p][v[2]])
            pkg = self.loader.load(p) if p else None
            if pkg is None:
                return v
            f = pkg.funcs.get(v[2])
            if f is not None:
                return FuncRef(f)
            g = pkg.globals.get(v[2])
            if g is not None:
                return self.global_value(pkg, v[2], g)
            return v
        if kind == "sel":
            base, sel = v[1], v[2]
            if isinstance(base, Command):
                if sel in base.fields:
                    return base.fields[sel]
                return ("method", base, sel)
            if isinstance(base, Obj):
                if sel in base.fields:
                    return base.fields[sel]
                m = self.find_method(base, sel)
                if m is not None:
                    return ("bound", base, m)
                ft = self.field_type(base.pkg, base.tname, sel)
                if ft is not None:
                    fv = self.zero(ft[1], ft[0])
                    if not isinstance(fv, Unknown):
                        base.fields[sel] = fv
                    return fv
                return ("method", base, sel)
            return ("method", base, sel)
        return v

    def global_value(self, pkg, name, g):
        key = ("global", pkg.dir, name)
        cache = getattr(self, "_gcache", None)
        if cache is None:
            cache = self._gcache = {}
        if key in cache:
            return cache[key]
        cache[key] = UNK
        kind, toks, imports = g
        gctx = Ctx(pkg, imports)
        if kind == "expr":
            val = self.eval(toks, {}, gctx)
        else:
            val = self.zero(toks, gctx)
        cache[key] = val
        return val

    def field_type(self, pkg, tname, field, depth=0):
        if pkg is None or depth > 3:
            return None
        st = pkg.structs.get(tname)
        if st is None:
            return None
        imports = self.struct_imports(pkg, tname)
        if field in st:
            return (Ctx(pkg, imports), st[field])
        for emb in pkg.embedded.get(tname, []):
            alias, tn = type_name(emb)
            epkg = pkg
            if alias:
                p = self.loader.resolve_alias(imports, alias)
                epkg = self.loader.load(p) if p else None
            r = self.field_type(epkg, tn, field, depth + 1)
            if r:
                return r
        return None

    def struct_imports(self, pkg, tname):
        # imports of any file of the package (approximation: union)
        u = getattr(pkg, "_all_imports", None)
        if u is None:
            u = []
            for f in list(pkg.funcs.values()) + list(pkg.methods.values()):
                for imp in f.imports:
                    if imp not in u:
                        u.append(imp)
            for g in pkg.globals.values():
                for imp in g[2]:
                    if imp not in u:
                        u.append(imp)
            pkg._all_imports = u
        return u

    def find_method(self, obj, name, depth=0):
        pkg = obj.pkg
        if pkg is None or depth > 3:
            return None
        m = pkg.methods.get((obj.tname, name))
        if m is not None:
            return m
        imports = self.struct_imports(pkg, obj.tname)
        for emb in pkg.embedded.get(obj.tname, []):
            alias, tn = type_name(emb)
            epkg = pkg
            if alias:
                p = self.loader.resolve_alias(imports, alias)
                epkg = self.loader.load(p) if p else None
            if epkg is None:
                continue
            r = self.find_method(Obj(epkg, tn), name, depth + 1)
            if r is not None:
                return r
        return None

    def composite(self, ttoks, body, env, ctx):
        alias, tn = type_name(ttoks) if ttoks else (None, None)
        is_slice = bool(ttoks) and ttoks[0] == ("op", "[")
        elems = split_top(body, ",")
        elems = [e for e in elems if e]
        if not is_slice and alias == "cobra" and tn == "Command":
            return self.command_literal(elems, env, ctx)
        if is_slice or ttoks is None and not any(
                len(split_top(e, ":")) == 2 and e[0][0] == "ident" for e in elems):
            items = []
            for e in elems:
                parts = split_top(e, ":")
                items.append(self.eval(parts[-1], env, ctx))
            return List(items)
        pkg = ctx.pkg
        if alias:
            p = self.loader.resolve_alias(ctx.imports, alias)
            pkg = self.loader.load(p) if p else None
        if pkg is not None and tn not in pkg.structs and not any(
                len(split_top(e, ":")) == 2 for e in elems):
            # a named slice type (templates.CommandGroups{...})
            return List([self.eval(e, env, ctx) for e in elems])
        fields = {}
        extra = []
        for e in elems:
            parts = split_top(e, ":")
            if len(parts) == 2 and parts[0] and parts[0][0][0] == "ident":
                fields[parts[0][0][1]] = self.eval(parts[1], env, ctx)
            else:
                extra.append(self.eval(parts[-1], env, ctx))
        o = Obj(pkg, tn, fields, literal=True)
        o.extra = extra
        return o

    def command_literal(self, elems, env, ctx):
        c = Command()
        c.origin = ctx.pkg.dir
        for e in elems:
            parts = split_top(e, ":")
            if len(parts) != 2 or not parts[0] or parts[0][0][0] != "ident":
                continue
            key = parts[0][0][1]
            if key in ("Run", "RunE"):
                vt = parts[1]
                if vt == [("ident", "nil")]:
                    continue
                kind = "func"
                if vt and vt[0] == ("ident", "func"):
                    # a closure that only prints help or usage
                    words = {x[1] for x in vt if x[0] == "ident"}
                    if words & {"Help", "Usage", "UsageString", "DefaultSubCommandRun", "ShowHelp"} and \
                            len(vt) < 90 and not words & {"Run", "RunE", "Complete", "Validate"} and \
                            not any(w.startswith("run") for w in words):
                        kind = "help"
                elif vt and all(x[0] == "ident" or x == ("op", ".") for x in vt) and \
                        vt[-1][1] in ("Run", "RunE"):
                    # `RunE: rootcmd.RunE`: the kind of the command it borrows from
                    borrowed = self.eval(vt, env, ctx)
                    if borrowed in ("help", "func"):
                        kind = borrowed
                elif vt and vt[0][0] == "ident":
                    # a call: its name tells if it only prints help
                    names = [x[1] for x in vt if x[0] == "ident"]
                    if any(n in ("ShowHelp", "DefaultSubCommandRun", "NoArgs", "Help") for n in names):
                        kind = "help"
                c.fields[key] = kind
                continue
            if key in ("Use", "Short", "Aliases", "Hidden", "Deprecated", "Annotations", "GroupID"):
                c.fields[key] = self.eval(parts[1], env, ctx)
        return c

    def call(self, callee, args, env, ctx):
        callee = self.force(callee, ctx)
        if isinstance(callee, FuncRef) and callee.func.key() in self.special:
            return self.special[callee.func.key()](self, [], ctx)
        argv = None

        def get_args():
            nonlocal argv
            if argv is None:
                argv = []
                for a in args:
                    spread = a and a[-1] == ("op", "...")
                    val = self.eval(a[:-1] if spread else a, env, ctx)
                    if spread and isinstance(val, List):
                        argv.extend(val.items)
                    else:
                        argv.append(val)
            return argv

        if isinstance(callee, FuncRef):
            return self.invoke(callee.func, None, get_args(), ctx)
        if isinstance(callee, Closure):
            return self.invoke_closure(callee, get_args())
        if isinstance(callee, tuple) and callee[0] == "bound":
            return self.invoke(callee[2], callee[1], get_args(), ctx)
        if isinstance(callee, tuple) and callee[0] == "method":
            base, name = callee[1], callee[2]
            if isinstance(base, Command):
                return self.command_method(base, name, get_args(), args, env, ctx)
            if isinstance(base, FlagSet):
                return self.flag_method(base, name, args, env, ctx)
            if isinstance(base, FlagRef):
                return UNK
            if isinstance(base, Obj) and base.tname == "CommandGroups" and name == "Add":
                target = get_args()[0] if get_args() else None
                if isinstance(target, Command):
                    for grp in base.extra if hasattr(base, "extra") else []:
                        pass
                return UNK
            if isinstance(base, List) and name == "Add":
                target = get_args()[0] if get_args() else None
                if isinstance(target, Command):
                    for grp in base.items:
                        if isinstance(grp, Obj) and isinstance(grp.fields.get("Commands"), List):
                            for c in grp.fields["Commands"].items:
                                if isinstance(c, Command):
                                    target.children.append(c)
                return UNK
            a = get_args()
            self.note_unresolved(f"method {name} on {type(base).__name__}"
                                 f"{'(' + base.tname + ')' if isinstance(base, Obj) else ''}", a, ctx)
            return UNK
        if isinstance(callee, tuple) and callee[0] == "ident":
            name = callee[1]
            a = get_args()
            if name == "append":
                items = []
                for x in a:
                    if isinstance(x, List):
                        items.extend(x.items)
                    elif x is not None:
                        items.append(x)
                return List(items)
            if name == "new" or name in ("len", "make", "cap", "panic", "string", "bool", "int",
                                         "copy", "delete", "error", "any"):
                return UNK
            self.note_unresolved(f"func {name}", a, ctx)
            return UNK
        if isinstance(callee, tuple) and callee[0] == "pkgsel":
            a = get_args()
            key = f"{callee[1]}.{callee[2]}"
            if key in self.special:
                return self.special[key](self, a, ctx)
            if callee[2] in PASS_THROUGH and a and isinstance(a[0], Str):
                return a[0]
            if callee[1] == "cobra" or callee[1] == "pflag":
                return UNK
            self.note_unresolved(f"func {key}", a, ctx)
            return UNK
        get_args()
        return UNK

    def note_unresolved(self, what, argv, ctx):
        if any(isinstance(x, (Command, FlagSet)) for x in argv):
            where = os.path.relpath(ctx.pkg.dir, self.base)
            self.unresolved.setdefault(f"{what} ({where})", 0)
            self.unresolved[f"{what} ({where})"] += 1

    def command_method(self, cmd, name, argv, args, env, ctx):
        if name in ("Flags", "LocalFlags", "LocalNonPersistentFlags", "NonInheritedFlags"):
            return FlagSet(cmd, False)
        if name == "PersistentFlags":
            return FlagSet(cmd, True)
        if name == "AddCommand":
            for a in argv:
                if isinstance(a, Command):
                    cmd.children.append(a)
                elif isinstance(a, List):
                    cmd.children.extend(x for x in a.items if isinstance(x, Command))
            return UNK
        if name == "Name":
            u = cmd.fields.get("Use")
            return Str(u.s.split()[0]) if isinstance(u, Str) and u.s.split() else UNK
        if name == "Commands":
            return List(list(cmd.children))
        return UNK

    def flag_method(self, fs, name, args, env, ctx):
        if name == "Lookup" or name == "ShorthandLookup":
            a = self.eval(args[0], env, ctx) if args else UNK
            if isinstance(a, Str):
                for f in fs.cmd.flags:
                    if (f[0] if name == "Lookup" else f[1]) == a.s:
                        return FlagRef(fs.cmd, f)
            return FlagRef(fs.cmd, None)
        if name == "AddFlagSet":
            a = self.eval(args[0], env, ctx) if args else UNK
            if isinstance(a, FlagSet):
                for f in a.cmd.flags:
                    if a.persistent == f[3] or not a.persistent:
                        fs.cmd.flags.append([f[0], f[1], f[2], fs.persistent])
            else:
                self.note_unresolved("AddFlagSet(unknown)", [fs], ctx)
            return UNK
        m = FLAG_RE.match(name)
        if not m or name in ("", "Var") and False:
            return UNK
        base, var, short, _ = m.groups()
        if base is None and not var:
            return UNK
        argv = [self.eval(a, env, ctx) for a in args]
        k = 0
        if var or base is None:
            k = 1  # the pointer / Value
        if len(argv) <= k:
            return UNK
        nm = argv[k]
        sh = argv[k + 1] if short and len(argv) > k + 1 else Str("")
        if not isinstance(nm, Str):
            self.note_unresolved(f"flag {name} with unknown name", [fs], ctx)
            return UNK
        takes = base not in ("Bool", "Count", "BoolFunc")
        if base is None and var:  # Var/VarP/VarPF: bool-like Value types take none
            val = argv[0]
            if isinstance(val, Obj) and self.find_method(val, "IsBoolFlag") is not None:
                takes = False
        flag = [nm.s, sh.s if isinstance(sh, Str) else "", takes, fs.persistent]
        fs.cmd.flags.append(flag)
        return FlagRef(fs.cmd, flag)

    def invoke(self, func, recv, argv, callctx):
        key = func.key()
        if self.stack.count(key) >= 2 or len(self.stack) > 60:
            return UNK
        self.stack.append(key)
        try:
            env = {}
            ctx = Ctx(func.pkg, func.imports)
            if func.recv_name:
                env[func.recv_name] = recv if recv is not None else Obj(func.pkg, func.recv_type)
            for k, (pname, ptype, variadic) in enumerate(func.params):
                if variadic:
                    v = List(argv[k:])
                elif k < len(argv) and argv[k] is not UNK and not isinstance(argv[k], tuple):
                    v = argv[k]
                else:
                    v = self.zero(ptype, ctx)
                env[pname] = v
            ret = []
            self.run_block(func.body, env, ctx, ret)
            return ret[0] if ret else UNK
        finally:
            self.stack.pop()

    def invoke_closure(self, cl, argv):
        env = dict(cl.env)
        for k, (pname, ptype, variadic) in enumerate(cl.params):
            env[pname] = argv[k] if k < len(argv) else UNK
        ret = []
        self.run_block(cl.body, env, cl.ctx, ret)
        return ret[0] if ret else UNK


# ---------------------------------------------------------------- output


def first_word(v):
    if isinstance(v, Str) and v.s.split():
        return v.s.split()[0]
    return None


def to_tree(cmd, interp, seen_path, problems):
    use = cmd.fields.get("Use")
    name = first_word(use)
    aliases = cmd.fields.get("Aliases")
    al = []
    if isinstance(aliases, List):
        for a in aliases.items:
            if isinstance(a, Str):
                al.append(a.s)
            else:
                problems.append(f"{'/'.join(seen_path + [str(name)])}: an alias not known statically")
    short = cmd.fields.get("Short")
    hidden = cmd.fields.get("Hidden")
    dep = cmd.fields.get("Deprecated")
    run = cmd.fields.get("RunE") or cmd.fields.get("Run")
    node = {
        "name": name,
        "use": use.s if isinstance(use, Str) else None,
        "aliases": sorted(set(al)),
        "short": short.s.strip() if isinstance(short, Str) else "",
        "run": run or "",
        "hidden": hidden is True,
        "deprecated": dep.s if isinstance(dep, Str) else "",
        "flags": [],
        "children": [],
    }
    if name is None:
        problems.append(f"{'/'.join(seen_path)}: a child whose Use is not known statically (from {os.path.relpath(cmd.origin, interp.base)})")
        node["name"] = "?"
    flags = {}
    for f in cmd.flags:
        k = (f[0], f[3])
        if k in flags:
            old = flags[k]
            old[2] = old[2] and f[2]
            if f[1] and not old[1]:
                old[1] = f[1]
            continue
        flags[k] = list(f)
    node["flags"] = sorted(([n, s, t, p] for (n, s, t, p) in flags.values()), key=lambda x: (x[0], x[3]))
    names = {}
    for ch in cmd.children:
        sub = to_tree(ch, interp, seen_path + [node["name"]], problems)
        if sub["name"] == "?":
            continue
        if sub["name"] in names:
            problems.append(f"{'/'.join(seen_path + [node['name'], sub['name']])}: added twice (first kept)")
            continue
        names[sub["name"]] = sub
    node["children"] = [names[k] for k in sorted(names)]
    return node


# ---------------------------------------------------------------- tools


def docker_commands(interp, argv, ctx):
    """internal/commands.Commands(): the constructors registered by init() functions."""
    out = []
    for pkg in list(interp.loader.pkgs.values()):
        pass
    base = interp.docker_base
    for root, dirs, files in sorted(os.walk(os.path.join(base, "cli", "command"))):
        dirs.sort()
        ipath = "github.com/docker/cli/" + os.path.relpath(root, base)
        pkg = interp.loader.load(ipath)
        if pkg is None:
            continue
        for f in pkg.inits:
            for st in split_top(f.body, ";"):
                if len(st) > 4 and st[0][0] == "ident" and st[1] == ("op", ".") and \
                        st[2][1] in ("Register", "RegisterLegacy"):
                    fname = st[4][1]
                    fn = pkg.funcs.get(fname)
                    if fn is not None:
                        out.append(FuncRef(fn))
    return List(out)


TOOLS = {
    "kubectl": {
        "commit": "73fdc7a337b55d4097e8723cb44d09ac7473e1d4",
        "repo": "kubernetes/kubectl", "tag": "v0.36.3",
        "version": "kubectl v1.36.3 (kubernetes/kubectl v0.36.3 = kubernetes-1.36.3)",
        "roots": [("k8s.io/kubectl", "kubectl"), ("k8s.io/cli-runtime", "cli-runtime")],
        "entry": ("k8s.io/kubectl/pkg/cmd", "NewKubectlCommand"),
        "dir": "staging/src/k8s.io/kubectl/pkg/cmd",
        "also": "kubernetes/cli-runtime v0.36.2 (commit c97bc2fe537b7780b37b8390a6b1e767b046f695): "
                "pkg/genericclioptions flag helpers",
    },
    "helm": {
        "commit": "3900f434fd3ef2b84065dc04508df48f288dba00",
        "repo": "helm/helm", "tag": "v4.2.4", "version": "helm v4.2.4",
        "roots": [("helm.sh/helm/v4", "helm")],
        "entry": ("helm.sh/helm/v4/pkg/cmd", "newRootCmdWithConfig"),
        "dir": "pkg/cmd",
    },
    "gh": {
        "commit": "44ee17760709bedf1cad7e452e61751489b81a33",
        "repo": "cli/cli", "tag": "v2.60.0", "version": "gh v2.60.0",
        "roots": [("github.com/cli/cli/v2", "gh")],
        "entry": ("github.com/cli/cli/v2/pkg/cmd/root", "NewCmdRoot"),
        "dir": "pkg/cmd",
    },
    "docker": {
        "commit": "a7dcaa6fdb6ed04aacbfdc76357fdae01605609e",
        "repo": "docker/cli", "tag": "v29.7.2", "version": "docker v29.7.2",
        "roots": [("github.com/docker/cli", "docker")],
        "entry": ("github.com/docker/cli/cmd/docker", "newDockerCommand"),
        "dir": "cli/command",
    },
    "buildx": {
        "commit": "1d8dde89b8aba914e05e45366770736fea1fd690",
        "repo": "docker/buildx", "tag": "v0.36.1", "version": "docker buildx v0.36.1",
        "roots": [("github.com/docker/buildx", "buildx")],
        "entry": ("github.com/docker/buildx/commands", "NewRootCmd"),
        "args": ["buildx"],
        "dir": "commands",
    },
    "compose": {
        "commit": "870908cc8f07f5e90acdf5d34dd1b96a4fe51d16",
        "repo": "docker/compose", "tag": "v5.5.0", "version": "docker compose v5.5.0",
        "roots": [("github.com/docker/compose/v5", "compose")],
        "entry": ("github.com/docker/compose/v5/cmd/compose", "RootCommand"),
        "dir": "cmd/compose",
    },
}


def hand_node(name, short, flags=(), children=(), run="func", hand="", hidden=False):
    fl = []
    for spec in flags:  # "-o/--output=" style
        sh, _, long = spec.rpartition("/")
        fl.append([long.lstrip("-").rstrip("="), sh.lstrip("-"), long.endswith("="), False])
    return {"name": name, "use": name, "aliases": [], "short": short, "run": run, "hidden": hidden,
            "deprecated": "", "flags": sorted(fl), "children": list(children), "hand": hand}


COBRA_HELP = "cobra's default help command (added by cobra.Command.InitDefaultHelpCmd at run time)"

# Commands the interpreter cannot see, added by hand with the reason.
HAND = {
    "kubectl": [
        hand_node("kustomize", "Build a kustomization target from a directory or URL",
                  flags=["-o/--output=", "--enable-helm", "--load-restrictor=", "--enable-alpha-plugins",
                         "--enable-exec", "-e/--env=", "--mount=", "--network", "--network-name=",
                         "--as-current-user", "--helm-command=", "--reorder="],
                  hand="built by sigs.k8s.io/kustomize/kustomize/v5/commands/build.NewCmdBuild, outside "
                       "kubectl's source; flags from kustomize v5's build command"),
    ],
    "docker": [
        hand_node("completion", "Generate the autocompletion script for the specified shell", hidden=True,
                  run="", hand="cobra's default completion command (docker sets "
                               "CompletionOptions.HiddenDefaultCmd)",
                  children=[hand_node(sh, f"Generate the autocompletion script for {sh}",
                                      flags=["--no-descriptions"], hand="cobra's default completion command")
                            for sh in ("bash", "fish", "powershell", "zsh")]),
    ],
}


# Flags the interpreter cannot name, added by hand: path -> [name, shorthand, takes a value, persistent].
HAND_FLAGS = {
    "kubectl": {
        # cmd.PersistentFlags().StringVar(..., pathOptions.ExplicitFileFlag, ...): the name comes from
        # clientcmd.NewDefaultPathOptions() in client-go (RecommendedConfigPathFlag = "kubeconfig").
        "config": [["kubeconfig", "", True, True]],
    },
}


def find_node(tree, path):
    node = tree
    for w in path.split():
        node = next((c for c in node["children"] if c["name"] == w), None)
        if node is None:
            return None
    return node


def extract(tool, base):
    conf = TOOLS[tool]
    roots = [(m, os.path.join(base, d)) for m, d in conf["roots"]]
    loader = Loader(roots)
    special = {}
    interp = Interp(loader, special)
    interp.base = os.path.join(base, conf["roots"][0][1])
    if tool == "docker":
        interp.docker_base = roots[0][1]
        special[roots[0][1] + "/internal/commands:Commands"] = docker_commands
    ipath, fname = conf["entry"]
    pkg = loader.load(ipath)
    func = pkg.funcs[fname]
    args = [Str(a) for a in conf.get("args", [])]
    root = interp.invoke(func, None, args, Ctx(pkg, func.imports))
    if isinstance(root, Obj):  # docker: cli.TopLevelCommand wraps the root
        for v in list(root.fields.values()):
            if isinstance(v, Command):
                root = v
    if not isinstance(root, Command):
        sys.exit(f"{tool}: the root constructor returned no command")
    problems = []
    tree = to_tree(root, interp, [], problems)
    extra = HAND.get(tool, []) + [hand_node("help", "Help about any command", hand=COBRA_HELP)]
    names = {c["name"] for c in tree["children"]}
    for node in extra:
        if node["name"] not in names:
            tree["children"].append(node)
    tree["children"].sort(key=lambda c: c["name"])
    for path, flags in HAND_FLAGS.get(tool, {}).items():
        node = find_node(tree, path)
        if node is None:
            sys.exit(f"{tool}: HAND_FLAGS: no command {path!r}")
        node["flags"] = sorted(node["flags"] + flags, key=lambda x: (x[0], x[3]))
    return {
        "tool": tool,
        "repo": conf["repo"],
        "tag": conf["tag"],
        "commit": conf["commit"],
        "version": conf["version"],
        "also": conf.get("also", ""),
        "dir": conf["dir"],
        "problems": sorted(set(problems)),
        "unresolved": sorted(interp.unresolved),
        "root": tree,
    }


# docker forwards `build`, `image build`, `bake` and `builder ...` to the buildx plugin when it is
# installed (cmd/docker/builder.go: forwardBuilder), so those take buildx's flags and subcommands.
BUILDX_VIA = "with buildx's flags and subcommands: docker forwards it to buildx when the plugin is installed"


def graft_buildx(out, bx):
    """docker buildx (a plugin), and the commands docker forwards to it (cmd/docker/builder.go)."""
    import copy
    root = out["root"]
    buildx = bx["root"]
    buildx["name"] = "buildx"
    kids = {c["name"]: c for c in root["children"]}
    kids["buildx"] = buildx
    bkids = {c["name"]: c for c in buildx["children"]}
    # the buildx root's persistent flags (--builder, --debug) apply after forwarding
    root_pflags = [[f[0], f[1], f[2], False] for f in buildx["flags"] if f[3]]

    def merge(node, src, extra):
        names = {(f[0], f[3]) for f in node["flags"]}
        for f in src["flags"] + extra:
            if (f[0], f[3]) not in names:
                node["flags"].append(list(f))
                names.add((f[0], f[3]))
        node["flags"].sort(key=lambda x: (x[0], x[3]))
        node["via"] = BUILDX_VIA

    merge(kids["build"], bkids["build"], root_pflags)
    image = kids["image"]
    merge(next(c for c in image["children"] if c["name"] == "build"), bkids["build"], root_pflags)
    bake = copy.deepcopy(bkids["bake"])
    bake["flags"] = sorted(bake["flags"] + root_pflags, key=lambda x: (x[0], x[3]))
    bake["via"] = BUILDX_VIA
    bake["aliases"] = []  # only `bake` is forwarded, not buildx's alias `f`
    kids.setdefault("bake", bake)
    builder = kids["builder"]
    builder["flags"] = sorted(builder["flags"] + [[f[0], f[1], f[2], True] for f in root_pflags],
                              key=lambda x: (x[0], x[3]))
    builder["via"] = BUILDX_VIA
    have = {c["name"]: c for c in builder["children"]}
    for name, c in bkids.items():
        if name in have:
            merge(have[name], c, [])
        elif name != "help":
            c2 = copy.deepcopy(c)
            c2["via"] = BUILDX_VIA
            builder["children"].append(c2)
    builder["children"].sort(key=lambda c: c["name"])
    root["children"] = [kids[k] for k in sorted(kids)]
    out["buildx"] = {k: bx[k] for k in ("repo", "tag", "commit", "version", "dir")}
    out["problems"] += ["buildx: " + p for p in bx["problems"]]
    out["unresolved"] += ["buildx: " + p for p in bx["unresolved"]]


def main():
    tool, base = sys.argv[1], sys.argv[2]
    out = extract(tool, base)
    if tool == "docker":
        comp = extract("compose", base)
        compose = comp["root"]
        compose["name"] = "compose"
        out["root"]["children"] = sorted(
            [c for c in out["root"]["children"] if c["name"] != "compose"] + [compose],
            key=lambda c: c["name"])
        out["compose"] = {k: comp[k] for k in ("repo", "tag", "commit", "version", "dir")}
        out["problems"] += ["compose: " + p for p in comp["problems"]]
        out["unresolved"] += ["compose: " + p for p in comp["unresolved"]]
        graft_buildx(out, extract("buildx", base))
    json.dump(out, sys.stdout, sort_keys=True, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

"""A small, forgiving interpreter for the subset of Go that builds cobra command trees.

Used by extract_more.py (flyctl, doctl, supabase). It does not type-check or compile anything:
it tokenizes Go files, parses functions and package-level declarations, and *runs* the command
constructors symbolically. Values it cannot compute become UNK; `if` conditions it cannot decide
run both branches; loops over unknown values run once. What it models precisely is what matters
for a command tree: `&cobra.Command{...}` literals, field assignments (Use, Short, Aliases, Run*),
`AddCommand`, `Flags()/PersistentFlags()` flag definitions (pflag's Xxx/XxxP/XxxVar/XxxVarP/Var*),
function calls across packages of the module, closures (doctl's option funcs), `append`,
`fmt.Sprintf` and string concatenation. Tool-specific flag helpers are hooked by the caller.
"""

import os
import re
import sys

# ---------------------------------------------------------------- tokens

_TOK = re.compile(r"""
 (?P<ws>[ \t\r]+)
|(?P<nl>\n)
|(?P<lc>//[^\n]*)
|(?P<bc>/\*.*?\*/)
|(?P<raw>`[^`]*`)
|(?P<str>"(?:\\.|[^"\\\n])*")
|(?P<chr>'(?:\\.|[^'\\\n])+')
|(?P<num>\.?[0-9][0-9a-zA-Z_.]*(?:[eEpP][+-][0-9]+)?)
|(?P<id>[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)
|(?P<op>\.\.\.|<<=|>>=|&\^=|:=|==|!=|<=|>=|&&|\|\||<-|\+\+|--|\+=|-=|\*=|/=|%=|&=|\|=|\^=|<<|>>|&\^|[-+*/%&|^<>=!(){}\[\],;.:~])
""", re.X | re.S)

SEMI_AFTER_KW = {"break", "continue", "fallthrough", "return"}


class Tok:
    __slots__ = ("k", "v")

    def __init__(self, k, v):
        self.k, self.v = k, v

    def __repr__(self):
        return f"{self.k}:{self.v}"


def tokenize(src):
    out = []
    pos = 0
    n = len(src)
    while pos < n:
        m = _TOK.match(src, pos)
        if not m:
            pos += 1
            continue
        pos = m.end()
        kind = m.lastgroup
        text = m.group()
        if kind in ("ws", "lc"):
            continue
        if kind == "bc":
            if "\n" in text:
                kind = "nl"
            else:
                continue
        if kind == "nl":
            if out:
                last = out[-1]
                if (last.k in ("id", "str", "raw", "num", "chr") and (last.k != "id" or last.v not in KEYWORDS or last.v in SEMI_AFTER_KW)) \
                        or (last.k == "op" and last.v in (")", "]", "}", "++", "--")):
                    out.append(Tok("op", ";"))
            continue
        if kind == "raw":
            out.append(Tok("str", text[1:-1]))
        elif kind == "str":
            out.append(Tok("str", _unquote(text[1:-1])))
        else:
            out.append(Tok("id" if kind == "id" else ("op" if kind == "op" else "lit"), text))
    out.append(Tok("op", ";"))
    out.append(Tok("eof", ""))
    return out


KEYWORDS = {"break", "case", "chan", "const", "continue", "default", "defer", "else", "fallthrough",
            "for", "func", "go", "goto", "if", "import", "interface", "map", "package", "range",
            "return", "select", "struct", "switch", "type", "var"}


def _unquote(s):
    try:
        return bytes(s, "utf-8").decode("unicode_escape").encode("latin-1").decode("utf-8")
    except Exception:
        return s.replace('\\"', '"').replace("\\n", "\n").replace("\\t", "\t").replace("\\\\", "\\")


# ---------------------------------------------------------------- parser

class ParseError(Exception):
    pass


class Parser:
    def __init__(self, toks):
        self.t = toks
        self.i = 0
        self.nocomp = 0  # >0 inside if/for/switch headers: `T{` is not a composite literal

    # helpers
    def peek(self, o=0):
        return self.t[min(self.i + o, len(self.t) - 1)]

    def at(self, v, o=0):
        t = self.peek(o)
        return t.v == v and t.k in ("op", "id")

    def next(self):
        t = self.t[self.i]
        self.i += 1
        return t

    def expect(self, v):
        t = self.next()
        if t.v != v:
            raise ParseError(f"want {v!r} got {t.v!r} at {self.i}")
        return t

    def skip_semis(self):
        while self.at(";"):
            self.i += 1

    def skip_balanced(self):
        """At an opening bracket: skip to just after its match."""
        op = self.next().v
        close = {"(": ")", "[": "]", "{": "}"}[op]
        depth = 1
        while depth:
            t = self.next()
            if t.k == "eof":
                raise ParseError("eof in brackets")
            if t.k == "op":
                if t.v in "([{":
                    depth += 1
                elif t.v in ")]}":
                    depth -= 1

    # ------------------------------------------------ file level
    def file(self):
        decls = {"funcs": [], "methods": [], "vars": [], "imports": {}, "package": None}
        self.skip_semis()
        self.expect("package")
        decls["package"] = self.next().v
        self.skip_semis()
        while self.peek().k != "eof":
            t = self.peek()
            if t.v == "import":
                self.next()
                if self.at("("):
                    self.next()
                    self.skip_semis()
                    while not self.at(")"):
                        self._import(decls)
                        self.skip_semis()
                    self.next()
                else:
                    self._import(decls)
            elif t.v == "func":
                self.next()
                recv = None
                if self.at("("):
                    start = self.i
                    self.skip_balanced()
                    rt = [x.v for x in self.t[start + 1:self.i - 1] if x.k == "id"]
                    recv = (rt[0] if len(rt) >= 2 else None, rt[-1] if rt else None)
                name = self.next().v
                if self.at("["):
                    self.skip_balanced()
                params = self.params()
                results = self.result_type()
                body = None
                if self.at("{"):
                    body = self.block()
                if results:
                    params = params + [("$results", results)]
                if recv:
                    decls["methods"].append((recv, name, params, body))
                else:
                    decls["funcs"].append((name, params, body))
            elif t.v in ("var", "const"):
                self.next()
                for spec in self.var_specs(t.v == "const"):
                    decls["vars"].append(spec)
            elif t.v == "type":
                self.next()
                if self.at("("):
                    self.skip_balanced()
                else:
                    self.next()
                    if self.at("["):
                        # generic type params or array type: skip
                        self.skip_balanced()
                    self.skip_type()
            else:
                self.next()
            self.skip_semis()
        return decls

    def _import(self, decls):
        alias = None
        if self.peek().k in ("id",) or self.at("."):
            alias = self.next().v
        path = self.next().v
        if alias in (None,):
            alias = path.rsplit("/", 1)[-1]
            alias = re.sub(r"^v[0-9]+$", "", alias) or path.rsplit("/", 2)[-2]
            alias = alias.replace("-", "_").replace(".", "_")
            if alias.startswith("go_"):
                alias = alias[3:]
        decls["imports"][alias] = path

    def var_specs(self, is_const):
        specs = []
        if self.at("("):
            self.next()
            self.skip_semis()
            iota_prev = None
            while not self.at(")"):
                s = self.one_var_spec()
                if is_const and s[1] is None:
                    s = (s[0], iota_prev)
                iota_prev = s[1]
                specs.append(s)
                self.skip_semis()
            self.next()
        else:
            specs.append(self.one_var_spec())
        # flatten name lists
        flat = []
        for names, values in specs:
            for k, nm in enumerate(names):
                v = None
                if values is not None:
                    v = values[k] if k < len(values) else None
                flat.append((nm, v))
        return flat

    def one_var_spec(self):
        names = [self.next().v]
        while self.at(","):
            self.next()
            names.append(self.next().v)
        values = None
        if not self.at("=") and not self.at(";") and not self.at(")"):
            self.skip_type()
        if self.at("="):
            self.next()
            values = self.expr_list()
        return (names, values)

    def params(self):
        """Parse (a, b T, c ...U) -> list of (name, variadic)."""
        start = self.i
        self.skip_balanced()
        toks = self.t[start + 1:self.i - 1]
        items, cur, depth = [], [], 0
        for x in toks:
            if x.k == "op" and x.v in "([{":
                depth += 1
            elif x.k == "op" and x.v in ")]}":
                depth -= 1
            if depth == 0 and x.k == "op" and x.v == ",":
                items.append(cur)
                cur = []
            else:
                cur.append(x)
        if cur:
            items.append(cur)
        named = any(len(it) >= 2 and it[0].k == "id" and not (it[1].k == "op" and it[1].v == ".") for it in items)
        out = []
        for it in items:
            if not it:
                continue
            if named:
                out.append((it[0].v, len(it) > 1 and it[1].v == "..."))
            else:
                out.append(("_", it[0].v == "..."))
        return out

    def result_type(self):
        """Skip a result type; return the names of named results."""
        if self.at("{") or self.at(";"):
            return []
        if self.at("("):
            return [n for n, _ in self.params() if n != "_"]
        self.skip_type()
        return []

    def skip_type(self):
        t = self.peek()
        if t.v in ("*", "[]") or (t.v == "[" ):
            if t.v == "[":
                self.skip_balanced()
            else:
                self.next()
            return self.skip_type()
        if t.v == "map":
            self.next()
            self.skip_balanced()
            return self.skip_type()
        if t.v == "chan":
            self.next()
            if self.at("<-"):
                self.next()
            return self.skip_type()
        if t.v == "<-":
            self.next()
            return self.skip_type()
        if t.v == "func":
            self.next()
            self.params()
            if not (self.at(";") or self.at(",") or self.at(")") or self.at("{") or self.at("]") or self.at("=")):
                self.result_type()
            return
        if t.v in ("struct", "interface"):
            self.next()
            self.skip_balanced()
            return
        if t.v == "(":
            self.skip_balanced()
            return
        if t.k == "id":
            self.next()
            if self.at("."):
                self.next()
                self.next()
            if self.at("["):
                self.skip_balanced()
            return
        self.next()

    # ------------------------------------------------ statements
    def block(self):
        self.expect("{")
        stmts = []
        self.skip_semis()
        while not self.at("}"):
            s = self.stmt()
            if s is not None:
                stmts.append(s)
            self.skip_semis()
        self.next()
        return ("block", stmts)

    def stmt(self):
        t = self.peek()
        v = t.v if t.k == "id" or t.k == "op" else None
        if v == "{":
            return self.block()
        if v == "if":
            return self.if_stmt()
        if v == "for":
            self.next()
            self.nocomp += 1
            hdr = self.for_header()
            self.nocomp -= 1
            body = self.block()
            return ("for", hdr, body)
        if v in ("switch", "select"):
            self.next()
            self.nocomp += 1
            init = tag = None
            if not self.at("{"):
                s = self.simple_stmt()
                if self.at(";"):
                    self.next()
                    init = s
                    if not self.at("{"):
                        tag = self.simple_stmt()
                else:
                    tag = s
            self.nocomp -= 1
            self.expect("{")
            clauses = []
            self.skip_semis()
            while not self.at("}"):
                if self.at("case"):
                    self.next()
                    s_ = self.simple_stmt()
                    exprs = [s_[1]] if s_[0] == "expr" else []
                else:
                    self.expect("default")
                    exprs = None
                self.expect(":")
                body = []
                self.skip_semis()
                while not (self.at("case") or self.at("default") or self.at("}")):
                    s = self.stmt()
                    if s is not None:
                        body.append(s)
                    self.skip_semis()
                clauses.append((exprs, ("block", body)))
            self.next()
            return ("switch", init, tag, clauses)
        if v == "return":
            self.next()
            if self.at(";") or self.at("}"):
                return ("return", [])
            return ("return", self.expr_list())
        if v in ("break", "continue"):
            self.next()
            if self.peek().k == "id":
                self.next()
            return (v,)
        if v in ("goto", "fallthrough"):
            self.next()
            if self.peek().k == "id":
                self.next()
            return None
        if v in ("var", "const"):
            self.next()
            return ("vars", self.var_specs(v == "const"))
        if v == "type":
            self.next()
            if self.at("("):
                self.skip_balanced()
            else:
                self.next()
                self.skip_type()
            return None
        if v in ("go", "defer"):
            self.next()
            self.expr()
            return None
        if t.k == "id" and self.at(":", 1) and not self.at(":=", 1):
            self.next()
            self.next()
            return None
        return self.simple_stmt()

    def if_stmt(self):
        self.expect("if")
        self.nocomp += 1
        init = None
        s = self.simple_stmt()
        if self.at(";"):
            self.next()
            init = s
            s = self.simple_stmt()
        self.nocomp -= 1
        cond = s[1] if s[0] == "expr" else None
        then = self.block()
        els = None
        if self.at("else"):
            self.next()
            if self.at("if"):
                els = self.if_stmt()
            else:
                els = self.block()
        return ("if", init, cond, then, els)

    def for_header(self):
        if self.at("{"):
            return ("forever",)
        # range form?
        save = self.i
        depth = 0
        j = self.i
        has_range = False
        while True:
            t = self.t[j]
            if t.k == "eof":
                break
            if t.k == "op" and t.v in "([":
                depth += 1
            elif t.k == "op" and t.v in ")]":
                depth -= 1
            elif depth == 0 and t.k == "op" and t.v == "{":
                break
            elif depth == 0 and t.v == "range" and t.k == "id":
                has_range = True
            j += 1
        if has_range:
            names = []
            while not self.at("range"):
                t = self.next()
                if t.k == "id":
                    names.append(t.v)
            self.next()
            x = self.expr()
            return ("range", names, x)
        init = cond = post = None
        s = None if self.at(";") else self.simple_stmt()
        if self.at(";"):
            self.next()
            init = s
            cond = None if self.at(";") else self.simple_stmt()
            self.expect(";")
            post = None if self.at("{") else self.simple_stmt()
        else:
            cond = s
        return ("cfor", init, cond, post)

    def simple_stmt(self):
        lhs = self.expr_list()
        t = self.peek()
        if t.k == "op" and t.v in (":=", "=", "+=", "-=", "*=", "/=", "|=", "&=", "%=", "<<=", ">>=", "^=", "&^="):
            self.next()
            if self.at("range"):
                self.next()
                return ("rangeassign", lhs, self.expr())
            rhs = self.expr_list()
            return ("assign", t.v, lhs, rhs)
        if t.k == "op" and t.v in ("++", "--"):
            self.next()
            return ("incdec", lhs)
        if t.k == "op" and t.v == "<-":
            self.next()
            self.expr()
            return ("expr", ("unk",))
        return ("expr", lhs[0])

    # ------------------------------------------------ expressions
    def expr_list(self):
        out = [self.expr()]
        while self.at(","):
            self.next()
            out.append(self.expr())
        return out

    def expr_list_loose(self, stop):
        out = [self.expr()]
        while self.at(","):
            self.next()
            out.append(self.expr())
        return out

    BIN = {"||": 1, "&&": 2, "==": 3, "!=": 3, "<": 3, "<=": 3, ">": 3, ">=": 3,
           "+": 4, "-": 4, "|": 4, "^": 4, "*": 5, "/": 5, "%": 5, "<<": 5, ">>": 5, "&": 5, "&^": 5}

    def expr(self, prec=1):
        x = self.unary()
        while True:
            t = self.peek()
            p = self.BIN.get(t.v) if t.k == "op" else None
            if p is None or p < prec:
                return x
            self.next()
            y = self.expr(p + 1)
            x = ("bin", t.v, x, y)

    def unary(self):
        t = self.peek()
        if t.k == "op" and t.v in ("&", "*", "!", "-", "+", "^", "<-"):
            self.next()
            x = self.unary()
            if t.v in ("&", "*", "+"):
                return x
            if t.v == "!":
                return ("not", x)
            return ("unk",)
        return self.primary()

    def primary(self):
        t = self.peek()
        x = None
        if t.k == "str":
            self.next()
            x = ("str", t.v)
        elif t.k == "lit":
            self.next()
            x = ("num", t.v)
        elif t.k == "op" and t.v == "(":
            self.next()
            self.nocomp_save = self.nocomp
            saved = self.nocomp
            self.nocomp = 0
            x = self.expr()
            self.nocomp = saved
            self.expect(")")
        elif t.k == "id" and t.v == "func":
            self.next()
            params = self.params()
            if not self.at("{"):
                self.result_type()
            if self.at("{"):
                saved = self.nocomp
                self.nocomp = 0
                body = self.block()
                self.nocomp = saved
                x = ("funclit", params, body)
            else:
                x = ("type",)
        elif t.k == "op" and t.v == "[":
            # array/slice type, then composite literal or conversion
            self.skip_type()
            x = ("type", "slice")
        elif t.k == "id" and t.v == "map":
            self.skip_type()
            x = ("type", "map")
        elif t.k == "id" and t.v in ("struct", "interface", "chan"):
            self.skip_type()
            x = ("type", t.v)
        elif t.k == "id":
            self.next()
            x = ("id", t.v)
        else:
            self.next()
            return ("unk",)
        while True:
            t = self.peek()
            if t.k != "op":
                return x
            if t.v == ".":
                self.next()
                if self.at("("):
                    self.skip_balanced()  # type assertion
                    continue
                name = self.next().v
                x = ("sel", x, name)
            elif t.v == "(":
                self.next()
                saved = self.nocomp
                self.nocomp = 0
                args = []
                spread = False
                self.skip_semis()
                while not self.at(")"):
                    if self.at("[") or self.at("map") or self.at("chan") or self.at("*") and False:
                        pass
                    args.append(self.expr())
                    if self.at("..."):
                        self.next()
                        spread = True
                    if self.at(","):
                        self.next()
                    self.skip_semis()
                self.next()
                self.nocomp = saved
                x = ("call", x, args, spread)
            elif t.v == "[":
                self.next()
                saved = self.nocomp
                self.nocomp = 0
                idx = None
                if not self.at(":"):
                    idx = self.expr()
                if self.at(":"):
                    self.next()
                    if not self.at("]"):
                        self.expr()
                    idx = ("unk",)
                while self.at(","):
                    self.next()
                    self.expr()
                self.expect("]")
                self.nocomp = saved
                x = ("index", x, idx)
            elif t.v == "{" and (self.nocomp == 0 or x[0] == "type") and x[0] in ("id", "sel", "type", "index"):
                x = ("comp", x, self.comp_elems())
            else:
                return x

    def comp_elems(self):
        self.expect("{")
        saved = self.nocomp
        self.nocomp = 0
        elems = []
        self.skip_semis()
        while not self.at("}"):
            if self.at("{"):
                v = ("comp", ("type", "elided"), self.comp_elems())
            else:
                v = self.expr()
            if self.at(":"):
                self.next()
                self.skip_semis()
                if self.at("{"):
                    val = ("comp", ("type", "elided"), self.comp_elems())
                else:
                    val = self.expr()
                key = v[1] if v[0] == "id" else v
                elems.append((key, val))
            else:
                elems.append((None, v))
            if self.at(","):
                self.next()
            self.skip_semis()
        self.next()
        self.nocomp = saved
        return elems


# ---------------------------------------------------------------- values

class Unknown:
    def __repr__(self):
        return "UNK"


UNK = Unknown()


class Cmd:
    def __init__(self):
        self.use = ""
        self.short = ""
        self.aliases = []
        self.runnable = False
        self.children = []
        self.flags = []       # list of (long, short, takes_value)
        self.pflags = []
        self.hidden = False
        self.deprecated = ""
        self.extra = {}
        self.origin = ""

    def __repr__(self):
        return f"Cmd({self.use!r})"


class FlagSet:
    def __init__(self, cmd, persistent):
        self.cmd, self.persistent = cmd, persistent

    def add(self, long, short, value):
        if not isinstance(long, str) or not long:
            return
        if not isinstance(short, str):
            short = ""
        (self.cmd.pflags if self.persistent else self.cmd.flags).append((long, short, value))


class Struct:
    def __init__(self, pkg, typename, fields):
        self.pkg, self.type, self.fields = pkg, typename, fields

    def __repr__(self):
        return f"Struct({self.type})"


class Func:
    def __init__(self, pkg, name, params, body, closure=None, recv=None, recvname=None):
        self.pkg, self.name, self.params, self.body = pkg, name, params, body
        self.closure, self.recv, self.recvname = closure, recv, recvname


class PkgRef:
    def __init__(self, path):
        self.path = path


class Bound:
    """A method value: receiver + name (resolved at call time)."""

    def __init__(self, recv, name):
        self.recv, self.name = recv, name


class Return(Exception):
    def __init__(self, vals):
        self.vals = vals


class Break(Exception):
    pass


class Continue(Exception):
    pass


class Scope:
    def __init__(self, parent=None, pkg=None):
        self.vars = {}
        self.parent = parent
        self.pkg = pkg if pkg is not None else (parent.pkg if parent else None)

    def lookup(self, name):
        s = self
        while s is not None:
            if name in s.vars:
                return True, s.vars[name]
            s = s.parent
        return False, None

    def set(self, name, val):
        s = self
        while s is not None:
            if name in s.vars:
                s.vars[name] = val
                return
            s = s.parent
        self.vars[name] = val


PFLAG_NOVALUE = re.compile(r"^(Bool|Count)(P|Var|VarP)?$")
PFLAG_ADD = re.compile(r"^(Bool|Count|String|StringSlice|StringArray|StringToString|StringToInt|StringToInt64|Int|Int8|Int16|Int32|Int64|Uint|Uint8|Uint16|Uint32|Uint64|Float32|Float64|Duration|IP|IPMask|IPNet|IPSlice|BoolSlice|IntSlice|Int32Slice|Int64Slice|UintSlice|Float32Slice|Float64Slice|DurationSlice|BytesHex|BytesBase64|Func|BoolFunc|Text|Time)?(P|Var|VarP|VarPF|)$")


# ---------------------------------------------------------------- interpreter

class Package:
    def __init__(self, path, dir_):
        self.path, self.dir = path, dir_
        self.funcs, self.methods, self.vardecls, self.imports = {}, {}, {}, {}
        self.file_imports = {}  # per function name -> imports of its file
        self.inits = []
        self.globals = None
        self.loaded = False


class Interp:
    def __init__(self, module, root, external=None, hooks=None, log=None):
        """module: Go module path; root: directory of go.mod."""
        self.module, self.root = module, root
        self.pkgs = {}
        self.hooks = hooks or {}    # (pkgpath, funcname) -> python fn(interp, args) -> value
        self.depth = 0
        self.frames = []
        self.warnings = []
        self.steps = 0

    # ------------------------------------------------ loading
    def pkg(self, path):
        if path in self.pkgs:
            return self.pkgs[path]
        if not (path == self.module or path.startswith(self.module + "/")):
            return None
        rel = path[len(self.module):].lstrip("/")
        d = os.path.join(self.root, rel)
        p = Package(path, d)
        self.pkgs[path] = p
        if not os.path.isdir(d):
            return p
        for fn in sorted(os.listdir(d)):
            if not fn.endswith(".go") or fn.endswith("_test.go"):
                continue
            src = open(os.path.join(d, fn), encoding="utf-8", errors="replace").read()
            if re.search(r"^//go:build\s+ignore", src, re.M):
                continue
            try:
                decls = Parser(tokenize(src)).file()
            except (ParseError, IndexError, RecursionError) as e:
                self.warnings.append(f"parse {path}/{fn}: {e}")
                continue
            imps = decls["imports"]
            for name, params, body in decls["funcs"]:
                if name == "init":
                    p.inits.append((Func(p, name, params, body), imps))
                else:
                    p.funcs[name] = (Func(p, name, params, body), imps)
            for (rname, rtype), name, params, body in decls["methods"]:
                p.methods[(rtype, name)] = (Func(p, name, params, body, recv=rtype, recvname=rname), imps)
            for name, expr in decls["vars"]:
                p.vardecls[name] = (expr, imps)
        return p

    def globals_of(self, p):
        if p.globals is None:
            p.globals = {}
        return p.globals

    def run_inits(self, p):
        if p.loaded:
            return
        p.loaded = True
        for f, imps in p.inits:
            self.call(f, [], imps=imps)

    def global_var(self, p, name):
        g = self.globals_of(p)
        if name in g:
            return True, g[name]
        if name in p.vardecls:
            expr, imps = p.vardecls[name]
            g[name] = UNK
            val = UNK if expr is None else self.eval(expr, Scope(pkg=(p, imps)))
            g[name] = val
            return True, val
        if name in p.funcs:
            return True, p.funcs[name][0]
        return False, None

    # ------------------------------------------------ execution
    def call(self, f, args, imps=None, recv=None):
        if isinstance(f, Bound):
            return self.call_method(f.recv, f.name, args)
        if not isinstance(f, Func):
            return UNK
        if self.depth > 40:
            return UNK
        self.depth += 1
        self.frames.append({"uncertain": False})
        try:
            if f.closure is not None:
                sc = Scope(f.closure)
            else:
                if imps is None:
                    imps = f.pkg.funcs.get(f.name, (None, {}))[1] if f.recv is None else f.pkg.methods.get((f.recv, f.name), (None, {}))[1]
                sc = Scope(pkg=(f.pkg, imps))
            if f.recvname:
                sc.vars[f.recvname] = recv
            results = []
            params = f.params
            if params and params[-1][0] == "$results":
                results = params[-1][1]
                params = params[:-1]
                for r in results:
                    sc.vars[r] = None
            for k, (pname, variadic) in enumerate(params):
                if variadic:
                    sc.vars[pname] = list(args[k:])
                    break
                sc.vars[pname] = args[k] if k < len(args) else UNK
            if f.body is None:
                return UNK
            try:
                self.exec_block(f.body, sc)
                vals = [sc.vars.get(n, UNK) for n in results] if results else []
            except Return as r:
                vals = r.vals
                if not vals and results:
                    vals = [sc.vars.get(n, UNK) for n in results]
            except (Break, Continue):
                vals = []
            v = vals[0] if len(vals) == 1 else (vals if vals else UNK)
            if self.frames[-1]["uncertain"] and not isinstance(v, (Cmd, Struct, FlagSet, list, Func)):
                return UNK  # another path may have returned something else
            return v
        finally:
            self.frames.pop()
            self.depth -= 1

    def exec_block(self, blk, sc):
        inner = Scope(sc)
        for s in blk[1]:
            self.exec(s, inner)

    def exec(self, s, sc):
        self.steps += 1
        k = s[0]
        try:
            if k == "block":
                return self.exec_block(s, sc)
            if k == "expr":
                self.eval(s[1], sc)
            elif k == "assign":
                self.assign(s, sc)
            elif k == "vars":
                for name, expr in s[1]:
                    sc.vars[name] = UNK if expr is None else self.eval(expr, sc)
            elif k == "return":
                vals = [self.eval(e, sc) for e in s[1]]
                raise Return(vals)
            elif k == "if":
                inner = Scope(sc)
                if s[1] is not None:
                    self.exec(s[1], inner)
                c = self.truth(s[2], inner) if s[2] is not None else None
                if c is True:
                    self.exec_block(s[3], inner)
                elif c is False:
                    if s[4] is not None:
                        self.exec(s[4], inner)
                else:
                    # undecided: explore both branches, and let neither end the function
                    self.uncertain(lambda: self.exec_block(s[3], inner))
                    if s[4] is not None:
                        self.uncertain(lambda: self.exec(s[4], inner))
            elif k == "for":
                self.exec_for(s, sc)
            elif k == "switch":
                inner = Scope(sc)
                if s[1] is not None:
                    self.exec(s[1], inner)
                for exprs, body in s[3]:
                    self.uncertain(lambda: self.exec_block(body, inner))
            elif k == "rangeassign":
                pass
            elif k in ("break",):
                raise Break()
            elif k in ("continue",):
                raise Continue()
        except (Return, Break, Continue):
            raise
        except RecursionError:
            raise
        except Exception as e:  # be forgiving
            self.warnings.append(f"exec {k}: {type(e).__name__}: {e}")

    def uncertain(self, run):
        try:
            run()
        except Return:
            if self.frames:
                self.frames[-1]["uncertain"] = True
        except (Break, Continue):
            pass

    def exec_for(self, s, sc):
        hdr, body = s[1], s[2]
        inner = Scope(sc)
        if hdr[0] == "range":
            coll = self.eval(hdr[2], sc)
            names = hdr[1]
            if isinstance(coll, list):
                items = list(enumerate(coll))
            elif isinstance(coll, dict):
                items = list(coll.items())
            else:
                items = [(UNK, UNK)]
            for key, val in items:
                it = Scope(inner)
                if len(names) >= 1:
                    it.vars[names[0]] = key
                if len(names) >= 2:
                    it.vars[names[1]] = val
                try:
                    self.exec_block(body, it)
                except Continue:
                    continue
                except Break:
                    break
            return
        if hdr[0] == "cfor" and hdr[1] is not None:
            self.exec(hdr[1], inner)
        try:
            self.exec_block(body, inner)
        except (Break, Continue):
            pass

    def truth(self, e, sc):
        if e[0] == "bin" and e[1] in ("==", "!="):
            a = self.eval(e[2], sc)
            b = self.eval(e[3], sc)
            if e[3] == ("id", "nil") or e[2] == ("id", "nil"):
                other = a if e[3] == ("id", "nil") else b
                if other is UNK:
                    return None
                isnil = other is None
                return isnil if e[1] == "==" else not isnil
            return None
        if e[0] == "not":
            t = self.truth(e[1], sc)
            return None if t is None else not t
        if e[0] == "bin" and e[1] == "&&":
            a, b = self.truth(e[2], sc), self.truth(e[3], sc)
            if a is False or b is False:
                return False
            if a is True and b is True:
                return True
            return None
        if e[0] == "bin" and e[1] == "||":
            a, b = self.truth(e[2], sc), self.truth(e[3], sc)
            if a is True or b is True:
                return True
            if a is False and b is False:
                return False
            return None
        v = self.eval(e, sc)
        if v is True or v is False:
            return v
        return None

    def assign(self, s, sc):
        op, lhs, rhs = s[1], s[2], s[3]
        vals = [self.eval(e, sc) for e in rhs]
        if len(lhs) > 1 and len(vals) == 1:
            v = vals[0]
            vals = list(v) if isinstance(v, list) and len(v) == len(lhs) and False else [v] + [UNK] * (len(lhs) - 1)
        for k, target in enumerate(lhs):
            v = vals[k] if k < len(vals) else UNK
            if op == "+=":
                old = self.eval(target, sc)
                v = old + v if isinstance(old, str) and isinstance(v, str) else UNK
            elif op not in (":=", "="):
                v = UNK
            if target[0] == "id":
                if target[1] == "_":
                    continue
                if op == ":=":
                    sc.vars[target[1]] = v
                else:
                    found, _ = sc.lookup(target[1])
                    if found:
                        sc.set(target[1], v)
                    else:
                        p, imps = sc.pkg
                        ok, _ = self.global_var(p, target[1])
                        if ok:
                            self.globals_of(p)[target[1]] = v
                        else:
                            sc.vars[target[1]] = v
            elif target[0] == "sel":
                obj = self.eval(target[1], sc)
                self.set_field(obj, target[2], v)
            elif target[0] == "index":
                obj = self.eval(target[1], sc)
                key = self.eval(target[2], sc)
                if isinstance(obj, dict) and isinstance(key, (str, int)):
                    obj[key] = v

    def set_field(self, obj, name, v):
        if isinstance(obj, Struct):
            if name in obj.fields or not self.embedded_cmd(obj) or not name[:1].isupper():
                obj.fields[name] = v
                return
            obj = self.embedded_cmd(obj)
        if isinstance(obj, Cmd):
            if name == "Use":
                obj.use = v if isinstance(v, str) else obj.use
            elif name == "Short":
                obj.short = v if isinstance(v, str) else obj.short
            elif name == "Aliases":
                obj.aliases = list(v) if isinstance(v, list) else obj.aliases
            elif name in ("Run", "RunE"):
                obj.runnable = v is not None
            elif name == "Hidden":
                obj.hidden = v is True or v is UNK and obj.hidden
            elif name == "Deprecated":
                obj.deprecated = v if isinstance(v, str) else obj.deprecated
            else:
                obj.extra[name] = v

    def embedded_cmd(self, s):
        for v in s.fields.values():
            if isinstance(v, Cmd):
                return v
        return None

    def get_field(self, obj, name):
        if isinstance(obj, Struct):
            if name in obj.fields:
                return obj.fields[name]
            c = self.embedded_cmd(obj)
            if c is not None and name[:1].isupper():
                if name == "Command":
                    return c
                return self.get_field(c, name)
            return None  # a field a composite literal left out holds its zero value
        if isinstance(obj, Cmd):
            if name == "Use":
                return obj.use
            if name == "Short":
                return obj.short
            if name == "Aliases":
                return obj.aliases
            if name == "Command":
                return obj
            if name in ("Flags", "PersistentFlags", "LocalFlags", "LocalNonPersistentFlags", "AddCommand"):
                return Bound(obj, name)
            if name in ("Run", "RunE"):
                return UNK if obj.runnable else None
            return obj.extra.get(name, None if name in ("Hidden",) else UNK)
        return UNK

    # ------------------------------------------------ expressions
    def eval(self, e, sc):
        k = e[0]
        if k == "str":
            return e[1]
        if k == "num":
            try:
                return int(e[1], 0)
            except ValueError:
                return UNK
        if k == "id":
            name = e[1]
            found, v = sc.lookup(name)
            if found:
                return v
            if name == "nil":
                return None
            if name == "true":
                return True
            if name == "false":
                return False
            if name == "iota":
                return UNK
            p, imps = sc.pkg
            ok, v = self.global_var(p, name)
            if ok:
                return v
            if name in imps:
                return PkgRef(imps[name])
            return UNK
        if k == "sel":
            base = e[1]
            b = self.eval(base, sc)
            if isinstance(b, PkgRef):
                p = self.pkg(b.path)
                if p is None:
                    return ("ext", b.path, e[2])
                self.run_inits(p)
                ok, v = self.global_var(p, e[2])
                return v if ok else UNK
            if isinstance(b, (Struct, Cmd)):
                # field, else method value
                if isinstance(b, Struct) and e[2] not in b.fields:
                    m = self.find_method(b, e[2])
                    if m is not None:
                        return Bound(b, e[2])
                if isinstance(b, Cmd) and e[2] in ("Flags", "PersistentFlags", "LocalFlags", "AddCommand"):
                    return Bound(b, e[2])
                return self.get_field(b, e[2])
            if isinstance(b, FlagSet):
                return Bound(b, e[2])
            return UNK
        if k == "call":
            return self.eval_call(e, sc)
        if k == "comp":
            return self.eval_comp(e, sc)
        if k == "funclit":
            return Func(sc.pkg[0], "<lit>", e[1], e[2], closure=sc)
        if k == "bin":
            if e[1] in ("&&", "||", "==", "!="):
                t = self.truth(e, sc)
                return UNK if t is None else t
            a = self.eval(e[2], sc)
            b = self.eval(e[3], sc)
            if e[1] == "+" and isinstance(a, str) and isinstance(b, str):
                return a + b
            if e[1] == "+" and isinstance(a, int) and isinstance(b, int) and not isinstance(a, bool):
                return a + b
            return UNK
        if k == "not":
            t = self.truth(e[1], sc)
            return UNK if t is None else (not t)
        if k == "index":
            obj = self.eval(e[1], sc)
            if e[2] is None:
                return UNK
            key = self.eval(e[2], sc)
            if isinstance(obj, list) and isinstance(key, int) and 0 <= key < len(obj):
                return obj[key]
            if isinstance(obj, dict) and isinstance(key, (str, int)):
                return obj.get(key, UNK)
            if isinstance(obj, Func):
                return obj  # generic instantiation
            return UNK
        return UNK

    def find_method(self, obj, name):
        if isinstance(obj, Struct) and obj.pkg is not None:
            m = obj.pkg.methods.get((obj.type, name))
            if m:
                return m
        return None

    def call_method(self, recv, name, args):
        if isinstance(recv, Struct):
            m = self.find_method(recv, name)
            if m:
                return self.call(m[0], args, imps=m[1], recv=recv)
            c = self.embedded_cmd(recv)
            if c is not None:
                return self.call_method(c, name, args)
            return UNK
        if isinstance(recv, Cmd):
            if name == "AddCommand":
                for a in args:
                    for x in (a if isinstance(a, list) else [a]):
                        c = self.as_cmd(x)
                        if c is not None and c is not recv and c not in recv.children:
                            recv.children.append(c)
                return None
            if name in ("Flags", "LocalFlags", "LocalNonPersistentFlags"):
                return FlagSet(recv, False)
            if name == "PersistentFlags":
                return FlagSet(recv, True)
            return UNK
        if isinstance(recv, FlagSet):
            return self.flag_method(recv, name, args)
        return UNK

    def flag_method(self, fs, name, args):
        if name in ("Var", "VarP", "VarPF"):
            # Var(value, name, usage) / VarP(value, name, short, usage)
            long = args[1] if len(args) > 1 else None
            short = args[2] if name != "Var" and len(args) > 2 else ""
            val = args[0] if args else UNK
            novalue = isinstance(val, Struct) and val.type.lower().startswith("bool")
            fs.add(long, short, not novalue)
            return UNK
        m = PFLAG_ADD.match(name)
        if m and (m.group(1) or m.group(2)):
            ty, form = m.group(1) or "", m.group(2)
            if not ty and form in ("", "P"):
                return UNK
            off = 1 if "Var" in form else 0
            long = args[off] if len(args) > off else None
            short = args[off + 1] if form.endswith("P") or form == "VarPF" else ""
            if form.endswith("P") and len(args) <= off + 1:
                short = ""
            fs.add(long, short, not (ty in ("Bool", "Count", "BoolFunc")))
            return UNK
        if name == "AddFlagSet" and args and isinstance(args[0], FlagSet):
            src = args[0]
            for f in (src.cmd.pflags if src.persistent else src.cmd.flags):
                fs.add(*f)
            return None
        return UNK

    def as_cmd(self, v):
        if isinstance(v, Cmd):
            return v
        if isinstance(v, Struct):
            return self.embedded_cmd(v)
        return None

    def eval_call(self, e, sc):
        fn_e, arg_es, spread = e[1], e[2], e[3]
        # builtins
        if fn_e[0] == "id" and not sc.lookup(fn_e[1])[0]:
            nm = fn_e[1]
            p, imps = sc.pkg
            if nm not in p.funcs and nm not in p.vardecls:
                if nm == "append":
                    args = [self.eval(a, sc) for a in arg_es]
                    base = args[0] if args and isinstance(args[0], list) else []
                    rest = args[1:]
                    if spread and rest:
                        last = rest[-1]
                        rest = rest[:-1] + (last if isinstance(last, list) else [])
                    return list(base) + rest
                if nm in ("make",):
                    return [] if arg_es and arg_es[0] == ("type", "slice") else ({} if arg_es and arg_es[0] == ("type", "map") else UNK)
                if nm in ("len", "cap", "new", "panic", "print", "println", "copy", "delete", "min", "max", "close", "string", "int", "bool"):
                    args = [self.eval(a, sc) for a in arg_es]
                    if nm == "string" and args and isinstance(args[0], str):
                        return args[0]
                    return UNK
        callee = self.eval(fn_e, sc)
        args = [self.eval(a, sc) for a in arg_es]
        if spread and args and isinstance(args[-1], list):
            args = args[:-1] + args[-1]
        if isinstance(callee, tuple) and callee and callee[0] == "ext":
            return self.external(callee[1], callee[2], args)
        if isinstance(callee, Func):
            hk = self.hooks.get((callee.pkg.path, callee.name))
            if hk is not None and callee.closure is None and callee.recv is None:
                return hk(self, args)
            return self.call(callee, args)
        if isinstance(callee, Bound):
            return self.call_method(callee.recv, callee.name, args)
        return UNK

    def external(self, path, name, args):
        if path == "fmt" and name == "Sprintf" and args and isinstance(args[0], str):
            fmt_ = args[0]
            rest = list(args[1:])
            out = []
            i = 0
            while i < len(fmt_):
                c = fmt_[i]
                if c == "%" and i + 1 < len(fmt_):
                    j = i + 1
                    while j < len(fmt_) and fmt_[j] in "+-# 0123456789.":
                        j += 1
                    verb = fmt_[j] if j < len(fmt_) else ""
                    if verb == "%":
                        out.append("%")
                    else:
                        v = rest.pop(0) if rest else UNK
                        if isinstance(v, (str, int)) and not isinstance(v, bool):
                            out.append(str(v))
                        else:
                            return UNK
                    i = j + 1
                    continue
                out.append(c)
                i += 1
            return "".join(out)
        if path == "strings":
            if name == "Join" and len(args) == 2 and isinstance(args[0], list) and all(isinstance(x, str) for x in args[0]) and isinstance(args[1], str):
                return args[1].join(args[0])
            if name in ("ToLower", "ToUpper", "TrimSpace") and args and isinstance(args[0], str):
                return {"ToLower": str.lower, "ToUpper": str.upper, "TrimSpace": str.strip}[name](args[0])
        if path.endswith("spf13/cobra"):
            return UNK
        if path == "github.com/spf13/pflag" and name == "NewFlagSet":
            return FlagSet(Cmd(), False)
        return UNK

    def eval_comp(self, e, sc):
        te, elems = e[1], e[2]
        tname = None
        pkg = sc.pkg[0]
        if te[0] == "id":
            tname = te[1]
        elif te[0] == "sel":
            b = self.eval(te[1], sc)
            if isinstance(b, PkgRef):
                tname = te[2]
                if b.path.endswith("spf13/cobra") and tname == "Command":
                    c = Cmd()
                    for key, ve in elems:
                        if isinstance(key, str):
                            self.set_field(c, key, self.eval(ve, sc))
                    return c
                p2 = self.pkg(b.path)
                pkg = p2
                if p2 is None:
                    tname = b.path + "." + tname
        if te[0] == "type" or (tname and pkg is not None and tname in getattr(pkg, "_slice_types", ())):
            if te[0] == "type" and len(te) > 1 and te[1] == "map":
                d = {}
                for key, ve in elems:
                    kv = self.eval(key, sc) if isinstance(key, tuple) else key
                    if isinstance(kv, (str, int)):
                        d[kv] = self.eval(ve, sc)
                return d
            if any(k is not None for k, _ in elems) and te[0] == "type" and len(te) > 1 and te[1] == "elided":
                return Struct(None, "", {k if isinstance(k, str) else str(k): self.eval(v, sc) for k, v in elems})
            return [self.eval(ve, sc) for _, ve in elems]
        if all(k is None for k, _ in elems) and elems:
            # positional: slice-like named type (flag.Set) or positional struct
            return [self.eval(ve, sc) for _, ve in elems]
        fields = {}
        for key, ve in elems:
            if isinstance(key, str):
                fields[key] = self.eval(ve, sc)
        return Struct(pkg if isinstance(pkg, Package) else None, tname or "", fields)


def module_of(root):
    for line in open(os.path.join(root, "go.mod"), encoding="utf-8"):
        if line.startswith("module "):
            return line.split()[1]
    raise SystemExit("no module line")

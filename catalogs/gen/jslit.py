"""A tolerant reader of JavaScript/TypeScript literals, for the extractors in extract_cloud.py.

It reads what command definitions are written in (object and array literals, strings, template
strings, identifiers, member expressions, calls) and skips everything else up to the next `,`,
`;` or closing bracket (type assertions, operators, arrow functions, methods). It is not a
JavaScript parser: values it cannot read come back as Opaque.
"""

import re


class Ref:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"Ref({self.name})"


class Call:
    def __init__(self, callee, args):
        self.callee, self.args = callee, args

    def __repr__(self):
        return f"Call({self.callee}, {self.args!r})"


class Opaque:
    def __repr__(self):
        return "Opaque"


SPREAD = "__spread__"

_TOKEN = re.compile(
    r"""(?P<ws>\s+)|(?P<lc>//[^\n]*)|(?P<bc>/\*.*?\*/)|(?P<num>\d[\w.]*)|(?P<id>[A-Za-z_$][\w$]*)"""
    r"""|(?P<str>'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*")|(?P<punct>\.\.\.|=>|\?\.|[=!]==?|&&|\|\||\?\?|[{}\[\]().,:;=<>+\-*/!?&|%^~@#])""",
    re.S,
)


def tokenize(src):
    toks, i, n = [], 0, len(src)
    while i < n:
        c = src[i]
        if c == "`":
            # template literal; ${...} holes become "…"
            j, out = i + 1, []
            while j < n and src[j] != "`":
                if src[j] == "\\":
                    out.append(src[j + 1 : j + 2])
                    j += 2
                elif src.startswith("${", j):
                    depth, j = 1, j + 2
                    while j < n and depth:
                        if src[j] == "{":
                            depth += 1
                        elif src[j] == "}":
                            depth -= 1
                        elif src[j] == "`":  # nested template: skip it
                            j += 1
                            while j < n and src[j] != "`":
                                j += 2 if src[j] == "\\" else 1
                        j += 1
                    out.append("…")
                else:
                    out.append(src[j])
                    j += 1
            toks.append(("str", "".join(out)))
            i = j + 1
            continue
        m = _TOKEN.match(src, i)
        if not m:
            toks.append(("punct", c))
            i += 1
            continue
        kind = m.lastgroup
        text = m.group()
        i = m.end()
        if kind in ("ws", "lc", "bc"):
            continue
        if kind == "str":
            body = text[1:-1]
            body = re.sub(r"\\(.)", lambda m: " " if m.group(1) in "nrt" else m.group(1), body)
            toks.append(("str", body))
        else:
            toks.append((kind, text))
    return toks


OPEN = {"{": "}", "[": "]", "(": ")"}
CLOSE = set(OPEN.values())


class Parser:
    def __init__(self, toks, pos=0):
        self.t, self.i = toks, pos

    def peek(self, k=0):
        j = self.i + k
        return self.t[j] if j < len(self.t) else ("eof", "")

    def next(self):
        tok = self.peek()
        self.i += 1
        return tok

    def skip_balanced(self):
        """At an opening bracket: skip to just after its match."""
        depth = 0
        while self.i < len(self.t):
            k, v = self.next()
            if k == "punct" and v in OPEN:
                depth += 1
            elif k == "punct" and v in CLOSE:
                depth -= 1
                if depth == 0:
                    return

    def skip_to_delim(self):
        """Skip to the next `,` `;` or closing bracket at depth 0 (not consumed)."""
        while self.i < len(self.t):
            k, v = self.peek()
            if k == "punct" and v in OPEN:
                self.skip_balanced()
            elif k == "punct" and (v in CLOSE or v in (",", ";")):
                return
            elif k == "eof":
                return
            else:
                self.i += 1

    def value(self):
        v = self._primary()
        self.skip_to_delim()
        return v

    def _primary(self):
        k, v = self.peek()
        if k == "punct" and v == "{":
            return self._object()
        if k == "punct" and v == "[":
            return self._array()
        if k == "str":
            self.i += 1
            return v
        if k == "num":
            self.i += 1
            return v
        if k == "id":
            if v in ("true", "false"):
                self.i += 1
                return v == "true"
            if v in ("null", "undefined"):
                self.i += 1
                return None
            if v in ("new", "function", "async", "typeof", "await"):
                return Opaque()
            name = v
            self.i += 1
            while True:
                if self.peek() in (("punct", "."), ("punct", "?.")) and self.peek(1)[0] == "id":
                    name += "." + self.peek(1)[1]
                    self.i += 2
                elif self.peek() == ("punct", "[") and self.peek(1)[0] in ("num", "str") and self.peek(2) == ("punct", "]"):
                    name += "." + self.peek(1)[1]
                    self.i += 3
                else:
                    break
            if self.peek() == ("punct", "=>"):
                return Opaque()
            if self.peek() == ("punct", "("):
                self.i += 1
                args = []
                while self.peek() != ("punct", ")") and self.peek()[0] != "eof":
                    args.append(self.value())
                    if self.peek() == ("punct", ","):
                        self.i += 1
                self.i += 1
                return Call(name, args)
            return Ref(name)
        return Opaque()

    def _object(self):
        self.i += 1  # {
        out = {}
        while True:
            k, v = self.peek()
            if k == "eof":
                return out
            if (k, v) == ("punct", "}"):
                self.i += 1
                return out
            if (k, v) == ("punct", ","):
                self.i += 1
                continue
            if (k, v) == ("punct", "..."):
                self.i += 1
                out.setdefault(SPREAD, []).append(self.value())
                continue
            if (k, v) == ("punct", "["):  # computed key
                self.skip_balanced()
                key = None
            elif k in ("id", "str", "num"):
                key = v
                self.i += 1
                if k == "id" and v in ("get", "set", "async", "static") and self.peek()[0] in ("id", "str"):
                    key = self.peek()[1]
                    self.i += 1
            else:
                self.skip_to_delim()
                continue
            nk, nv = self.peek()
            if (nk, nv) == ("punct", ":"):
                self.i += 1
                val = self.value()
            elif (nk, nv) == ("punct", "("):  # method
                self.skip_balanced()
                self.skip_to_delim()
                val = Opaque()
            else:
                val = Ref(key) if key else Opaque()
                self.skip_to_delim()
            if key is not None:
                out[key] = val

    def _array(self):
        self.i += 1
        out = []
        while True:
            k, v = self.peek()
            if k == "eof":
                return out
            if (k, v) == ("punct", "]"):
                self.i += 1
                return out
            if (k, v) == ("punct", ","):
                self.i += 1
                continue
            if (k, v) == ("punct", "..."):
                self.i += 1
                out.append((SPREAD, self.value()))
                continue
            out.append(self.value())
            if self.peek() == ("punct", ")"):
                self.i += 1


def top_level_consts(toks):
    """{name: value} for `const NAME (: T)? = value` at bracket depth 0."""
    out, depth, i = {}, 0, 0
    while i < len(toks):
        k, v = toks[i]
        if k == "punct" and v in OPEN:
            depth += 1
        elif k == "punct" and v in CLOSE:
            depth -= 1
        elif depth == 0 and k == "id" and v in ("const", "let", "var") and i + 1 < len(toks) and toks[i + 1][0] == "id":
            name = toks[i + 1][1]
            j = i + 2
            if toks[j] == ("punct", ":"):  # type annotation: skip to '='
                d = 0
                while j < len(toks):
                    kk, vv = toks[j]
                    if kk == "punct" and vv in "{[(<":
                        d += 1
                    elif kk == "punct" and vv in "}])>":
                        d -= 1
                    elif d == 0 and (kk, vv) == ("punct", "="):
                        break
                    j += 1
            if j < len(toks) and toks[j] == ("punct", "="):
                p = Parser(toks, j + 1)
                out[name] = p.value()
                i = p.i
                continue
        i += 1
    return out


def imports(src):
    """{local name: (module path, exported name)} from `import { a, b as c } from 'x'`."""
    out = {}
    for m in re.finditer(r"import\s+(?:type\s+)?\{([^}]*)\}\s*from\s*['\"]([^'\"]+)['\"]", src):
        for part in m.group(1).split(","):
            part = part.strip()
            if not part or part.startswith("type "):
                continue
            if " as " in part:
                a, b = [x.strip() for x in part.split(" as ")]
            else:
                a = b = part
            out[b] = (m.group(2), a)
    return out

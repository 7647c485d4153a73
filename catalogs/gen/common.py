"""Shared writer for guardsh command catalogs (catalogs/README.md has the format).

Generators build a list of rows and call `emit`; it checks every row and prints the file, so
every catalog has the same shape and `tests/catalogs.rs` can compare bytes.
"""

import sys

CLASSES = ("read", "local", "write", "destroy", "credential", "code", "group")


def load_overrides(path):
    """`path<TAB>class<TAB>reason` lines (comments and blank lines skipped) -> {path: (class, reason)}."""
    out = {}
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                line = line.rstrip("\n")
                if not line or line.startswith("#"):
                    continue
                parts = line.split("\t")
                if len(parts) != 3 or parts[1] not in CLASSES or not parts[2]:
                    sys.exit(f"{path}:{n}: want path<TAB>class<TAB>reason, got {line!r}")
                out[parts[0]] = (parts[1], parts[2])
    except FileNotFoundError:
        pass
    return out


def emit(tool, tools, source, generate, value_default, rows, out=sys.stdout):
    """rows: iterable of (path, class, flags (iterable of str), note)."""
    seen = {}
    for path, cls, flags, note in rows:
        if cls not in CLASSES:
            sys.exit(f"{tool}: {path!r}: unknown class {cls!r}")
        if not path or path != " ".join(path.split()) or "\t" in path:
            sys.exit(f"{tool}: bad path {path!r}")
        flags = sorted(set(flags))
        for fl in flags:
            if not fl.startswith("-") or "," in fl or "\t" in fl or " " in fl:
                sys.exit(f"{tool}: {path!r}: bad flag {fl!r}")
        note = " ".join(str(note or "").split())
        if path in seen:
            sys.exit(f"{tool}: {path!r} twice")
        seen[path] = (cls, ",".join(flags), note)
    out.write(f"# guardsh catalog: {tool}\n")
    out.write(f"# tools: {' '.join(tools)}\n")
    out.write(f"# source: {source}\n")
    out.write(f"# generate: {generate}\n")
    out.write(f"# value_default: {'true' if value_default else 'false'}\n")
    for path in sorted(seen, key=lambda p: p.encode("utf-8")):
        cls, flags, note = seen[path]
        out.write(f"{path}\t{cls}\t{flags}\t{note}\n")

#!/usr/bin/env python3
"""The workspace's structural yardsticks, checked on every CI run.

1. No import cycle between the files of one crate: every `use crate::…`,
   `use super::…` and in-code `crate::a::b` / `super::a` path is an edge from
   the file that writes it to the file that defines the module it names
   (paths through the crate root's `pub use` re-exports are followed to the
   file that defines the item). Declaring a child (`mod x;`) is not an edge;
   doc comments are ignored.
2. No source file outside tests over MAX_LINES lines, counting the lines
   before the file's `#[cfg(test)]` unit-test module (a file that grows
   past it is split along its seams into modules named for what they hold).

Exit status 1 with one line per problem (import cycle, file too long); 0
and a one-line summary otherwise.
Run: `python3 tests/structure/check.py` from the repository root.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

MAX_LINES = 700
ROOT = Path(__file__).resolve().parents[2]

USE_RE = re.compile(r"\buse\s+(crate|super|self)((?:::\w+)*)(?:::\{([^;]*)\})?", re.S)
PATH_RE = re.compile(r"(?<![\w:])(crate|super)((?:::\w+)+)")
REEXPORT_RE = re.compile(r"pub\s+use\s+(\w+)(?:::(\w+))?(?:::\{([^;]*)\})?\s*;", re.S)


def strip_comments(text: str) -> str:
    """Source without `//` comments (doc comments included) and string literals."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def module_files(src: Path) -> dict[tuple[str, ...], Path]:
    """Module path (relative to the crate root) -> the file that holds it."""
    mods: dict[tuple[str, ...], Path] = {}
    for f in src.rglob("*.rs"):
        rel = f.relative_to(src).with_suffix("").parts
        if rel[0] == "bin" or rel[0] == "main" and len(rel) == 1:
            continue
        if rel[-1] == "mod":
            rel = rel[:-1]
        if rel == ("lib",):
            rel = ()
        mods[rel] = f
    return mods


def resolve(mods, reexports, base: tuple[str, ...], segs: list[str]) -> tuple[str, ...] | None:
    """The longest module prefix of base+segs that is a file of the crate."""
    path = list(base) + segs
    if not base and segs and segs[0] in reexports:
        path = list(reexports[segs[0]]) + segs[1:]
    for n in range(len(path), -1, -1):
        if tuple(path[:n]) in mods:
            return tuple(path[:n])
    return None


def crate_edges(src: Path) -> dict[Path, set[Path]]:
    mods = module_files(src)
    lib = mods.get(())
    reexports: dict[str, tuple[str, ...]] = {}
    if lib is not None:
        for m in REEXPORT_RE.finditer(strip_comments(lib.read_text())):
            module, item, group = m.groups()
            names = [item] if item else [n.strip().split(" as ")[-1] for n in (group or "").split(",")]
            for name in names:
                name = name.strip()
                if name and (module,) in mods:
                    reexports[name] = (module,)
    edges: dict[Path, set[Path]] = {f: set() for f in mods.values()}
    for modpath, f in mods.items():
        code = strip_comments(f.read_text())
        is_mod_rs = f.name in ("mod.rs", "lib.rs", "main.rs")
        parent = modpath if is_mod_rs else modpath[:-1]

        def add(kind: str, segs: list[str]) -> None:
            if kind == "crate":
                base: tuple[str, ...] = ()
            elif kind == "super":
                base = parent[:-1] if is_mod_rs else parent
                while segs and segs[0] == "super":
                    segs, base = segs[1:], base[:-1]
            else:  # self
                base = modpath
            target = resolve(mods, reexports, base, segs)
            if target is not None and mods[target] != f:
                edges[f].add(mods[target])

        for m in USE_RE.finditer(code):
            kind, head, group = m.groups()
            segs = [s for s in head.split("::") if s]
            if group:
                for item in re.split(r",(?![^{]*\})", group):
                    first = item.strip().split("::")[0].split(" as ")[0].strip("{} ")
                    add(kind, segs + ([first] if first and first != "self" else []))
            else:
                add(kind, segs)
        for m in PATH_RE.finditer(code):
            add(m.group(1), [s for s in m.group(2).split("::") if s])
    return edges


def cycles(edges: dict[Path, set[Path]]) -> list[list[Path]]:
    """Strongly connected components with more than one file (Tarjan)."""
    index: dict[Path, int] = {}
    low: dict[Path, int] = {}
    stack: list[Path] = []
    on: set[Path] = set()
    out: list[list[Path]] = []

    def visit(v: Path) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            visit(v)
    return out


def code_lines(f: Path) -> int:
    lines = f.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "#[cfg(test)]" and i + 1 < len(lines) and lines[i + 1].lstrip().startswith("mod "):
            return i
    return len(lines)


def main() -> int:
    problems = []
    crates = sorted((ROOT / "crates").glob("*/src"))
    if not crates:
        problems.append("no crates found under crates/*/src")
    files = 0
    for src in crates:
        edges = crate_edges(src)
        files += len(edges)
        for comp in cycles(edges):
            names = ", ".join(str(p.relative_to(ROOT)) for p in comp)
            problems.append(f"import cycle: {names}")
        for f in sorted(src.rglob("*.rs")):
            n = code_lines(f)
            if n > MAX_LINES:
                problems.append(
                    f"file too long: {f.relative_to(ROOT)}: {n} lines before its unit tests"
                    f" (at most {MAX_LINES}; split it along its seams)"
                )
    for p in problems:
        print(p)
    if problems:
        print(f"structure: {len(problems)} problem(s)", file=sys.stderr)
    else:
        print(f"structure: {len(crates)} crates, {files} files, no import cycle, none over {MAX_LINES} lines")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Checks the architecture ARCHITECTURE.md promises, so it is enforced rather than hoped for:

1. Crate layering: each crate depends only on the Vantage crates listed for it below
   (`cargo metadata`). The core depends on none; wire never on storage; the API never on
   SQLite, the data plane or probers; the controller never on HTTP serving.
2. No circles between a crate's modules (files), except data tables (`ALLOWED_CIRCLES`): a
   module that needs another's internals and is needed by it is one module in two files.
3. The binary reaches the API crate only through `vantage_api::router`.

Exits non-zero naming what broke.
"""
import json
import os
import re
import subprocess
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))

LAYERS = {
    "vantage-core": set(),
    "vantage-metrics": set(),
    "vantage-probe": {"vantage-core"},
    "vantage-store": {"vantage-core"},
    "vantage-wire": {"vantage-core"},
    "vantage-dataplane": {"vantage-core", "vantage-metrics"},
    "vantage-store-sqlite": {"vantage-core", "vantage-store"},
    "vantage-store-postgres": {"vantage-core", "vantage-store"},
    "vantage-control": {"vantage-core", "vantage-metrics", "vantage-probe", "vantage-store", "vantage-wire"},
    "vantage-api": {"vantage-control", "vantage-core", "vantage-metrics", "vantage-store", "vantage-wire"},
    "vantage": {
        "vantage-api", "vantage-control", "vantage-core", "vantage-dataplane", "vantage-metrics",
        "vantage-probe", "vantage-store", "vantage-store-postgres", "vantage-store-sqlite", "vantage-wire",
    },
}

# region.rs names the regions; region_map.rs is the table mapping countries to them.
ALLOWED_CIRCLES = [{"region", "region_map"}]

PATH_RE = re.compile(r"\b(crate|super)::([a-z_][a-z0-9_]*(?:::[a-z_][a-z0-9_]*)*)")
GROUP_RE = re.compile(r"use (crate|super)::\{([^}]*)\}")


def crate_layers(problems):
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps", "--offline"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    for package in json.loads(out)["packages"]:
        name = package["name"]
        used = {d["name"] for d in package["dependencies"]
                if d["name"].startswith("vantage") and d["kind"] is None}
        if name not in LAYERS:
            problems.append(f"{name}: a new crate; add its allowed dependencies to LAYERS")
            continue
        for extra in sorted(used - LAYERS[name]):
            problems.append(f"{name} depends on {extra}, which its layer does not allow")


def modules(src):
    found = {}
    for root, _, files in os.walk(src):
        for f in files:
            if f.endswith(".rs"):
                path = os.path.join(root, f)
                name = os.path.relpath(path, src)[:-3].replace(os.sep, "::")
                name = re.sub(r"(^|::)mod$", "", name) or "crate"
                name = "crate" if name in ("lib", "main") else name
                with open(path, encoding="utf-8") as fh:
                    text = fh.read()
                # Unit tests may reach anywhere; comments name things without importing them.
                text = re.split(r"#\[cfg\(test\)\]\s*mod tests", text)[0]
                text = re.sub(r"//[^\n]*", "", text)
                found[name] = text
    return found


def edges(mods):
    graph = {}
    for name, text in mods.items():
        base = name.split("::")[:-1]
        refs = set()

        def add(parts):
            for k in range(len(parts), 0, -1):
                target = "::".join(parts[:k])
                if target in mods:
                    if target != name and not name.startswith(target + "::") and target != "crate":
                        refs.add(target)
                    return

        for kind, path in PATH_RE.findall(text):
            add(([] if kind == "crate" else base) + path.split("::"))
        for kind, body in GROUP_RE.findall(text):
            for item in re.findall(r"[a-z_][a-z0-9_]*", body):
                add(([] if kind == "crate" else base) + [item])
        graph[name] = refs
    return graph


def circles(graph):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in graph:
        if v not in index:
            visit(v)
    return out


def main():
    problems = []
    crate_layers(problems)
    crates_dir = os.path.join(ROOT, "crates")
    for crate in sorted(os.listdir(crates_dir)):
        src = os.path.join(crates_dir, crate, "src")
        for comp in circles(edges(modules(src))):
            if comp not in ALLOWED_CIRCLES:
                problems.append(f"crates/{crate}: modules import each other: {sorted(comp)}")
    binary = os.path.join(crates_dir, "vantage", "src")
    for name, text in modules(binary).items():
        for use in set(re.findall(r"vantage_api::[A-Za-z_:]+", text)) - {"vantage_api::router"}:
            problems.append(f"crates/vantage/src/{name}.rs uses {use}; the binary only mounts the router")
    for p in problems:
        print("architecture:", p, file=sys.stderr)
    if problems:
        sys.exit(1)
    print("architecture: crate layers, module graph and the binary's use of the API hold")


if __name__ == "__main__":
    main()

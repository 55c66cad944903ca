#!/usr/bin/env python3
"""Runs every shell command in the project's READMEs, as typed, from the repository root.

Commands are the lines of the ```sh / ```bash blocks of README.md, charts/logferry/README.md
and examples/*/README.md (a trailing `\\` joins lines; `#` comments are dropped). Each runs
through `bash -c` from the root with the test tools on PATH (target/tools/env.sh) and must
exit 0. Exceptions, each by the heading the block sits under (so a reader sees them too):

* a heading that says "needs a cluster": `helm install ...` lines are rendered instead, with
  the real Helm as `helm template` with exactly the same arguments (so every `--set` key must
  pass the chart's schema, which rejects unknown keys); `kubectl` lines are not run.
* a heading that says "run by hand": not run (the benchmark takes minutes).
* `bash .ci/run` is the command that runs this script; it is not run again.

The quickstart (`cargo run --release -- run --once --config examples/quickstart.yaml`) must
also print at least one document, so target/quickstart-data (its checkpoints) is removed first,
as on a fresh clone. Finding no command at all is a failure.
"""
import glob
import json
import os
import re
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FILES = ["README.md", "charts/logferry/README.md"] + sorted(
    os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "examples/*/README.md"))
)


def commands(path):
    """(heading, command) for every command of every sh/bash block of `path`."""
    heading = ""
    out = []
    in_block = False
    pending = ""
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not in_block:
                if line.startswith("#"):
                    heading = line.lstrip("#").strip()
                elif re.match(r"^```(sh|bash|shell)\s*$", line):
                    in_block = True
                continue
            if line.startswith("```"):
                in_block = False
                continue
            text = line.strip()
            if not pending and (not text or text.startswith("#")):
                continue
            if text.endswith("\\"):
                pending += text[:-1].rstrip() + " "
                continue
            command = (pending + text).strip()
            pending = ""
            # A trailing comment is documentation, not part of the command.
            out.append((heading, re.sub(r"\s+#\s[^'\"]*$", "", command)))
    return out


def run(command, env):
    return subprocess.run(
        ["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True
    )


def main():
    env = dict(os.environ)
    tools = os.environ.get("LOGFERRY_TOOLS_DIR", os.path.join(ROOT, "target", "tools"))
    env["PATH"] = os.path.join(tools, "bin") + os.pathsep + env.get("PATH", "")
    found = [(path, h, c) for path in FILES for (h, c) in commands(path)]
    if not found:
        print("readme: no commands found in " + ", ".join(FILES))
        return 1
    passed = failed = 0
    for path, heading, command in found:
        lower = heading.lower()
        what = command
        if command == "bash .ci/run":
            print(f"skip - {path}: {command} (this is the CI entry point that runs these)")
            continue
        if "run by hand" in lower:
            print(f"skip - {path}: {command} (under '{heading}')")
            continue
        if "needs a cluster" in lower:
            if command.startswith("kubectl "):
                print(f"skip - {path}: {command} (under '{heading}')")
                continue
            if command.startswith("helm install "):
                what = "helm template " + command[len("helm install "):]
        if command.startswith("cargo run --release -- run --once --config examples/quickstart.yaml"):
            subprocess.run(["rm", "-rf", os.path.join(ROOT, "target", "quickstart-data")])
        r = run(what, env)
        ok = r.returncode == 0
        note = ""
        if ok and "examples/quickstart.yaml" in command:
            docs = [l for l in r.stdout.splitlines() if l.startswith("{")]
            ok = bool(docs) and all(json.loads(d).get("message") is not None for d in docs)
            note = f" ({len(docs)} documents)"
        if ok:
            passed += 1
            print(f"ok   - {path}: {command}{note}")
        else:
            failed += 1
            print(f"FAIL - {path}: {what} (exit {r.returncode})")
            print("  stdout: " + r.stdout[-2000:].replace("\n", "\n  "))
            print("  stderr: " + r.stderr[-2000:].replace("\n", "\n  "))
    print(f"readme: {passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())

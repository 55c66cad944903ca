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
* a heading that says "running instance": the block is one session against a live daemon (it
  starts logferry in the background with `&`, `curl`s it, stops it with `kill %1 && wait %1`), so
  the whole block runs as one bash script (`set -eo pipefail`: every command must succeed), in
  its own process group, which is killed afterwards whatever happened. Its port (the
  quickstart's 127.0.0.1:2020) must be free before it starts, so that the curls reach the
  instance the block started and no other.

The quickstart (`cargo run --release -- run --once --config examples/quickstart.yaml`) must
also print at least one document, so target/quickstart-data (its checkpoints) is removed first,
as on a fresh clone. Finding no command at all is a failure.
"""
import glob
import json
import os
import re
import signal
import socket
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FILES = ["README.md", "charts/logferry/README.md"] + sorted(
    os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "examples/*/README.md"))
)


def commands(path):
    """(heading, command, block) for every command of every sh/bash block of `path` (`block`
    numbers the blocks of the file)."""
    heading = ""
    out = []
    in_block = False
    block = 0
    pending = ""
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not in_block:
                if line.startswith("#"):
                    heading = line.lstrip("#").strip()
                elif re.match(r"^```(sh|bash|shell)\s*$", line):
                    in_block = True
                    block += 1
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
            out.append((heading, re.sub(r"\s+#\s[^'\"]*$", "", command), block))
    return out


def run(command, env):
    return subprocess.run(
        ["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True
    )


# The admin address of the quickstart (examples/quickstart.yaml: server.listen).
QUICKSTART_ADMIN = ("127.0.0.1", 2020)


def port_free(addr):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(addr)
            return True
        except OSError:
            return False


def run_session(commands, env):
    """A "running instance" block as one script in its own process group; the group (the
    background daemon included) is killed afterwards. Generous timeout: the machine is loaded."""
    if not port_free(QUICKSTART_ADMIN):
        return subprocess.CompletedProcess(
            commands, 1, "", f"{QUICKSTART_ADMIN[0]}:{QUICKSTART_ADMIN[1]} is in use by another process"
        )
    script = "set -eo pipefail\n" + "\n".join(commands) + "\n"
    p = subprocess.Popen(
        ["bash", "-c", script], cwd=ROOT, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )
    try:
        out, err = p.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        err += "\ntimed out after 600 s"
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(commands, p.returncode, out, err)


def main():
    env = dict(os.environ)
    tools = os.environ.get("LOGFERRY_TOOLS_DIR", os.path.join(ROOT, "target", "tools"))
    env["PATH"] = os.path.join(tools, "bin") + os.pathsep + env.get("PATH", "")
    found = [(path, h, c, b) for path in FILES for (h, c, b) in commands(path)]
    if not found:
        print("readme: no commands found in " + ", ".join(FILES))
        return 1
    passed = failed = 0
    sessions = 0
    done_blocks = set()
    for path, heading, command, block in found:
        lower = heading.lower()
        what = command
        if "running instance" in lower:
            if (path, block) in done_blocks:
                continue
            done_blocks.add((path, block))
            session = [c for (p, _, c, b) in found if (p, b) == (path, block)]
            r = run_session(session, env)
            if r.returncode == 0:
                passed += 1
                sessions += 1
                print(f"ok   - {path}: against a running instance, as one session:")
            else:
                failed += 1
                print(f"FAIL - {path}: against a running instance, as one session (exit {r.returncode}):")
            for c in session:
                print(f"         {c}")
            print("  stdout: " + r.stdout[-2000:].replace("\n", "\n  "))
            if r.returncode != 0:
                print("  stderr: " + r.stderr[-3000:].replace("\n", "\n  "))
            continue
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

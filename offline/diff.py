"""`make diff BASE=<git ref> STACK=<env|all>`: what a change does to every rendered object.

Renders the stack at BASE (the commit's own code, unpacked with `git archive` into a temporary
folder) and at the working tree, each with `python -m offline.render`, and prints a unified diff
grouped per object -- every Kubernetes object (Helm releases split into their Jobs and CronJobs),
`outputs.json`, `plan.txt`, and each Vault policy and key list -- after a one-line summary per stack
(added / changed / removed). The render holds no secret value, so neither does the diff.
Exit 0 (with or without changes); 2 with one message for a bad BASE or a render that fails.
"""

from __future__ import annotations

import argparse
import difflib
import io
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import yaml

from config.naming import ENVIRONMENTS
from offline import PROJECT_DIR
from offline.project import link_shared

STACKS = ENVIRONMENTS


class DiffError(Exception):
    """BASE or a render cannot be used; the message says what to do."""


def resolve(ref: str, project_dir: Path) -> str:
    proc = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd=project_dir,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise DiffError(f"BASE {ref!r} is not a commit of this repository: give a branch, tag or commit "
                        "(e.g. BASE=origin/main), fetched first")
    return proc.stdout.strip()


def unpack(sha: str, project_dir: Path, target: Path) -> None:
    archive = subprocess.run(["git", "archive", "--format=tar", sha], cwd=project_dir, capture_output=True,
                             check=True).stdout
    try:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(target, filter="data")
    except tarfile.TarError as exc:
        raise DiffError(f"the tree of BASE {sha[:12]} cannot be unpacked safely ({exc})") from None
    link_shared(target, project_dir)  # the interpreter and helm the renders use


def render(tree: Path, stack: str, out: Path, label: str) -> Path:
    proc = subprocess.run([sys.executable, "-m", "offline.render", "--stack", stack, "--out", str(out)],
                          cwd=tree, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise DiffError(f"the render of {stack} at {label} failed: {last[0]}")
    return out / stack


def objects(root: Path) -> dict[str, str]:
    """Every object of a render, keyed `kind namespace/name` (or the file), as stable text."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(root).as_posix()
        if rel.startswith("manifests/"):
            for doc in yaml.safe_load_all(path.read_text()):
                if not doc:
                    continue
                meta = doc.get("metadata", {})
                key = f"{doc.get('kind')} {meta.get('namespace', '')}/{meta.get('name', '')}".replace(" /", " ")
                out[key] = yaml.safe_dump(doc, sort_keys=True, default_flow_style=False)
        else:
            out[rel] = path.read_text()
    return out


def compare(base: dict[str, str], head: dict[str, str], stack: str) -> tuple[str, list[str]]:
    added = sorted(set(head) - set(base))
    removed = sorted(set(base) - set(head))
    changed = sorted(k for k in set(base) & set(head) if base[k] != head[k])
    if not (added or removed or changed):
        return f"{stack}: no changes", []
    summary = f"{stack}: {len(added)} added, {len(changed)} changed, {len(removed)} removed"
    body: list[str] = []
    for key in sorted(added + removed + changed):
        before, after = base.get(key, ""), head.get(key, "")
        body.extend(difflib.unified_diff(before.splitlines(), after.splitlines(), f"base/{stack}/{key}",
                                         f"head/{stack}/{key}", lineterm=""))
    return summary, body


def diff(ref: str, stacks: list[str], project_dir: Path = PROJECT_DIR) -> str:
    sha = resolve(ref, project_dir)
    with tempfile.TemporaryDirectory(prefix="testinfra-diff-") as tmp:
        base_tree = Path(tmp) / "base"
        base_tree.mkdir()
        unpack(sha, project_dir, base_tree)
        summaries, bodies = [], []
        for stack in stacks:
            base = objects(render(base_tree, stack, Path(tmp) / "base-render", f"BASE {ref}"))
            head = objects(render(project_dir, stack, Path(tmp) / "head-render", "the working tree"))
            summary, body = compare(base, head, stack)
            summaries.append(summary)
            bodies.extend(body)
    return "\n".join([*summaries, *([""] + bodies if bodies else [])]) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m offline.diff", description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="git ref to compare the working tree with")
    ap.add_argument("--stack", default="all", help="local, staging, prod or all")
    ns = ap.parse_args(argv)
    stacks = list(STACKS) if ns.stack == "all" else [ns.stack]
    if any(s not in STACKS for s in stacks):
        print(f"diff: no stack {ns.stack!r}: use one of {', '.join(STACKS)} or all", file=sys.stderr)
        return 2
    try:
        sys.stdout.write(diff(ns.base, stacks))
    except DiffError as exc:
        print(f"diff: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

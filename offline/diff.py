"""`make diff BASE=<git ref> STACK=<env|all>`: what a change does to every rendered object.

Renders the stack at BASE (the commit's own code, unpacked with `git archive` into a temporary
folder) and at the working tree, each with `python -m offline.render`, and prints a unified diff
grouped per object -- every Kubernetes object (Helm releases split into their Jobs and CronJobs),
`outputs.json`, `plan.txt`, and each Vault policy and key list -- after a one-line summary per stack
(added / changed / removed). The render holds no secret value, so neither does the diff.

Rendering BASE runs that commit's code. It runs in a throwaway virtualenv made for this diff (the
checkout's packages are importable through a path entry, never writable through it), with an
environment stripped to what a render needs (no VAULT_*, PULUMI_*, GH_TOKEN, cloud keys: only
RENDER_ENV's names), and HOME in the temporary folder. It is not a sandbox: it has your user's file
access, so diff only against commits you would run.
Exit 0 (with or without changes); 2 with one message for a bad BASE or a render that fails.
"""

from __future__ import annotations

import difflib
import io
import os
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from pathlib import Path

from config import cli
from config.errors import TestinfraError
from offline import PROJECT_DIR, manifests_yaml
from offline.helm import helm_binary

# The only variables a render gets: the rest (tokens, passphrases, cloud keys) stays with the caller.
RENDER_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")


class DiffError(TestinfraError):
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


def throwaway_interpreter(folder: Path) -> Path:
    """A new virtualenv whose only link to the checkout's packages is a read path (no .pth of theirs runs)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, capture_output=True)
    python = folder / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "testinfra-checkout-packages.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return python


def render_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in RENDER_ENV}
    home.mkdir(exist_ok=True)
    return {**env, "HOME": str(home), "HELM": helm_binary(), "PYTHONDONTWRITEBYTECODE": "1"}


def render(tree: Path, stack: str, out: Path, label: str, *, python: str, env: dict[str, str]) -> Path:
    proc = subprocess.run([python, "-m", "offline.render", "--stack", stack, "--out", str(out)],
                          cwd=tree, capture_output=True, text=True, check=False, env=env)
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
            for doc in manifests_yaml.load_all(path.read_text()):
                meta = doc.get("metadata", {})
                key = f"{doc.get('kind')} {meta.get('namespace', '')}/{meta.get('name', '')}".replace(" /", " ")
                out[key] = manifests_yaml.dump_all([doc], sort_keys=True)
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
        base_python = str(throwaway_interpreter(Path(tmp) / "venv"))
        env = render_env(Path(tmp) / "home")
        summaries, bodies = [], []
        for stack in stacks:
            base = objects(render(base_tree, stack, Path(tmp) / "base-render", f"BASE {ref}", python=base_python,
                                  env=env))
            head = objects(render(project_dir, stack, Path(tmp) / "head-render", "the working tree",
                                  python=sys.executable, env=env))
            summary, body = compare(base, head, stack)
            summaries.append(summary)
            bodies.extend(body)
    return "\n".join([*summaries, *([""] + bodies if bodies else [])]) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = cli.parser("offline.diff", __doc__)
    ap.add_argument("--base", required=True, help="git ref to compare the working tree with")
    cli.add_stack(ap, also=("all",), help="a stack with a Pulumi.<stack>.yaml, or all")
    ns = ap.parse_args(argv)
    # Every stack `make render` accepts: the project's Pulumi.<stack>.yaml files (render names a bad one).
    stacks = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in PROJECT_DIR.glob("Pulumi.*.yaml")
                    if p.name != "Pulumi.yaml") if ns.stack == "all" else [ns.stack]
    return cli.run("diff", lambda: show(ns.base, stacks))


def show(base: str, stacks: list[str]) -> int:
    sys.stdout.write(diff(base, stacks))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`make bench-real`: the real engine where people wait, side by side with the seed's way.

For N services (12 = the seed catalog; more = a synthetic catalog of the same shape, as in
bench/evaluate.py), on a fresh local environment (`make local-env`), in one run:
- this project: `pulumi up` from empty, a no-change `pulumi preview`, `pulumi up` after one service's
  timeout changed, `pulumi destroy` (the real CLI, providers and policy pack, as `make up` runs them);
- the seed's way: one shell script that writes the same Vault keys, policy and role (`bao`), applies
  the same namespace objects, store and ExternalSecrets (`kubectl apply`), waits for them as the stack
  does, and runs `helm upgrade --install` of the same chart with the same values per service --
  generated from the same evaluation of the program, so both deploy the same objects. Run from empty
  and again after the same timeout change.
With `--backend s3` the state goes to a real S3 API server (versitygw, tools/localenv/s3.py) with
checkpoints on, as staging and prod keep it; `file` is the local environment's own backend (one write
at the end). The stack's suites are not awaited (`waitForJobs: false` in the copy): both ways deploy,
neither waits for the suites, which the node runs in both. Between two timed steps the benchmark
waits, untimed, until the suites the previous step started have finished, so a step is not timed
against suites another step started (a preview on a pull request meets a settled cluster).
Each figure is the best of --repeat cycles. Prints one JSON line per N and backend: services, backend, up_s, seed_up_s,
up_ratio, preview_s, preview_ratio (no-change preview / seed-way deploy), change_s, seed_change_s,
change_ratio, destroy_s, and up_trace/preview_trace: where the first cycle's up and preview spent
their time (bench/trace.py over the CLI's OpenTelemetry trace, kept in build/bench/).

    python -m bench.real --services 12 --services 100
    python -m bench.real --plan-only --services 2   # no engine: the project copy and the seed-way script
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench import trace
from bench.record import record
from bench.synthetic import seed_template, size_quota, synthetic_catalog
from config.files import stack_config
from config.loading import load_settings, stack_settings
from config.naming import CHART_PATH, RELEASE_TYPE, VAULT_POLICY_TYPE, VAULT_SECRET_TYPE
from offline.harness import evaluate
from offline.project import copy_project
from offline.render import kubernetes_manifest
from runs.phases import PHASES, percentiles

PROJECT_DIR = Path(__file__).resolve().parent.parent

LOCAL_ENV = PROJECT_DIR / "build" / "local-env"
TRACES = PROJECT_DIR / "build" / "bench"
CHANGED = "graph"


def project_copy(root: Path, services: int, *, suites: bool = True) -> Path:
    """The project at N services; `suites=False`: no release runs its suite on install (runOnInstall off,
    in the program and so in the seed-way script), to time the deployment alone where the one node could
    not run N suites (1,000) in the time the engine takes."""
    project = copy_project(root / "project", skip=("tests/",))
    stack_file = project / "Pulumi.local.yaml"
    document = yaml.safe_load(stack_file.read_text())
    document["config"]["testinfra:waitForJobs"] = False
    if not suites:
        document["config"]["testinfra:runOnInstall"] = False
    stack_file.write_text(yaml.safe_dump(document, sort_keys=False))
    if services != 12:
        template = seed_template(project)
        synthetic_catalog(project, {**{f"svc-{i:04d}": template for i in range(services - 1)},
                                    CHANGED: {**template, "timeoutSeconds": 100}})
        size_quota(project / "Pulumi.local.yaml", services)
    return project


def seed_script(project: Path, out: Path) -> Path:
    """The seed's way as one bash script, from the program's own declarations (offline evaluation)."""
    config, secret_keys = stack_config("local", project_dir=project)
    settings = load_settings(project_dir=project, environment="local", config=config, secret_keys=secret_keys)
    ev = evaluate("local", project_dir=project, config=config, secret_keys=secret_keys)
    out.mkdir(parents=True, exist_ok=True)
    lines = ["#!/usr/bin/env bash", "# The seed's way: bao, kubectl apply, helm upgrade --install.", "set -euo pipefail"]
    keys = {k.path: k for k in settings.vault_keys}
    for res in ev.of_type(VAULT_SECRET_TYPE):
        key = keys[res.inputs["name"]]
        pairs = " ".join(f"{p}=\"$(head -c 24 /dev/urandom | base64 | tr -dc A-Za-z0-9)\"" for p in key.properties)
        lines.append(f"bao kv put -mount={res.inputs['mount']} {res.inputs['name']} {pairs} >/dev/null")
    for res in ev.of_type(VAULT_POLICY_TYPE):
        (out / "policy.hcl").write_text(res.inputs["policy"])
        lines.append(f"bao policy write {res.inputs['name']} {out / 'policy.hcl'} >/dev/null")
    for res in ev.of_type("vault:index/authBackend:AuthBackend"):
        path = res.inputs["path"]
        # Captured first: with pipefail, `bao auth list | grep -q` fails when grep stops reading early.
        lines.append(f"auths=$(bao auth list); grep -q '^{path}/' <<<\"$auths\" || "
                     f"bao auth enable -path={path} kubernetes >/dev/null")
    for res in ev.of_type("vault:kubernetes/authBackendConfig:AuthBackendConfig"):
        lines.append("kubectl get configmap kube-root-ca.crt -n default -o jsonpath='{.data.ca\\.crt}' > "
                     f"{out / 'ca.crt'}")
        lines.append(f"bao write auth/kubernetes/config kubernetes_host={res.inputs['kubernetesHost']} "
                     f"kubernetes_ca_cert=@{out / 'ca.crt'} disable_local_ca_jwt=true >/dev/null")
    for res in ev.of_type("vault:kubernetes/authBackendRole:AuthBackendRole"):
        i = res.inputs
        lines.append(f"bao write auth/{i['backend']}/role/{i['roleName']} "
                     f"bound_service_account_names={','.join(i['boundServiceAccountNames'])} "
                     f"bound_service_account_namespaces={','.join(i['boundServiceAccountNamespaces'])} "
                     f"audience={i['audience']} token_policies={','.join(i['tokenPolicies'])} "
                     f"token_ttl={int(i['tokenTtl'])} token_max_ttl={int(i['tokenMaxTtl'])} >/dev/null")
    manifests = [m for m in (kubernetes_manifest(r) for r in ev.resources) if m is not None]
    first = [m for m in manifests if m["kind"] not in ("SecretStore", "ClusterSecretStore", "ExternalSecret")]
    eso = [m for m in manifests if m not in first]
    (out / "cluster.yaml").write_text(yaml.safe_dump_all(first, sort_keys=False))
    (out / "eso.yaml").write_text(yaml.safe_dump_all(eso, sort_keys=False))
    lines.append(f"kubectl apply -f {out / 'cluster.yaml'} >/dev/null")
    lines.append(f"kubectl apply -f {out / 'eso.yaml'} >/dev/null")
    lines.append("kubectl wait --for=condition=Ready externalsecret.external-secrets.io --all "
                 f"-n {settings.namespace} --timeout=300s >/dev/null")
    for res in ev.of_type(RELEASE_TYPE):
        # JSON: YAML 1.1 (PyYAML) leaves a run id like 6e12345678 unquoted; Helm's YAML 1.2 reads a number.
        values = out / f"values-{res.inputs['name']}.json"
        values.write_text(json.dumps(res.inputs["values"]))
        lines.append(f"helm upgrade --install {res.inputs['name']} {project / CHART_PATH} "
                     f"-n {res.inputs['namespace']} -f {values} --history-max 5 >/dev/null")
    script = out / "seed-way.sh"
    script.write_text("\n".join(lines) + "\n")
    script.chmod(0o755)
    return script


class Env:
    def __init__(self, project: Path, backend: dict[str, str] | None = None) -> None:
        self.project = project
        self.env = {**os.environ, **json.loads((LOCAL_ENV / "env.json").read_text()),
                    "PULUMI_SKIP_CONFIRMATIONS": "true", **(backend or {})}
        if backend:  # as staging and prod: a checkpoint after every step
            self.env.pop("PULUMI_SKIP_CHECKPOINTS", None)

    def run(self, *argv: str, cwd: Path | None = None) -> float:
        started = time.perf_counter()
        proc = subprocess.run(list(argv), cwd=cwd or self.project, env=self.env, capture_output=True, text=True,
                              check=False, stdin=subprocess.DEVNULL)
        took = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"bench-real: `{shlex.join(argv)}` failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        return took

    def pulumi(self, *args: str) -> float:
        return self.run("pulumi", *args, "--stack", "local", "--non-interactive")


def settle(env: Env, namespace: str, timeout_s: float = 600) -> None:
    """Wait (untimed) until no Job in the namespace is running, so the next step has the node to itself."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        proc = subprocess.run(["kubectl", "get", "jobs", "-n", namespace, "-o", "json"], env=env.env,
                              capture_output=True, text=True, check=False)
        jobs = json.loads(proc.stdout or "{}").get("items", []) if proc.returncode == 0 else []
        if not any((job.get("status") or {}).get("active") for job in jobs):
            return
        time.sleep(1)
    raise SystemExit(f"bench-real: the suites in {namespace} still run after {timeout_s:.0f} s")


def set_timeout(project: Path, seconds: int) -> None:
    catalog = yaml.safe_load((project / "catalog.yaml").read_text())
    catalog["services"][CHANGED]["timeoutSeconds"] = seconds
    (project / "catalog.yaml").write_text(yaml.safe_dump(catalog))


def seed_cleanup(env: Env) -> None:
    """Remove what the seed-way script made: the namespace, the binding, the keys, auth and policy."""
    s = stack_settings("local", project_dir=env.project)
    mount, prefix = s.stack.vault_mount, s.vault_prefix
    env.run("kubectl", "delete", "namespace", s.namespace, "--wait=true", "--timeout=300s")
    env.run("kubectl", "delete", "clusterrolebinding", s.vault_token_review_binding_name, "--ignore-not-found")
    env.run("bash", "-c", f"for k in $(bao kv list -format=json -mount={mount} {prefix} | tr -d '[]\",'); "
            f"do bao kv metadata delete -mount={mount} {prefix}/$k >/dev/null; done; "
            f"bao auth disable {s.stack.vault_auth_mount} >/dev/null; bao policy delete {s.vault_policy_name} >/dev/null")


def s3_env(project: Path) -> Env:
    """versitygw on the local environment, and the proto stack the program reads, in it."""
    from tools.localenv import layout, stacks
    from tools.localenv.s3 import start_s3

    env = Env(project, start_s3(layout.PROCESSES, layout.E2E_BIN / "versitygw", LOCAL_ENV / "bench-s3"))
    stacks.deploy_proto_stack(env.env, project=project / "tools" / "localenv" / "proto_stack")
    return env


def state_size(env: Env) -> dict[str, Any]:
    """The stack's state: its size, and the resource types that weigh most in it."""
    exported = subprocess.run(["pulumi", "stack", "export", "--stack", "local"], cwd=env.project, env=env.env,
                              capture_output=True, text=True, check=True).stdout
    weights: dict[str, list[int]] = {}
    for res in json.loads(exported)["deployment"].get("resources") or []:
        entry = weights.setdefault(res["type"].rsplit(":", 1)[-1], [0, 0])
        entry[0] += 1
        entry[1] += len(json.dumps(res))
    heaviest = sorted(weights.items(), key=lambda kv: -kv[1][1])[:4]
    return {"state_kb": round(len(exported) / 1024), "resources": sum(n for n, _ in weights.values()),
            "heaviest_kb": {t: round(b / 1024) for t, (_, b) in heaviest}}


COMPRESSION = {"none": {}, "gzip": {"PULUMI_DIY_BACKEND_GZIP": "true"}, "zstd": {"PULUMI_DIY_BACKEND_ZSTD": "true"}}


def bench_up(services: int, backend_kind: str, compression: str = "none") -> dict[str, Any]:
    """`--up-only`: the seed way from empty, then this project's `up` from empty (traced), once each:
    the row to measure one change to what `up` writes (checkpoints, state size) against. `compression`:
    the DIY backend's own state compression (PULUMI_DIY_BACKEND_GZIP / _ZSTD), written at every checkpoint."""
    with tempfile.TemporaryDirectory(prefix="bench-real-") as tmp:
        project = project_copy(Path(tmp), services)
        env = s3_env(project) if backend_kind == "s3" else Env(project)
        env.env.update(COMPRESSION[compression])
        env.run("pulumi", "stack", "select", "--create", "--secrets-provider", "passphrase", "local")
        namespace = stack_settings("local", project_dir=project).namespace
        seed_up = env.run("bash", str(seed_script(project, Path(tmp) / "seed")))
        settle(env, namespace)
        seed_cleanup(env)
        up_trace = TRACES / f"up-{services}-{backend_kind}.otel"
        up = env.pulumi("up", "--yes", "--skip-preview", "--policy-pack", "policy", "--otel-traces", f"file://{up_trace}")
        size = state_size(env)
        settle(env, namespace)
    up_breakdown = trace.breakdown(up_trace, min_seconds=0.2)
    return {"services": services, "backend": backend_kind, "compression": compression, "up_s": round(up, 2),
            "seed_up_s": round(seed_up, 2),
            "up_ratio": round(up / seed_up, 2), **size, **checkpoint_figures(up_breakdown), "up_trace": up_breakdown}


def run_phases(env: Env, root: Path, services: int) -> dict[str, Any]:
    """Every suite run once on demand, as `make run` runs them (runs.run, readiness gate included), on the
    settled stack: the time to every result, and per phase (runs/phases.py) p50 and p95 over the suites."""
    run_id = f"bench-{services}"
    took = env.run(sys.executable, "-m", "runs.run", "--stack", "local", "--all", "--run-id", run_id, "--caller",
                   "bench", "--junit-dir", str(root / "junit"), "--runs-dir", str(root / "runs"))
    records = json.loads((root / "runs" / run_id / "run-manifest.json").read_text())["services"].values()
    table = percentiles([r["phases"] for r in records if r.get("phases")])
    return {"run_all_s": round(took, 2),
            "run_phases": {phase: {"p50": round(q[50], 2), "p95": round(q[95], 2)} for phase, q in table.items()}}


def phase_table(rows: list[dict[str, Any]]) -> str:
    """p50/p95 of each phase, one column pair per row that ran the suites."""
    ran = [r for r in rows if r.get("run_phases")]
    if not ran:
        return ""
    lines = [f"{'phase (s)':<18}" + "".join(f"{str(r['services']) + ' p50':>10}{str(r['services']) + ' p95':>10}"
                                          for r in ran)]
    for phase in PHASES:
        lines.append(f"{phase:<18}" + "".join(f"{r['run_phases'].get(phase, {}).get('p50', 0):>10.2f}"
                                              f"{r['run_phases'].get(phase, {}).get('p95', 0):>10.2f}" for r in ran))
    lines.append(f"{'all suites, wall':<18}" + "".join(f"{r['run_all_s']:>20.2f}" for r in ran))
    return "\n".join(lines)


def checkpoint_figures(breakdown: dict[str, Any]) -> dict[str, Any]:
    """The state writes of an `up` and how long the loop that persists them was busy (table columns)."""
    return {"up_checkpoints": breakdown.get("checkpoints"),
            "up_checkpoint_loop_busy_s": round(float(breakdown.get("checkpoint_loop_busy") or 0), 1)}


def fresh_environment() -> None:
    subprocess.run([sys.executable, "-m", "tools.localenv.environment", "down"], cwd=PROJECT_DIR, capture_output=True)
    up_env = subprocess.run([sys.executable, "-m", "tools.localenv.environment", "up"], cwd=PROJECT_DIR, capture_output=True,
                            text=True)
    if up_env.returncode != 0:
        raise SystemExit(f"bench-real: make local-env failed: {up_env.stderr[-1500:]}")


def bench(services: int, repeat: int, backend_kind: str = "file", *, up_only: bool = False,
          compression: str = "none", suites: bool = True) -> dict[str, Any]:
    fresh_environment()
    TRACES.mkdir(parents=True, exist_ok=True)
    if up_only:
        try:
            return bench_up(services, backend_kind, compression)
        finally:
            subprocess.run([sys.executable, "-m", "tools.localenv.environment", "down"], cwd=PROJECT_DIR,
                           capture_output=True)
    best: dict[str, float] = {}
    phases: dict[str, Any] = {}

    def keep(name: str, seconds: float) -> None:
        best[name] = min(best.get(name, float("inf")), seconds)
        # As it goes: a later step that fails (SystemExit) does not take the earlier figures with it.
        print(f"bench-real: {services} services, {backend_kind}: {name} {seconds:.2f}", file=sys.stderr, flush=True)

    try:
        with tempfile.TemporaryDirectory(prefix="bench-real-") as tmp:
            project = project_copy(Path(tmp), services, suites=suites)
            env = s3_env(project) if backend_kind == "s3" else Env(project)
            env.run("pulumi", "stack", "select", "--create", "--secrets-provider", "passphrase", "local")
            namespace = stack_settings("local", project_dir=project).namespace
            for cycle in range(repeat):
                # The first cycle's up and preview also write the CLI's trace: where their time went.
                up_trace = TRACES / f"up-{services}-{backend_kind}.otel"
                preview_trace = TRACES / f"preview-{services}-{backend_kind}.otel"
                traced = (lambda path: ("--otel-traces", f"file://{path}")) if cycle == 0 else (lambda path: ())
                set_timeout(project, 100)
                keep("up_s", env.pulumi("up", "--yes", "--skip-preview", "--policy-pack", "policy", *traced(up_trace)))
                settle(env, namespace)
                if cycle == 0 and backend_kind == "file" and suites:  # the suites' phases do not depend on the state's backend
                    phases = run_phases(env, Path(tmp), services)
                keep("preview_s", env.pulumi("preview", "--policy-pack", "policy", *traced(preview_trace)))
                set_timeout(project, 90)
                keep("change_s", env.pulumi("up", "--yes", "--skip-preview", "--policy-pack", "policy"))
                settle(env, namespace)
                keep("destroy_s", env.pulumi("destroy", "--yes", "--skip-preview"))
                set_timeout(project, 100)
                script = seed_script(project, Path(tmp) / "seed-100")
                keep("seed_up_s", env.run("bash", str(script)))
                settle(env, namespace)
                set_timeout(project, 90)
                script = seed_script(project, Path(tmp) / "seed-90")
                keep("seed_change_s", env.run("bash", str(script)))
                settle(env, namespace)
                seed_cleanup(env)
    finally:
        subprocess.run([sys.executable, "-m", "tools.localenv.environment", "down"], cwd=PROJECT_DIR, capture_output=True)
    return {
        "services": services,
        "backend": backend_kind,
        "suites": suites,
        **{k: round(v, 2) for k, v in sorted(best.items())},
        **{f"{k[:-2]}_ms_per_service": round(1000 * v / services, 1) for k, v in sorted(best.items())},
        "up_ratio": round(best["up_s"] / best["seed_up_s"], 2),
        "preview_ratio": round(best["preview_s"] / best["seed_up_s"], 2),
        "change_ratio": round(best["change_s"] / best["seed_change_s"], 2),
        **phases,
        **checkpoint_figures(up_breakdown := trace.breakdown(up_trace, min_seconds=0.2)),
        "up_trace": up_breakdown,
        "preview_trace": trace.breakdown(preview_trace, min_seconds=0.2),
    }


def plan(services: int, *, suites: bool = True) -> dict[str, Any]:
    """What a run deploys, without the engine: the project copy at N services and the seed-way script
    (the fast suite runs this, so the benchmark cannot fall behind the config model unnoticed)."""
    with tempfile.TemporaryDirectory(prefix="bench-plan-") as tmp:
        project = project_copy(Path(tmp), services, suites=suites)
        script = seed_script(project, Path(tmp) / "seed")
        syntax = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
        if syntax.returncode != 0:
            raise SystemExit(f"bench-real: the seed-way script is not valid bash: {syntax.stderr[-1000:]}")
        settings = stack_settings("local", project_dir=project)
        return {"services": len(settings.services), "suites_on_install": settings.stack.run_on_install,
                "seed_script_lines": len(script.read_text().splitlines())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--services", type=int, action="append", help="12 (the seed catalog) or more")
    ap.add_argument("--repeat", type=int, default=3, help="best of N cycles")
    ap.add_argument("--backend", action="append", choices=("file", "s3"), help="file (default) and/or s3")
    ap.add_argument("--up-only", action="store_true", help="only `up` from empty and the seed way from empty, "
                    "once, with the state's size and the trace (to measure one change)")
    ap.add_argument("--compression", action="append", choices=sorted(COMPRESSION),
                    help="with --up-only: the DIY backend's state compression, one row each (default none)")
    ap.add_argument("--no-suites", dest="suites", action="store_false",
                    help="no suite runs on install (runOnInstall off in both ways): the deployment alone")
    ap.add_argument("--plan-only", action="store_true", help="no engine: copy, synthetic catalog, seed script")
    ap.add_argument("--record", action="store_true", help="add the rows to docs/figures.json and figures.md")
    ns = ap.parse_args()
    if ns.compression and not ns.up_only:
        ap.error("--compression goes with --up-only")
    if ns.plan_only:
        for n in ns.services or [12, 100]:
            print(json.dumps(plan(n, suites=ns.suites)), flush=True)
        return 0
    rows = []
    for backend in ns.backend or ["file"]:
        for n in ns.services or [12, 100]:
            for compression in ns.compression or ["none"]:
                rows.append(bench(n, ns.repeat, backend, up_only=ns.up_only, compression=compression,
                                  suites=ns.suites))
                print(json.dumps(rows[-1]), flush=True)
    if phase_table(rows):
        print("where the time to a suite's results goes (runs/phases.py), per suite:\n" + phase_table(rows), flush=True)
    if ns.record:
        record("bench/real.py --up-only (up from empty, the state's size)" if ns.up_only else
               "make bench-real (the real engine against the plain script)",
               " ".join(["python -m bench.real", *sys.argv[1:]]), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Argo CD (application-controller + repo-server + Debian's redis-server) on the bench's
cluster, on the same scenarios as the agent (issue 12, item 2).

All three run as host processes on 127.0.0.1 ports: redis-server (no persistence), the
repo-server (`--address 127.0.0.1`, plaintext gRPC), the application controller with the bench
cluster's admin kubeconfig (`ARGOCD_FAKE_IN_CLUSTER=true`: the in-cluster destination
`https://kubernetes.default.svc` is that kubeconfig's cluster, as in Argo CD's own local
development setup). No argocd-server: its Git webhook handler only sets the
`argocd.argoproj.io/refresh` annotation on the matching Applications, which the bench does
itself right after the push. The repositories are the bench's `git daemon` ones (git://).

Settings, the fastest honest ones: `--app-resync` (= `timeout.reconciliation`) 1 s for the
polling row, 180 s (the default) otherwise; selfHeal with `--self-heal-timeout-seconds 0` and
the self-heal backoff off; automated sync with prune; CreateNamespace.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from bench.flux import free_port, wait_established, wait_http_ok
from bench.peerbase import PeerBench, cm_yaml
from bench.peerbuild import ARGOCD_VERSION, argocd_dir
from bench.report import Row, fmt_ratio, fmt_s
from bench.support import (
    Watcher,
    WriteCount,
    clock,
    count_requests,
    deployment,
    object_set,
    p50,
    p95,
    say,
    st,
    terminate,
)
from gitops_lab.kube import KubeError
from gitops_lab.labgit import WorkingCopy

if TYPE_CHECKING:
    from bench.scenarios import Bench

NS = "argocd"
API = "argoproj.io/v1alpha1"
APPS = f"/apis/argoproj.io/v1alpha1/namespaces/{NS}/applications"
FAST_RESYNC = 1
# hack/git-verify-wrapper.sh of Argo CD (the fallback when the build's source copy is gone): an
# unsigned commit is `git verify-commit` exit 1, reported as no signature, not as an error
VERIFY_WRAPPER = """#!/bin/sh
test "$1" = "" && { echo "Wrong usage of git-verify-wrapper.sh" >&2; exit 1; }
if git describe --exact-match "$1" >/dev/null 2>&1; then
  TYPE=tag; OUTPUT=$(git verify-tag "$1" 2>&1); RET=$?
else
  TYPE=commit; OUTPUT=$(git verify-commit "$1" 2>&1); RET=$?
fi
case "$RET" in
0) echo "$OUTPUT" ;;
1) if test "$TYPE" = "tag" -a "${OUTPUT%%:*}" = "error"; then OUTPUT=""; fi
   echo "$OUTPUT"; RET=0 ;;
*) echo "$OUTPUT" >&2 ;;
esac
exit $RET
"""
DEFAULT_RESYNC = 180


def argocd_needs() -> str:
    """"" when Argo CD can run here, else what is missing."""
    if not shutil.which("redis-server"):
        return "no redis-server on PATH (Debian: apt-get install -y redis-server)"
    if not list((argocd_dir() / "crds").glob("*.yaml")):
        return f"no CRDs in {argocd_dir() / 'crds'}"
    return ""


def synced(name: str, sha: str) -> Any:
    def pred(n: str, obj: dict[str, Any]) -> bool:
        return (n == name and st(obj, "sync", "status") == "Synced"
                and st(obj, "sync", "revision") == sha)
    return pred


class ArgoBench(PeerBench):
    peer = "Argo CD"
    version = ARGOCD_VERSION
    build_note = (" (application-controller + repo-server in one binary; its metrics listener "
                  "patched from 0.0.0.0 to 127.0.0.1)")

    def __init__(self, bench: Bench) -> None:
        super().__init__(bench, argocd_dir())
        self.apps: Watcher | None = None
        self.redis = f"127.0.0.1:{free_port()}"
        self.repo_server = f"127.0.0.1:{free_port()}"

    # ---- lifecycle -------------------------------------------------------------------------------
    def run(self) -> None:
        try:
            self.start()
            self.latency(webhook=True)
            self.restart_controller(FAST_RESYNC)
            self.latency(webhook=False)
            self.restart_controller(DEFAULT_RESYNC)
            self.drift()
            self.initial_and_noop(1000 if not self.b.opts.quick else 100)
            self.rss()
        finally:
            self.stop()

    def spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        log = self.b.tmp / f"{name}.log"
        with log.open("ab") as sink:
            self.procs[name] = subprocess.Popen(args, env=env or dict(os.environ), stdout=sink,
                                                stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, cwd=self.b.tmp)

    def start(self) -> None:
        kubectl = self.b.kubectl
        kubectl.run("apply", "--server-side", "-f", str(self.folder / "crds"))
        wait_established(kubectl, self.folder / "crds")
        kubectl.run("create", "namespace", NS, check=False)
        for cm in ("argocd-cm", "argocd-rbac-cm", "argocd-cmd-params-cm", "argocd-tls-certs-cm",
                   "argocd-ssh-known-hosts-cm", "argocd-gpg-keys-cm"):
            self.b.admin.apply({"apiVersion": "v1", "kind": "ConfigMap",
                                "metadata": {"name": cm, "namespace": NS,
                                             "labels": {"app.kubernetes.io/part-of": "argocd"}}})
        self.b.admin.apply({"apiVersion": "v1", "kind": "Secret",
                            "metadata": {"name": "argocd-secret", "namespace": NS,
                                         "labels": {"app.kubernetes.io/part-of": "argocd"}}})
        self.b.admin.apply({
            "apiVersion": API, "kind": "AppProject", "metadata": {"name": "default", "namespace": NS},
            "spec": {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}],
                     "clusterResourceWhitelist": [{"group": "*", "kind": "*"}]}})
        redis_dir = self.b.tmp / "redis"
        redis_dir.mkdir(exist_ok=True)
        host, port = self.redis.split(":")
        self.spawn("redis-server", [shutil.which("redis-server") or "redis-server",
                                    "--bind", host, "--port", port, "--save", "",
                                    "--appendonly", "no", "--dir", str(redis_dir)])
        self.start_repo_server(DEFAULT_RESYNC)
        self.start_controller(DEFAULT_RESYNC)
        self.apps = Watcher(self.b.admin, APPS).start()
        self.b.watchers.append(self.apps)

    def start_repo_server(self, resync: int) -> None:
        """The repo-server caches what a branch resolves to for `--revision-cache-expiration`,
        which an install sets from `timeout.reconciliation` (ARGOCD_RECONCILIATION_TIMEOUT, as
        for the controller): with a 1 s resync and the 3 min default, polling saw a push after
        ~180 s."""
        tmp = self.b.tmp / "argocd-tmp"
        tmp.mkdir(exist_ok=True)
        gnupg = self.b.tmp / "argocd-gnupg"
        gnupg.mkdir(mode=0o700, exist_ok=True)
        env = dict(os.environ, ARGOCD_RECONCILIATION_TIMEOUT=f"{resync}s", TMPDIR=str(tmp),
                   ARGOCD_GPG_ENABLED="false", ARGOCD_GNUPGHOME=str(gnupg),
                   PATH=os.pathsep.join([str(self.tools()), str(self.folder / "bin"),
                                         os.environ.get("PATH", "")]))
        metrics = free_port()
        rhost, rport = self.repo_server.split(":")
        self.spawn("argocd-repo-server", [
            str(self.folder / "bin" / "argocd-repo-server"), "--address", rhost, "--port", rport,
            "--metrics-address", "127.0.0.1", "--metrics-port", str(metrics),
            "--redis", self.redis, "--disable-tls", "--client-ca-path", "",
            "--revision-cache-expiration", f"{resync}s", "--loglevel", "warn"], env)
        wait_http_ok(f"http://127.0.0.1:{metrics}/metrics", self.procs["argocd-repo-server"],
                     self.b.tmp / "argocd-repo-server.log")

    def tools(self) -> Path:
        """A folder with `git-verify-wrapper.sh`, which the repo-server runs (from PATH, as the
        image ships it in /usr/local/bin) on every revision it generates manifests for, GPG
        enabled or not (v3.5.3 `VerifyCommitSignature`, deprecated); without it every
        GenerateManifest fails with a bare `permission denied`. Argo CD's own script from the
        module's source (hack/), or the same logic if that copy is gone."""
        folder = self.b.tmp / "argocd-tools"
        folder.mkdir(exist_ok=True)
        script = folder / "git-verify-wrapper.sh"
        shipped = self.folder / "build" / "argocd" / "src" / "hack" / "git-verify-wrapper.sh"
        if shipped.is_file():
            shutil.copyfile(shipped, script)
        else:
            script.write_text(VERIFY_WRAPPER)
        script.chmod(0o755)
        return folder

    def start_controller(self, resync: int) -> None:
        port = free_port()
        env = dict(os.environ, KUBECONFIG=str(self.b.kubeconfig), ARGOCD_FAKE_IN_CLUSTER="true",
                   ARGOCD_RECONCILIATION_TIMEOUT=f"{resync}s",
                   TMPDIR=str(self.b.tmp / "argocd-tmp"))
        self.spawn("argocd-application-controller", [
            str(self.folder / "bin" / "argocd-application-controller"),
            "--kubeconfig", str(self.b.kubeconfig), "--namespace", NS,
            "--repo-server", self.repo_server, "--repo-server-plaintext",
            "--redis", self.redis, "--metrics-port", str(port),
            "--app-resync", str(resync), "--app-resync-jitter", "0",
            "--self-heal-timeout-seconds", "0", "--self-heal-backoff-timeout-seconds", "0",
            "--loglevel", "warn"], env)
        wait_http_ok(f"http://127.0.0.1:{port}/healthz", self.procs["argocd-application-controller"],
                     self.b.tmp / "argocd-application-controller.log", timeout=120)
        say(f"{self.label}: application controller ready (app-resync {resync} s)")

    def restart_controller(self, resync: int) -> None:
        self.sample_rss()
        terminate(self.procs.pop("argocd-application-controller", None))
        terminate(self.procs.pop("argocd-repo-server", None))
        self.start_repo_server(resync)
        self.start_controller(resync)

    def stop(self) -> None:
        self.sample_rss()
        for proc in self.procs.values():
            terminate(proc)
        self.procs.clear()
        if self.apps is not None:
            self.apps.stop()
        for ns in self.namespaces:
            with contextlib.suppress(KubeError):
                self.b.admin.delete("v1", "Namespace", ns, propagation="Background")

    # ---- apps ---------------------------------------------------------------------------------------
    def app(self, name: str, files: dict[str, str], timeout: float = 120) -> tuple[str, str, float]:
        """Repo + Application (automated, prune, selfHeal, CreateNamespace); returns (url, sha,
        seconds from creating the Application to Synced at the commit)."""
        url, sha = self.b.create_repo(name, files)
        ns = f"{name}-{secrets.token_hex(2)}"
        self.namespaces.append(ns)
        assert self.apps is not None
        t0 = clock()
        self.b.admin.apply({
            "apiVersion": API, "kind": "Application", "metadata": {"name": name, "namespace": NS},
            "spec": {"project": "default",
                     "source": {"repoURL": url, "path": "app", "targetRevision": "main"},
                     "destination": {"server": "https://kubernetes.default.svc", "namespace": ns},
                     "syncPolicy": {"automated": {"prune": True, "selfHeal": True},
                                    "syncOptions": ["CreateNamespace=true"]}}})
        try:
            t1, _ = self.apps.wait(synced(name, sha), t0, timeout,
                                   f"Argo CD {name} Synced {sha[:7]}")
        except TimeoutError as exc:  # say what Argo CD said (e.g. a ComparisonError)
            obj = self.apps.latest(name) or {}
            said = "; ".join(str(c.get("message", ""))[:200]
                             for c in (st(obj, "conditions") or []))
            raise RuntimeError(f"{exc}; the Application's conditions: {said or 'none'}") from exc
        return url, sha, t1 - t0

    def refresh(self, name: str) -> None:
        self.b.admin.patch(API, "Application", name,
                           {"metadata": {"annotations": {"argocd.argoproj.io/refresh": "normal"}}},
                           NS)

    # ---- scenarios -------------------------------------------------------------------------------------
    def latency(self, webhook: bool) -> None:
        name = "argo-hook" if webhook else "argo-poll"
        say(f"{self.label}: commit → Synced by {'refresh annotation (webhook)' if webhook else 'polling'}")
        url, _sha, _ = self.app(name, {"app/configmap.yaml": cm_yaml("initial")})
        wc = WorkingCopy(url, self.b.tmp / f"wc-{name}")
        assert self.apps is not None
        lat: list[float] = []
        for i in range(self.b.opts.trials):
            wc.write({"app/configmap.yaml": cm_yaml(f"{name}-{i}-{secrets.token_hex(2)}")})
            sha = wc.commit(f"trial {i}")
            t0 = clock()
            wc.push()
            if webhook:
                self.refresh(name)
            t1, _ = self.apps.wait(synced(name, sha), t0, 60 if webhook else 300,
                                   f"Argo CD {name} Synced {sha[:7]}")
            lat.append(t1 - t0)
            say(f"  {name} trial {i + 1}/{self.b.opts.trials}: {fmt_s(t1 - t0)}")
            time.sleep(0.2 + (0.2 * (i % 5) if not webhook else 0.0))
        wc.close()
        self.b.admin.delete(API, "Application", name, NS, propagation="Background")
        self.sample_rss()
        key = "webhook" if webhook else "poll"
        how = ("refresh annotation after the push (what argocd-server's webhook handler sets)"
               if webhook else f"polling (timeout.reconciliation = --app-resync {FAST_RESYNC} s, "
               "jitter 0; the agent: poll 1 s)")
        self.b.report.add(self.row(
            f"commit → Synced, {how}, n={len(lat)}",
            (self.b.figures.get(f"{key}_p50"), self.b.figures.get(f"{key}_p95")),
            (p50(lat), p95(lat))))

    def drift(self) -> None:
        name = "argo-drift"
        say(f"{self.label}: drift → corrected (selfHeal, timeout 0, no backoff)")
        desired = 2
        self.app(name, {"app/deployment.yaml": yaml.safe_dump(deployment("web", desired),
                                                               sort_keys=False)})
        ns = self.namespaces[-1]
        heal = self.heal_trials(ns, desired)
        self.b.admin.delete(API, "Application", name, NS, propagation="Background")
        self.sample_rss()
        self.b.report.add(self.row(
            f"drift → corrected (selfHeal, --self-heal-timeout-seconds 0, backoff off; both "
            f"watch the live objects), n={len(heal)}",
            (self.b.figures.get("heal_p50"), self.b.figures.get("heal_p95")),
            (p50(heal), p95(heal))))

    def initial_and_noop(self, size: int) -> None:
        name = f"argo-init-{size}"
        say(f"{self.label}: initial sync of {size} ConfigMaps, then no-op refreshes")
        files = object_set("configmaps", size)
        self.b.quiesce()
        _url, _sha, took = self.app(name, {f"app/{f}": t for f, t in files.items()}, timeout=900)
        self.sample_rss()
        kubectl = self.b.figures.get(f"kubectl_{size}")
        vs_kubectl = f"; Argo CD ÷ kubectl {fmt_ratio(took, kubectl)}" if kubectl else ""
        self.b.report.add(self.row(
            f"initial sync, {size:,} ConfigMaps (Application created → Synced{vs_kubectl})",
            (self.b.figures.get(f"initial_{size}"), None), (took, None)))
        assert self.apps is not None
        time.sleep(2)
        self.b.quiesce()
        wall: list[float] = []
        writes = WriteCount()
        for _ in range(self.b.opts.noop_trials):
            before_obj = self.apps.latest(name) or {}
            reconciled0 = st(before_obj, "reconciledAt")
            before = self.b.raw.request_counts()
            t0 = clock()
            self.refresh(name)

            def done(n: str, o: dict[str, Any], r0: Any = reconciled0) -> bool:
                ann = (o.get("metadata") or {}).get("annotations") or {}
                return (n == name and "argocd.argoproj.io/refresh" not in ann
                        and st(o, "reconciledAt") != r0)

            t1, _ = self.apps.wait(done, t0, 120, f"Argo CD {name} refreshed")
            time.sleep(0.3)
            delta = count_requests(before, self.b.raw.request_counts(), {"configmaps"},
                                   apps=("applications",))
            writes.add(delta)
            wall.append(t1 - t0)
            say(f"  no-op: {fmt_s(t1 - t0)}, requests: {delta.detail or 'no writes'}; "
                f"{delta.dry_runs} dry runs, {delta.reads} reads")
            time.sleep(1.1)  # reconciledAt has a resolution of 1 s
        self.sample_rss()
        n = len(wall)
        argo_writes = writes.objects + writes.events
        ours_t, ours_w = self.b.figures.get("noop_p50"), self.b.figures.get("noop_writes")
        self.b.report.add(Row(
            f"vs {self.label}: no-op re-sync, {size:,} ConfigMaps (refresh annotation), n={n}",
            (f"{fmt_s(ours_t)} · {ours_w:.0f} writes" if ours_t is not None and ours_w is not None
             else "n/a (phase not run)"),
            f"Argo CD {fmt_s(p50(wall))} · {argo_writes} writes (+{writes.app} Application "
            f"writes incl. status and the bench's {n} refresh PATCHes, {writes.dry_runs} dry runs)",
            fmt_ratio(ours_t, p50(wall)) if ours_t is not None else "n/a"))
        self.b.report.note(
            f"{self.label} no-op refresh of {size}: over {n} trials {writes.objects} object "
            f"writes, {writes.app} Application writes (annotation removal and status: Argo CD "
            f"keeps status in the object), {writes.events} Events, {writes.dry_runs} dry runs, "
            f"{writes.reads} reads")

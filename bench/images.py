"""Image update automation in the bench: tag push → updater commit → Synced, through the
registry's notification and by scan, and a scan of a repository with 1,000 tags — each beside
the bare registry API calls (manifest PUT, tags/list) measured in the same run.
"""

from __future__ import annotations

import random
import socket
import subprocess
import time
from typing import TYPE_CHECKING, Any

from bench.report import Row, fmt_ratio, fmt_s, verdict
from bench.support import clock, p50, p95, say, st
from gitops_lab.images.oci import MANIFEST_MEDIA_TYPE, build_image, push_image
from gitops_lab.images.registry import RegistryClient
from gitops_lab.images.registry_server import LabRegistry

if TYPE_CHECKING:
    from bench.scenarios import Bench

TARGET_IMAGE_LATENCY = 2.0
POLICY_NS = "gitops-lab"
UPDATER = "gitops-lab image updater"
FAKE = build_image(b"\x7fELF bench image\n" * 4096, version="bench")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _deployment(image: str, policy: str) -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: web
        image: {image} # {{"$imagepolicy": "{POLICY_NS}:{policy}"}}
"""


class ImageBench:
    def __init__(self, bench: Bench) -> None:
        self.b = bench
        self.registry: LabRegistry | None = None
        self.address = ""
        self.bare_push: list[float] = []
        self.bare_list: list[float] = []

    def stop(self) -> None:
        if self.registry is not None:
            self.registry.down()
            self.registry = None

    def _policy(self, name: str, interval: str, app: str | None) -> dict[str, Any]:
        spec: dict[str, Any] = {"image": f"{self.address}/{name}", "interval": interval,
                                "policy": {"semver": {"range": ">=1.0.0 <2.0.0"}}}
        if app:
            spec["update"] = {"applicationRef": {"name": app}}
        return {"apiVersion": "gitopslab.io/v1alpha1", "kind": "ImagePolicy",
                "metadata": {"name": name, "namespace": POLICY_NS}, "spec": spec}

    def _delete_policy(self, name: str) -> None:
        path = f"/apis/gitopslab.io/v1alpha1/namespaces/{POLICY_NS}/imagepolicies/{name}"
        try:
            self.b.admin.request("DELETE", path)
        except Exception as exc:  # a leftover policy must not hide the table
            say(f"warning: could not delete ImagePolicy {name}: {exc}")

    def _bare_baseline(self, client: RegistryClient, repo: str, tag: str) -> None:
        """The registry API calls alone: one manifest PUT (a tag push) and one tags/list."""
        t0 = clock()
        client.push_manifest(repo, tag, FAKE.manifest, MANIFEST_MEDIA_TYPE)
        t1 = clock()
        client.tags(repo)
        self.bare_push.append(t1 - t0)
        self.bare_list.append(clock() - t1)

    def latency(self, notify: bool) -> None:
        agent = self.b.start_agent(poll=3600 if notify else 1.0)
        self.stop()
        self.registry = LabRegistry("bench", root=self.b.tmp / f"registry-{int(notify)}")
        self.address = self.registry.up(
            port=_free_port(), notify=f"{agent.url}/registry-webhook" if notify else "")
        name = "img-notify" if notify else "img-scan"
        repo_img = f"{self.address}/{name}"
        client = RegistryClient(self.address)
        push_image(client, name, FAKE, ["1.0.0"])
        push_image(client, "baseline", FAKE, ["0.0.1"])
        url, sha = self.b.create_repo(name, {"app/deployment.yaml": _deployment(
            f"{repo_img}:1.0.0", name)})
        t0 = clock()
        self.b.create_app(name, url, name)
        self.b.wait_synced(name, sha, t0, timeout=60)
        commits: dict[str, float] = {}

        def on_scan(key: tuple[str, str], outcome: Any) -> None:
            if key == (POLICY_NS, name) and outcome.result is not None and \
                    outcome.result.committed:
                commits[outcome.result.revision] = clock()

        agent.images.on_scan = on_scan
        self.b.admin.apply(self._policy(name, "1h" if notify else "1s", name),
                           field_manager="bench")
        latencies, to_commit = [], []
        revision = sha
        try:
            for i in range(self.b.opts.trials):
                tag = f"1.{i + 1}.0"
                self._bare_baseline(client, "baseline", f"0.{i + 1}.0")
                t0 = clock()
                client.push_manifest(name, tag, FAKE.manifest, MANIFEST_MEDIA_TYPE)  # CI's push

                def synced(n: str, o: dict[str, Any], old: str = revision) -> bool:
                    return n == name and st(o, "sync", "status") == "Synced" and \
                        st(o, "sync", "revision") not in (None, old)

                t1, app = self.b.app_watch.wait(synced, t0, 30, f"{name} Synced after {tag}")
                revision = str(st(app, "sync", "revision"))
                latencies.append(t1 - t0)
                to_commit.append(commits.get(revision, float("nan")) - t0)
                say(f"{name} trial {i + 1}/{self.b.opts.trials}: tag {tag} → Synced "
                    f"{fmt_s(t1 - t0)} (commit pushed after {fmt_s(to_commit[-1])})")
                time.sleep(random.uniform(0.1, 0.3) if notify else random.uniform(0, 1.0))
        finally:
            agent.images.on_scan = None
            client.close()
        # exactly one updater commit per tag push, and nothing else
        mirror = self.b.git.repo_path(name) if self.b.git else None
        authors = subprocess.run(["git", "--git-dir", str(mirror), "log", "--format=%an", "main"],
                                 capture_output=True, text=True, check=True).stdout.split("\n")
        updater_commits = sum(a == UPDATER for a in authors)
        self._delete_policy(name)
        self.b.delete_app(name, name, wait=False)
        n = len(latencies)
        floor = [a + b for a, b in zip(self.bare_push[-n:], self.bare_list[-n:], strict=True)]
        how = ("via the registry notification (POST /registry-webhook; scan interval 1 h)"
               if notify else "by scan (interval 1 s, no notification)")
        self.b.report.add(Row(
            f"image: tag push → updater commit → Synced {how}, n={n}",
            f"p50 {fmt_s(p50(latencies))} · p95 {fmt_s(p95(latencies))}",
            f"p50 {fmt_s(p50(floor))} · p95 {fmt_s(p95(floor))} bare manifest PUT + tags/list",
            f"{fmt_ratio(p50(latencies), p50(floor))} · {fmt_ratio(p95(latencies), p95(floor))}",
            f"p50 ≤ {fmt_s(TARGET_IMAGE_LATENCY)}" if notify else "—",
            verdict(p50(latencies) <= TARGET_IMAGE_LATENCY) if notify else ""))
        self.b.report.note(
            f"image {'notification' if notify else 'scan'}: tag push → commit pushed p50 "
            f"{fmt_s(p50(to_commit))} · p95 {fmt_s(p95(to_commit))}; {updater_commits} updater "
            f"commits for {n} tag pushes")
        if updater_commits != n:
            raise RuntimeError(f"{updater_commits} updater commits for {n} tag pushes")

    def thousand_tags(self) -> None:
        agent = self.b.agent or self.b.start_agent(poll=1.0)
        if self.registry is None:
            self.registry = LabRegistry("bench", root=self.b.tmp / "registry-tags")
            self.address = self.registry.up(port=_free_port(), notify="")
        name = "img-tags"
        client = RegistryClient(self.address)
        tags = [f"1.{i // 100}.{i % 100}" for i in range(995)] + \
            ["latest", "stable", "main-1", "main-2", "2.0.0"]
        t0 = clock()
        push_image(client, name, FAKE, tags)
        say(f"pushed 1,000 tags in {fmt_s(clock() - t0)}")
        policy = self._policy(name, "1h", None)  # report only: the scan alone
        policy["metadata"]["generation"] = 1
        scans, lists = [], []
        for _ in range(self.b.opts.trials):
            t0 = clock()
            listed = client.tags(name)
            lists.append(clock() - t0)
            t0 = clock()
            outcome = agent.images.scan(policy, {}, set())
            scans.append(clock() - t0)
            if st({"status": outcome.status}, "latestTag") != "1.9.94" or \
                    outcome.status.get("observedTags") != 1000 or len(listed.tags) != 1000:
                raise RuntimeError(f"scan of 1,000 tags chose {outcome.status.get('latestTag')} "
                                   f"of {outcome.status.get('observedTags')}")
        client.close()
        self.b.report.add(Row(
            f"image: scan of a repository with 1,000 tags (tags/list + semver choice), "
            f"n={len(scans)}",
            f"p50 {fmt_s(p50(scans))} · p95 {fmt_s(p95(scans))}",
            f"p50 {fmt_s(p50(lists))} · p95 {fmt_s(p95(lists))} bare GET tags/list",
            f"{fmt_ratio(p50(scans), p50(lists))} · {fmt_ratio(p95(scans), p95(lists))}"))

    def run(self) -> None:
        try:
            say("image: tag push → Synced via the registry notification")
            self.latency(notify=True)
            say("image: tag push → Synced by scan")
            self.latency(notify=False)
            say("image: scan of 1,000 tags")
            self.thousand_tags()
        finally:
            self.b.stop_agent()
            self.stop()

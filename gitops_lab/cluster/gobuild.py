"""Small Go programs the lab ships as source (gitops_lab/goapps/): the sample app, the pod
sandbox and a minimal CoreDNS. Built with the machine's Go from the module proxy only, cached
per version under the lab's cache, rebuilt when their source changes.
"""

from __future__ import annotations

import hashlib
import shutil
from importlib.resources import files
from pathlib import Path

from gitops_lab.cluster.binaries import Progress, _go, _run, go_env
from gitops_lab.paths import build_dir, cache_root

__all__ = ["COREDNS_VERSION", "GUESTBOOK_VERSIONS", "go_app", "guestbook_binary"]

COREDNS_VERSION = "v1.13.1"
# The sample app's releases: two good ones and one whose readiness probe fails.
GUESTBOOK_VERSIONS = {"1.0.0": False, "1.1.0": False, "1.2.0-broken": True}

# app -> (module requirements, ldflags that stamp its version)
_REQUIRES = {"coredns": [f"github.com/coredns/coredns {COREDNS_VERSION}"]}


def _source(app: str) -> str:
    return (files("gitops_lab") / "goapps" / app / "main.go").read_text()


def go_app(app: str, *, ldflags: str = "", tag: str = "", progress: Progress | None = None) -> Path:
    """Build gitops_lab/goapps/APP (static, CGO off) and return the binary; cached by source,
    requirements and flags, so a second call is a stat."""
    say: Progress = progress or (lambda _line: None)
    source = _source(app)
    requires = _REQUIRES.get(app, [])
    key = hashlib.sha256("\0".join([source, *requires, ldflags]).encode()).hexdigest()[:12]
    out = cache_root() / "goapps" / app / (tag or "default") / key / app
    if out.is_file():
        return out
    work = build_dir(f"goapp-{app}")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    gomod = f"module gitops-lab/{app}\n\ngo 1.25\n"
    if requires:
        gomod += "\nrequire (\n" + "".join(f"\t{r}\n" for r in requires) + ")\n"
    (work / "go.mod").write_text(gomod)
    (work / "main.go").write_text(source)
    go = _go()
    env = go_env(work)
    if requires:
        _run([go, "mod", "tidy"], work, env, say, f"go mod tidy ({app})")
    out.parent.mkdir(parents=True, exist_ok=True)
    _run([go, "build", "-trimpath", "-ldflags", f"-s -w {ldflags}".strip(), "-o", str(out), "."],
         work, env, say, f"go build {app}{' ' + tag if tag else ''}")
    return out


def guestbook_binary(version: str, *, broken: bool | None = None,
                     progress: Progress | None = None) -> Path:
    """The sample app's binary at VERSION; `broken` (default: as GUESTBOOK_VERSIONS says, else
    False) builds a release that serves its page but fails its readiness probe."""
    if broken is None:
        broken = GUESTBOOK_VERSIONS.get(version, False)
    flags = f"-X main.version={version} -X main.broken={'true' if broken else 'false'}"
    return go_app("guestbook", ldflags=flags, tag=version, progress=progress)

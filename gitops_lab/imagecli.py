"""`gitops-lab registry …`, `gitops-lab ci build …` and `gitops-lab image …`: the lab's registry,
its "CI" (build the sample app, push an image) and the ImagePolicies the agent acts on.
Registered into the parser cli.py builds; thin over images/.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from gitops_lab.appcli import _fail
from gitops_lab.cluster import ClusterError, resolve_kubeconfig
from gitops_lab.kube import Kube, KubeError

__all__ = ["register"]

Obj = dict[str, Any]


def _guard(func: Any) -> Any:
    from gitops_lab.images.registry import RegistryError
    from gitops_lab.images.registry_server import RegistryServerError

    def run(args: argparse.Namespace) -> int:
        try:
            return int(func(args))
        except RegistryServerError as exc:
            return _fail(str(exc), "`gitops-lab registry status`")
        except RegistryError as exc:
            return _fail(str(exc), "is the registry up? `gitops-lab registry up`")
        except ClusterError as exc:
            return _fail(str(exc), "`gitops-lab doctor`")
        except KubeError as exc:
            return _fail(f"API server: {exc.message}",
                         "is the cluster up and the agent installed? `gitops-lab agent install`")
    return run


# ---- registry -------------------------------------------------------------------------------------
AGENT_DEFAULT = "http://127.0.0.1:8080"  # `gitops-lab agent run`'s default --http-address


def default_notify(name: str) -> str:
    """Where notifications go unless --notify says: the lab's agent (`Lab.connect()` records it)
    when it runs, else the address `gitops-lab agent run` listens on by default."""
    from gitops_lab.paths import lab_state_dir

    try:
        url = str(json.loads((lab_state_dir(name) / "agent.json").read_text())["url"])
    except (OSError, ValueError, KeyError, TypeError):
        url = AGENT_DEFAULT
    return f"{url.rstrip('/')}/registry-webhook"


def _registry_up(args: argparse.Namespace) -> int:
    from gitops_lab.images.kind_registry import registry_for

    registry = registry_for(args.name)
    notify = args.notify
    if notify is None and not registry.status().running:
        notify = default_notify(args.name)
    address = registry.up(port=args.port, notify=notify)
    print(f"registry {args.name!r} answers on http://{address} (storage {registry.data_dir}"
          + (f"; notifications to {registry.status().notify}" if registry.status().notify
             else "") + ")", file=sys.stderr)
    print(address)
    return 0


def _registry_down(args: argparse.Namespace) -> int:
    from gitops_lab.images.kind_registry import registry_for

    registry = registry_for(args.name)
    stopped = registry.down()
    if args.purge:
        registry.purge()
    print(f"registry {args.name!r} " + ("stopped" if stopped else "was not running")
          + (" and its storage deleted" if args.purge else ""), file=sys.stderr)
    return 0


def _registry_status(args: argparse.Namespace) -> int:
    from gitops_lab.images.kind_registry import registry_for

    status = registry_for(args.name).status()
    if args.output == "json":
        print(json.dumps(status.to_dict(), indent=2))
    else:
        for key, value in (("name", status.name), ("running", "yes" if status.running else "no"),
                           ("address", status.address or "-"), ("notify", status.notify or "-"),
                           ("storage", status.root), ("log", status.log)):
            print(f"{key + ':':<10}{value}")
    if not status.running:
        print(f"registry {args.name!r} is not running; hint: `gitops-lab registry up`",
              file=sys.stderr)
        return 3
    return 0


# ---- ci ---------------------------------------------------------------------------------------------
def _ci_build(args: argparse.Namespace) -> int:
    from gitops_lab.images.kind_registry import registry_for
    from gitops_lab.images.oci import ci_build

    registry = args.registry or registry_for(args.registry_name).address
    if not registry:
        return _fail(f"registry {args.registry_name!r} is not running",
                     "`gitops-lab registry up` (or pass --registry HOST:PORT)")
    ref = ci_build(registry, args.version, repository=args.repository, tags=args.tag or (),
                   broken=True if args.broken else None,
                   progress=lambda line: print(line, file=sys.stderr))
    print(f"pushed {ref}" + (f" (+ {', '.join(args.tag)})" if args.tag else ""),
          file=sys.stderr)
    print(ref)
    return 0


# ---- image --------------------------------------------------------------------------------------------
def _kube(args: argparse.Namespace) -> Kube:
    return Kube.from_kubeconfig(resolve_kubeconfig(getattr(args, "kubeconfig", None)))


def _ready(pol: Obj) -> Obj:
    for cond in (pol.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return dict(cond)
    return {}


def _policies(args: argparse.Namespace) -> list[Obj]:
    from gitops_lab.images.controller import IMAGEPOLICY_INFO

    return list(_kube(args).request("GET", IMAGEPOLICY_INFO.path(args.namespace))
                .get("items") or [])


def _image_list(args: argparse.Namespace) -> int:
    rows = [["NAME", "IMAGE", "POLICY", "LATEST", "READY", "REASON", "LAST UPDATE"]]
    for pol in _policies(args):
        spec, status = pol.get("spec") or {}, pol.get("status") or {}
        kinds = [k for k in ("semver", "numerical", "alphabetical") if k in (spec.get("policy")
                                                                           or {})]
        policy = kinds[0] if kinds else "?"
        if policy == "semver":
            policy += f" {((spec.get('policy') or {}).get('semver') or {}).get('range', '')}"
        ready = _ready(pol)
        last = status.get("lastUpdate") or {}
        rows.append([pol["metadata"]["name"], str(spec.get("image", "")), policy,
                     str(status.get("latestTag") or "-"), str(ready.get("status") or "Unknown"),
                     str(ready.get("reason") or "-"),
                     f"{str(last.get('revision', ''))[:7]} {last.get('time', '')}".strip() or "-"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0


def _image_get(args: argparse.Namespace) -> int:
    from gitops_lab.images.controller import IMAGEPOLICY_INFO

    try:
        pol = _kube(args).request("GET", IMAGEPOLICY_INFO.path(args.namespace, args.name))
    except KubeError as exc:
        if exc.not_found:
            return _fail(f"ImagePolicy {args.namespace}/{args.name} not found",
                         "`gitops-lab image list`")
        raise
    spec, status = pol.get("spec") or {}, pol.get("status") or {}
    ref = ((spec.get("update") or {}).get("applicationRef") or {}).get("name")
    last = status.get("lastUpdate") or {}
    lines = [
        ("Name", f"{args.namespace}/{args.name}"),
        ("Image", spec.get("image", "")),
        ("Interval", spec.get("interval", "1m")),
        ("Policy", json.dumps(spec.get("policy") or {})),
        ("Filter", json.dumps(spec.get("filterTags")) if spec.get("filterTags") else "-"),
        ("Write-back", f"Application {ref}" if ref else "none (report only)"),
        ("Latest", status.get("latestImage") or "-"),
        ("Tags seen", str(status.get("observedTags", "-"))),
        ("Last scan", status.get("lastScanTime") or "-"),
        ("Last update", f"{last.get('revision', '')} at {last.get('time', '')} "
                        f"{', '.join(last.get('images') or [])}" if last else "-"),
    ]
    for label, value in lines:
        print(f"{label + ':':<13}{value}")
    for cond in status.get("conditions") or []:
        print(f"{'CONDITION':<13}{cond.get('type')}={cond.get('status')} "
              f"({cond.get('reason')}): {cond.get('message')}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `registry`, `ci` and `image` command groups."""
    registry = sub.add_parser("registry", help="the lab's OCI registry (Distribution)")
    rsub = registry.add_subparsers(dest="registry_command", required=True)
    for verb, func, helptext in (("up", _registry_up, "start it (idempotent); prints host:port"),
                                 ("down", _registry_down, "stop it (storage is kept)"),
                                 ("status", _registry_status, "is it running, where")):
        p = rsub.add_parser(verb, help=helptext)
        p.add_argument("--name", default="gitops-lab", help="registry name (default gitops-lab)")
        if verb == "up":
            p.add_argument("--port", type=int, default=None,
                           help="port on 127.0.0.1 (default 5001, else a free one)")
            p.add_argument("--notify", default=None,
                           help="URL registry notifications are POSTed to (default: the lab's "
                                "agent, else http://127.0.0.1:8080/registry-webhook; '' for none)")
        if verb == "down":
            p.add_argument("--purge", action="store_true", help="also delete its storage")
        if verb == "status":
            p.add_argument("-o", "--output", choices=["text", "json"], default="text")
        p.set_defaults(func=_guard(func))

    ci = sub.add_parser("ci", help="the lab's CI: build the sample app and push its image")
    csub = ci.add_subparsers(dest="ci_command", required=True)
    p = csub.add_parser("build", help="build guestbook at VERSION and push it to the registry")
    p.add_argument("version", help="e.g. 1.1.0 (the image tag)")
    p.add_argument("--tag", action="append", help="extra tags to push (e.g. latest)")
    p.add_argument("--repository", default="guestbook")
    p.add_argument("--registry", help="HOST:PORT (default: the running lab registry)")
    p.add_argument("--registry-name", default="gitops-lab")
    p.add_argument("--broken", action="store_true", help="a release that fails readiness")
    p.set_defaults(func=_guard(_ci_build))

    image = sub.add_parser("image", help="ImagePolicies: latest tag and last write-back")
    isub = image.add_subparsers(dest="image_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--kubeconfig", help="default: $KUBECONFIG, the lab's cluster, "
                                             "~/.kube/config")
    common.add_argument("--namespace", "-N", default="gitops-lab")
    p = isub.add_parser("list", parents=[common], help="every ImagePolicy")
    p.set_defaults(func=_guard(_image_list))
    p = isub.add_parser("get", parents=[common], help="one ImagePolicy and its conditions")
    p.add_argument("name")
    p.set_defaults(func=_guard(_image_get))

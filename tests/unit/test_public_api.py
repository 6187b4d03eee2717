"""Every name ../shared/API.md calls public Python API imports from where it says."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import gitops_lab


def test_the_public_names_import_from_the_package() -> None:
    from gitops_lab import Agent, AgentOptions, Health, HealthStatus, Lab, assess_health

    health = assess_health({"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": "x"}})
    assert isinstance(health, Health) and health.status == HealthStatus.HEALTHY
    assert health.status == "Healthy"  # a str enum, as API.md says
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"generation": 1},
                  "spec": {"replicas": 2},
                  "status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2,
                             "availableReplicas": 1}}
    assert assess_health(deployment).status == HealthStatus.PROGRESSING
    for name in ("connect", "commit", "revert", "read", "sample_app", "app", "kubectl",
                 "registry", "app_url", "provider_kind", "agent_mode", "repo_url"):
        assert hasattr(Lab, name) or name in ("repo_url", "agent_mode"), name
    assert Agent and AgentOptions
    assert set(gitops_lab.__all__) >= {"Lab", "assess_health", "Health", "HealthStatus", "Agent"}


def test_importing_the_package_stays_light() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "import sys, gitops_lab; "
         "print(sorted(m for m in ('kubernetes', 'ipywidgets', 'git', 'gitops_lab.lab') "
         "if m in sys.modules))"],
        capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


# ---- every public Python name ../shared/API.md names, read from API.md itself -------------
# The contract sits beside the checkout (../shared/API.md), as the package's docstrings say.
API_MD = Path(__file__).resolve().parents[3] / "shared" / "API.md"
_CALL = re.compile(r"`(gitops_lab|Lab|lab)((?:\.\w+)+)(?:\(([^`]*)\))?(?:\s*->\s*(\w+))?`")
_FROM = re.compile(r"`from gitops_lab import ([\w, ]+)`")


@dataclass(frozen=True)
class Mention:
    owner: str  # "gitops_lab" (the package), "Lab" (the class) or "lab" (an instance)
    path: tuple[str, ...]  # the dotted names after the owner
    params: str | None  # the documented parameter list, when called
    returns: str | None  # a public type named after `->`


def api_mentions(text: str) -> tuple[set[str], list[Mention]]:
    """The names API.md says `from gitops_lab import …`, and every `gitops_lab.x(…) -> T`,
    `Lab.x(…)` and `lab.x…` it shows."""
    imports = {n.strip() for m in _FROM.finditer(text) for n in m[1].split(",") if n.strip()}
    mentions = [Mention(m[1], tuple(m[2].strip(".").split(".")), m[3], m[4])
                for m in _CALL.finditer(text)]
    return imports, mentions


def _documented_params(params: str) -> tuple[dict[str, object], bool]:
    """The documented parameter names with their defaults (`inspect.Parameter.empty` for
    none), and whether it shows `*args`."""
    tree = ast.parse(f"def f({params}): pass").body[0]
    assert isinstance(tree, ast.FunctionDef)
    args = tree.args
    plain = args.posonlyargs + args.args
    defaults: list[ast.expr | None] = [None] * (len(plain) - len(args.defaults))
    defaults += args.defaults
    out: dict[str, object] = {}
    for arg, default in [*zip(plain, defaults, strict=True),
                         *zip(args.kwonlyargs, args.kw_defaults, strict=True)]:
        out[arg.arg] = inspect.Parameter.empty if default is None else ast.literal_eval(default)
    return out, args.vararg is not None


def _check_signature(where: str, func: Any, params: str) -> None:
    """What API.md shows can be called so: its positional parameters by position (their
    names are the doc's), its keyword ones by name with the default it shows. A parameter
    shown without a default may have gained one: that only adds."""
    real = inspect.signature(func).parameters
    documented, varargs = _documented_params(params)
    positional = [n for n, d in documented.items() if d is inspect.Parameter.empty]
    takes = [p for n, p in real.items() if n != "self" and p.kind in (
        inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    assert len(takes) >= len(positional) or any(
        p.kind is inspect.Parameter.VAR_POSITIONAL for p in real.values()), (
        f"{where}: takes fewer than {len(positional)} positional arguments")
    for name, default in documented.items():
        if default is inspect.Parameter.empty:
            continue
        assert name in real, f"{where}: no parameter {name!r}"
        assert real[name].default == default, (
            f"{where}: {name}={real[name].default!r}, not {default!r}")
    if varargs:
        assert any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in real.values()), (
            f"{where}: takes no *args")


def _instance_attribute(cls: type, name: str) -> str | None:
    """How `cls.__init__` sets self.NAME: the constructor's name it calls, "" for another
    value, None when it never sets it."""
    source = inspect.getsource(cls.__init__)  # type: ignore[misc]
    match = re.search(rf"self\.{name}\s*=(?:\s*self\.\w+\s*=)?\s*(\w+)?(\()?", source)
    if match is None:
        return None
    return match[1] if match[1] and match[2] else ""


@pytest.mark.skipif(not API_MD.is_file(), reason=f"no contract at {API_MD} in this checkout")
def test_every_public_python_name_in_api_md_exists() -> None:
    text = API_MD.read_text()
    imports, mentions = api_mentions(text)
    public = imports | {m.path[0] for m in mentions if m.owner == "gitops_lab"}
    public |= {m.returns for m in mentions if m.owner == "gitops_lab" and m.returns}
    # the parser must find what API.md plainly shows, or it proves nothing
    assert {"Lab", "assess_health", "Health"} <= public
    assert {"connect", "commit", "app_url", "registry"} <= {m.path[0] for m in mentions}
    for name in sorted(public):
        assert name in gitops_lab.__all__, f"API.md names gitops_lab.{name}; not in __all__"
        assert getattr(gitops_lab, name) is not None
    package = {m.path[0]: m for m in mentions if m.owner == "gitops_lab"}
    for name, mention in package.items():
        if mention.params is not None:
            _check_signature(f"gitops_lab.{name}", getattr(gitops_lab, name), mention.params)
    lab_module = importlib.import_module("gitops_lab.lab")
    from gitops_lab import Lab

    for mention in (m for m in mentions if m.owner in ("Lab", "lab")):
        first, where = mention.path[0], f"{mention.owner}.{'.'.join(mention.path)}"
        member = getattr(Lab, first, None)
        if member is None:
            made_by = _instance_attribute(Lab, first)
            assert made_by is not None, f"API.md shows {where}; Lab has no {first}"
            if len(mention.path) > 1:  # e.g. lab.apps.apply: a method of what __init__ made
                owner = getattr(lab_module, made_by or "", None)
                assert owner is not None, f"{where}: cannot tell what lab.{first} is"
                member = getattr(owner, mention.path[1], None)
                assert member is not None, f"API.md shows {where}; {made_by} has none"
        if mention.params is not None:
            assert callable(member), f"API.md calls {where}; it is not callable"
            _check_signature(where, member, mention.params)
    health_sentence = text[text.index("`Health` has"):].split("\n- ")[0]
    fields = set(re.findall(r"`\.(\w+)`", health_sentence))
    assert fields == {"status", "message"}
    from gitops_lab import Health, HealthStatus

    assert fields <= {f.name for f in dataclasses.fields(Health)}
    assert issubclass(HealthStatus, str)


def test_the_parser_catches_a_missing_name() -> None:
    imports, mentions = api_mentions(
        "(`from gitops_lab import Lab, Nope`) `gitops_lab.gone(x: int) -> Thing` "
        "`lab.read(path)` `lab.apps.apply(obj)` `Lab.connect(provider=None)`")
    assert imports == {"Lab", "Nope"}
    assert [(m.owner, m.path, m.params, m.returns) for m in mentions] == [
        ("gitops_lab", ("gone",), "x: int", "Thing"),
        ("lab", ("read",), "path", None),
        ("lab", ("apps", "apply"), "obj", None),
        ("Lab", ("connect",), "provider=None", None),
    ]
    assert "Nope" not in gitops_lab.__all__
    with pytest.raises(AssertionError, match="no parameter 'nope'"):
        _check_signature("Lab.connect", gitops_lab.Lab.connect, "nope=None")
    with pytest.raises(AssertionError, match="provider=None, not 'auto'"):
        _check_signature("Lab.connect", gitops_lab.Lab.connect, "provider='auto'")

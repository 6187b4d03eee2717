"""Unit tests for gitops_lab.source.render: files → Manifests, and every RenderError case.
Pure (no Git, no cluster); only the kustomize test runs a kubectl binary, when one exists.
"""

from __future__ import annotations

import importlib
import json
import time
import tracemalloc
from pathlib import Path

import pytest

from gitops_lab.api.types import ResourceKey
from gitops_lab.source import Manifest, RenderError, find_kubectl, parse_manifests, render
from gitops_lab.source.manifests import MAX_ALIAS_EXPANSION


def cm(name: str, namespace: str | None = None, **data: str) -> str:
    ns = f"\n  namespace: {namespace}" if namespace else ""
    body = "".join(f"\n  {k}: {v!r}" for k, v in data.items())
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}{ns}\ndata: {{}}{body}\n"


DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 2
"""


def names(manifests: list[Manifest]) -> list[str]:
    return [
        m.obj["metadata"].get("name") or m.obj["metadata"].get("generateName") for m in manifests
    ]


def render_error(files: dict[str, bytes]) -> RenderError:
    with pytest.raises(RenderError) as info:
        render(files)
    return info.value


# -- what renders -------------------------------------------------------------------------


def test_single_object_and_key() -> None:
    [m] = render({"apps/web/deploy.yaml": DEPLOY.encode()})
    assert m.path == "apps/web/deploy.yaml"
    assert m.index == 0
    assert m.obj["spec"]["replicas"] == 2
    assert m.key == ResourceKey("apps", "Deployment", "shop", "web")
    assert m.key.version == "v1"


def test_multi_document_skips_empty_documents_and_keeps_document_index() -> None:
    text = "---\n" + cm("a") + "---\n---\n# only a comment\n---\n" + cm("b") + "---\n"
    out = render({"x.yaml": text.encode()})
    assert names(out) == ["a", "b"]
    assert [m.index for m in out] == [0, 3]


def test_files_sorted_by_path_recursively_and_other_files_ignored() -> None:
    files = {
        "a-b.yaml": cm("a-b").encode(),
        "b.yaml": cm("b").encode(),
        "a/z.yml": cm("az").encode(),
        "a.yaml": cm("a").encode(),
        "c/d/e.json": json.dumps(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "e"}}
        ).encode(),
        "README.md": b"# not a manifest: {",
        "script.sh": b"echo hi",
        ".github/workflows/ci.yaml": b"on: push\n",
        "a/.hidden.yaml": b"not: [valid",
    }
    out = render(files, root="")
    # Component by component, like a directory walk: "a/..." before "a-b.yaml".
    assert [m.path for m in out] == ["a/z.yml", "a-b.yaml", "a.yaml", "b.yaml", "c/d/e.json"]
    assert names(out) == ["az", "a-b", "a", "b", "e"]


def test_root_limits_plain_rendering_to_that_directory() -> None:
    files = {
        "apps/web/cm.yaml": cm("web").encode(),
        "apps/db/cm.yaml": cm("db").encode(),
        "apps/web-old/cm.yaml": cm("old").encode(),
    }
    assert names(render(files, root="apps/web")) == ["web"]
    assert names(render(files, root="./apps/web/")) == ["web"]
    assert names(render(files, root=".")) == ["db", "web", "old"]
    assert render(files, root="apps/none") == []


def test_list_kind_is_flattened() -> None:
    text = """\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: one}
- apiVersion: v1
  kind: Secret
  metadata: {name: two}
"""
    out = render({"l.yaml": text.encode()})
    assert [(m.obj["kind"], m.obj["metadata"]["name"]) for m in out] == [
        ("ConfigMap", "one"),
        ("Secret", "two"),
    ]
    assert all(m.index == 0 for m in out)


def test_typed_list_items_inherit_kind_and_api_version() -> None:
    text = "apiVersion: v1\nkind: ConfigMapList\nitems:\n- metadata: {name: a}\n"
    text += "- metadata: {name: b}\n"
    out = render({"l.yaml": text.encode()})
    assert [m.key for m in out] == [
        ResourceKey("", "ConfigMap", "", "a"),
        ResourceKey("", "ConfigMap", "", "b"),
    ]
    assert out[0].obj["apiVersion"] == "v1"


def test_json_object_and_json_list() -> None:
    one = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}
    many = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "s"}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "y", "namespace": "s"}},
        ],
    }
    out = render({"a.json": json.dumps(one).encode(), "b.json": json.dumps(many).encode()})
    assert names(out) == ["shop", "x", "y"]


def test_empty_directory_and_empty_files_render_to_nothing() -> None:
    assert render({}) == []
    assert render({"empty.yaml": b"", "comments.yaml": b"# nothing\n---\n", "e.json": b" \n"}) == []


def test_no_namespace_defaulting() -> None:
    [m] = render({"cm.yaml": cm("plain").encode()})
    assert "namespace" not in m.obj["metadata"]
    assert m.key.namespace == ""


def test_generate_name_needs_no_name_and_is_not_a_duplicate() -> None:
    job = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: migrate-\n"
    out = render({"a.yaml": job.encode(), "b.yaml": job.encode()})
    assert names(out) == ["migrate-", "migrate-"]


def test_timestamps_stay_strings() -> None:
    text = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: t}\ndata:\n  day: 2024-01-31\n"
    [m] = render({"cm.yaml": text})
    assert m.obj["data"]["day"] == "2024-01-31"
    json.dumps(m.obj)  # the engine serialises what we return


def test_moderate_anchors_are_fine() -> None:
    text = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: anchors
  labels: &labels {app: web, tier: front}
  annotations: *labels
data: {}
"""
    [m] = render({"a.yaml": text.encode()})
    assert m.obj["metadata"]["annotations"] == {"app": "web", "tier": "front"}


def test_parse_manifests_on_its_own() -> None:
    out = parse_manifests((cm("a") + "---\n" + cm("b")).encode(), "x/y.yaml")
    assert [(m.path, m.index) for m in out] == [("x/y.yaml", 0), ("x/y.yaml", 1)]


# -- what fails, and how the message reads ------------------------------------------------


def test_malformed_yaml_names_file_and_line() -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels: [a, b\n"
    err = render_error({"apps/x.yaml": text.encode()})
    assert err.path == "apps/x.yaml"
    assert err.line is not None and err.line >= 5
    assert "apps/x.yaml" in str(err)
    assert f"line {err.line}" in str(err)
    assert "malformed YAML" in str(err)


def test_bad_indentation_is_malformed() -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n bad: indent\n"
    err = render_error({"bad.yaml": text.encode()})
    assert err.path == "bad.yaml" and err.line == 5


def test_malformed_json_names_file_and_line() -> None:
    err = render_error({"j/x.json": b'{\n  "apiVersion": "v1",\n  "kind": \n}\n'})
    assert err.path == "j/x.json"
    assert err.line == 4
    assert "j/x.json" in str(err) and "line 4" in str(err)


def test_json_array_is_refused() -> None:
    err = render_error({"x.json": b"[]"})
    assert "x.json" in str(err) and "one object or a List" in str(err)


@pytest.mark.parametrize(
    ("document", "what"),
    [
        ("- just\n- a list\n", "a list"),
        ("just a string\n", "a string"),
        ("42\n", "a number"),
    ],
)
def test_document_that_is_not_a_mapping(document: str, what: str) -> None:
    err = render_error({"apps/x.yaml": (cm("ok") + "---\n" + document).encode()})
    assert str(err).startswith("document 2 of apps/x.yaml")
    assert what in str(err) and "not a mapping" in str(err)
    assert err.path == "apps/x.yaml" and err.line == 7


def test_missing_kind_names_document_and_file() -> None:
    text = cm("first") + "---\napiVersion: v1\nmetadata:\n  name: second\n"
    err = render_error({"apps/x.yaml": text.encode()})
    assert "document 2 of apps/x.yaml" in str(err)
    assert "has no kind" in str(err)
    assert err.path == "apps/x.yaml"


def test_missing_api_version() -> None:
    err = render_error({"x.yaml": b"kind: ConfigMap\nmetadata: {name: a}\n"})
    assert "document 1 of x.yaml" in str(err) and "has no apiVersion" in str(err)


def test_missing_name() -> None:
    err = render_error(
        {"x.yaml": b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: {a: b}\n"}
    )
    assert "document 1 of x.yaml" in str(err) and "has no metadata.name" in str(err)
    err = render_error({"y.yaml": b"apiVersion: v1\nkind: ConfigMap\n"})
    assert "y.yaml" in str(err) and "metadata.name" in str(err)


def test_name_that_is_not_a_string() -> None:
    err = render_error({"x.yaml": b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: 123}\n"})
    assert "metadata.name must be a string" in str(err)


def test_list_item_errors_name_the_item() -> None:
    text = (
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {}\n"
    )
    err = render_error({"l.yaml": text.encode()})
    assert "item 1 of document 1 of l.yaml" in str(err)
    assert "metadata.name" in str(err)


def test_duplicate_object_across_files_names_both() -> None:
    files = {"apps/a.yaml": DEPLOY.encode(), "apps/b.yaml": (cm("x") + "---\n" + DEPLOY).encode()}
    err = render_error(files)
    msg = str(err)
    assert "apps/a.yaml" in msg and "apps/b.yaml" in msg
    assert "defined twice" in msg and "Deployment.apps shop/web" in msg
    assert err.path == "apps/b.yaml"


def test_duplicate_object_within_one_file() -> None:
    err = render_error({"x.yaml": (cm("same") + "---\n" + cm("same")).encode()})
    assert "x.yaml (document 1) and x.yaml (document 2)" in str(err)


def test_same_name_different_kind_group_or_namespace_is_not_a_duplicate() -> None:
    files = {
        "a.yaml": cm("x", "one").encode(),
        "b.yaml": cm("x", "two").encode(),
        "c.yaml": b"apiVersion: v1\nkind: Secret\nmetadata: {name: x, namespace: one}\n",
        "d.yaml": b"apiVersion: x.io/v1\nkind: ConfigMap\nmetadata: {name: x, namespace: one}\n",
    }
    assert len(render(files)) == 4


def test_duplicate_keys_in_a_mapping() -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\n"
    err = render_error({"x.yaml": text.encode()})
    assert "duplicate key 'name'" in str(err) and err.line == 5


def test_unknown_yaml_tag_is_refused() -> None:
    err = render_error({"x.yaml": b"!!python/object:os.system\nargs: [ls]\n"})
    assert "x.yaml" in str(err)


# -- hostile YAML ---------------------------------------------------------------------------


def billion_laughs(levels: int = 9, width: int = 9) -> bytes:
    lines = ["apiVersion: v1", "kind: ConfigMap", "metadata: {name: lol}", "data:"]
    lines.append('  a0: &a0 ["' + '", "'.join(["lol"] * width) + '"]')
    for i in range(1, levels + 1):
        refs = ", ".join([f"*a{i - 1}"] * width)
        lines.append(f"  a{i}: &a{i} [{refs}]")
    return ("\n".join(lines) + "\n").encode()


def test_alias_bomb_fails_fast_without_memory() -> None:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(RenderError) as info:
            render({"apps/lol.yaml": billion_laughs()})
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 0.5
    assert peak < 20 * 1024 * 1024
    assert info.value.path == "apps/lol.yaml"
    assert "alias" in str(info.value) and "apps/lol.yaml" in str(info.value)


def test_alias_bomb_inside_a_list_and_via_merge_keys() -> None:
    width = 10
    lines = ["apiVersion: v1", "kind: List", "items:", "- apiVersion: v1", "  kind: ConfigMap"]
    lines += ["  metadata: {name: m}", "  data:", "    m0: &m0 {k0: v, k1: v}"]
    for i in range(1, 12):
        refs = ", ".join([f"*m{i - 1}"] * width)
        lines.append(f"    m{i}: &m{i} {{<<: [{refs}], z{i}: v}}")
    started = time.perf_counter()
    with pytest.raises(RenderError, match="alias"):
        render({"m.yaml": ("\n".join(lines) + "\n").encode()})
    assert time.perf_counter() - started < 0.5


def test_expansion_just_under_the_bound_is_accepted() -> None:
    # 3 levels of 9 → 9 + 81 + 729 expanded scalars: well below the bound.
    assert MAX_ALIAS_EXPANSION > 1000
    [m] = render({"ok.yaml": billion_laughs(levels=3)})
    assert len(m.obj["data"]["a3"]) == 9


def test_recursive_alias_is_refused() -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: r}\ndata: &d\n  self: *d\n"
    err = render_error({"r.yaml": text.encode()})
    assert "recursive alias" in str(err) and "r.yaml" in str(err)


# -- kustomize ----------------------------------------------------------------------------

KUSTOMIZE_FILES = {
    "base/kustomization.yaml": b"resources:\n- cm.yaml\n- deploy.yaml\n",
    "base/cm.yaml": cm("settings").encode(),
    "base/deploy.yaml": DEPLOY.replace("  namespace: shop\n", "").encode(),
    "overlays/prod/kustomization.yaml": (
        b"resources:\n- ../../base\nnamespace: prod\nnamePrefix: prod-\n"
        b"labels:\n- pairs: {env: prod}\n"
    ),
}


def test_kustomization_without_kubectl_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # `gitops_lab.source.render` the attribute is the function; the module is in sys.modules.
    module = importlib.import_module("gitops_lab.source.render")
    monkeypatch.setattr(module, "find_kubectl", lambda kubectl=None: None)
    with pytest.raises(RenderError, match="needs kubectl") as info:
        render(KUSTOMIZE_FILES, root="overlays/prod")
    assert info.value.path == "overlays/prod/kustomization.yaml"


_KUBECTL = find_kubectl()


@pytest.mark.skipif(
    _KUBECTL is None, reason="no kubectl found (lab bin dir or PATH); kustomize untested"
)
def test_kustomize_overlay_renders_through_kubectl() -> None:
    out = render(KUSTOMIZE_FILES, root="overlays/prod")
    keys = sorted(m.key for m in out)
    assert keys == [
        ResourceKey("", "ConfigMap", "prod", "prod-settings"),
        ResourceKey("apps", "Deployment", "prod", "prod-web"),
    ]
    assert all(m.path == "overlays/prod/kustomization.yaml" for m in out)
    assert all(m.obj["metadata"]["labels"]["env"] == "prod" for m in out)


@pytest.mark.skipif(
    _KUBECTL is None, reason="no kubectl found (lab bin dir or PATH); kustomize untested"
)
def test_kustomize_failure_carries_its_stderr() -> None:
    files = {"app/kustomization.yaml": b"resources:\n- cm.yaml\nnoSuchField: 1\n",
             "app/cm.yaml": cm("a").encode()}
    with pytest.raises(RenderError, match="kustomize build failed") as info:
        render(files, root="app")
    assert "noSuchField" in str(info.value)
    assert "gitops-lab-kustomize" not in str(info.value)  # temp dir hidden from the learner


# -- kustomize stays in the repository (issue 13, item 1) -----------------------------------


@pytest.fixture
def host_kustomization(tmp_path: Path) -> str:
    """A directory outside any repository holding a kustomization that reads a host file."""
    host = tmp_path / "host"
    host.mkdir()
    (host / "kustomization.yaml").write_text(
        "configMapGenerator:\n- name: stolen\n  files: [secret.txt]\n")
    (host / "secret.txt").write_text("HOST-SECRET-CONTENT\n")
    (host / "cm.yaml").write_text(cm("host-cm", v="HOST-SECRET-CONTENT"))
    return str(host)


def _climb(host: str) -> str:
    """A relative path from any directory up to `/` and down to `host`."""
    return "../" * 40 + host.lstrip("/")


@pytest.mark.parametrize(
    ("field", "kustomization"),
    [
        ("resources", "resources:\n- {up}\n"),
        ("resources", "resources:\n- {abs}\n"),
        ("bases", "bases:\n- {up}\n"),
        ("components", "components:\n- {up}\n"),
        ("crds", "crds:\n- {up}/cm.yaml\n"),
        ("patches.path", "patches:\n- path: {up}/cm.yaml\n"),
        ("patchesStrategicMerge", "patchesStrategicMerge:\n- {up}/cm.yaml\n"),
        ("patchesJson6902.path",
         "patchesJson6902:\n- target: {{kind: ConfigMap, name: a, version: v1}}\n"
         "  path: {up}/cm.yaml\n"),
        ("configMapGenerator.files",
         "configMapGenerator:\n- name: x\n  files: [key={up}/secret.txt]\n"),
        ("secretGenerator.envs", "secretGenerator:\n- name: x\n  envs: [{up}/secret.txt]\n"),
        ("configMapGenerator.env", "configMapGenerator:\n- name: x\n  env: {up}/secret.txt\n"),
        ("replacements.path", "replacements:\n- path: {up}/cm.yaml\n"),
        ("helmGlobals.chartHome", "helmGlobals:\n  chartHome: {up}\n"),
        ("helmCharts.valuesFile",
         "helmCharts:\n- name: x\n  valuesFile: {up}/cm.yaml\n"),
        ("transformers", "transformers:\n- {up}\n"),
    ],
)
def test_every_kustomize_path_that_leaves_the_repo_is_refused_before_rendering(
    host_kustomization: str, field: str, kustomization: str
) -> None:
    text = kustomization.format(up=_climb(host_kustomization), abs=host_kustomization)
    files = {"apps/a/kustomization.yaml": text.encode(), "apps/a/cm.yaml": cm("a").encode()}
    with pytest.raises(RenderError) as info:
        render(files, root="apps/a")
    message = str(info.value)
    assert message.startswith(f"apps/a/kustomization.yaml: {field} entry '"), message
    assert "leaves the repository" in message or "absolute path" in message, message
    assert "kustomize build failed" not in message  # refused before kustomize ran
    assert info.value.path == "apps/a/kustomization.yaml"
    assert "HOST-SECRET-CONTENT" not in message


def test_a_base_that_climbs_out_is_refused_too(host_kustomization: str) -> None:
    files = {
        "overlays/prod/kustomization.yaml": b"resources:\n- ../../base\n",
        "base/kustomization.yaml": f"resources:\n- {_climb(host_kustomization)}\n".encode(),
    }
    with pytest.raises(RenderError, match=r"^base/kustomization\.yaml: resources entry '\.\./"):
        render(files, root="overlays/prod")


@pytest.mark.parametrize(
    "entry",
    [
        "https://github.com/kubernetes-sigs/kustomize//examples/helloWorld?ref=v5.0.0",
        "github.com/kubernetes-sigs/kustomize/examples/helloWorld?ref=v5.0.0",
        "git::https://example.com/repo.git//base",
        "git@github.com:org/repo.git//base",
        "ssh://git@example.com/org/repo.git",
    ],
)
def test_remote_bases_are_refused_unless_allowed(
    entry: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gitops_lab.source.render import ALLOW_REMOTE_BASES_ENV, kustomize_inputs

    monkeypatch.delenv(ALLOW_REMOTE_BASES_ENV, raising=False)
    # Never let kustomize itself run here: it would try to fetch the URL (tests stay local).
    module = importlib.import_module("gitops_lab.source.render")
    monkeypatch.setattr(module, "find_kubectl", lambda kubectl=None: "/bin/false")
    files = {"app/kustomization.yaml": f"resources:\n- {entry}\n".encode()}
    with pytest.raises(RenderError) as info:
        render(files, root="app")
    assert f"app/kustomization.yaml: resources entry '{entry}' is a remote base" in str(info.value)
    assert ALLOW_REMOTE_BASES_ENV in str(info.value)
    # allowed: nothing to read from the repo, no error (kustomize would fetch it)
    assert kustomize_inputs(files, "app", allow_remote=True) == []
    monkeypatch.setenv(ALLOW_REMOTE_BASES_ENV, "1")
    assert kustomize_inputs(files, "app") == []
    # a URL where a file is expected is never allowed
    files = {"app/kustomization.yaml": f"patches:\n- path: {entry}\n".encode()}
    with pytest.raises(RenderError, match="is a URL"):
        kustomize_inputs(files, "app", allow_remote=True)


def test_in_repo_references_and_inline_patches_are_accepted() -> None:
    from gitops_lab.source.render import kustomize_inputs

    files = {
        "overlays/prod/kustomization.yaml": (
            b"resources:\n- ../../base\n- extra.yaml\ncomponents:\n- ../../components/x\n"
            b"patches:\n- path: patch.yaml\n- patch: |-\n    - op: add\n      path: /a\n"
            b"patchesStrategicMerge:\n- |-\n  apiVersion: v1\n  kind: ConfigMap\n"
            b"configMapGenerator:\n- name: c\n  files: [k=conf/app.ini]\n  envs: [conf/.env]\n"
        ),
        "overlays/prod/extra.yaml": cm("extra").encode(),
        "overlays/prod/patch.yaml": b"{}",
        "overlays/prod/conf/app.ini": b"a=1",
        "overlays/prod/conf/.env": b"A=1",
        "base/kustomization.yaml": b"resources:\n- cm.yaml\n",
        "base/cm.yaml": cm("base").encode(),
        "components/x/kustomization.yaml": b"kind: Component\n",
    }
    assert kustomize_inputs(files, "overlays/prod") == []
    missing = kustomize_inputs({k: v for k, v in files.items() if not k.startswith("base/")},
                               "overlays/prod")
    assert [(r.kfile, r.field, r.entry, r.target) for r in missing] == [
        ("overlays/prod/kustomization.yaml", "resources", "../../base", "base")]


def test_missing_kustomize_reference_names_file_and_entry() -> None:
    files = {"app/kustomization.yaml": b"resources:\n- missing.yaml\n- ../other\n"}
    with pytest.raises(RenderError) as info:
        render(files, root="app")
    assert str(info.value) == (
        "app/kustomization.yaml: resources entry 'missing.yaml': 'app/missing.yaml' is not in "
        "the repository")
    files = {"app/kustomization.yaml": b"resources:\n- ../other\n", "other/cm.yaml": b"{}"}
    with pytest.raises(RenderError, match="'other' is a directory without a kustomization"):
        render(files, root="app")

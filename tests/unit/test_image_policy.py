"""Pure parts of the image updater: semver ranges, the policy's choice of tag (and why none),
setter markers (byte for byte), the OCI image builder. No cluster, no registry, no Git.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from typing import Any

import pytest
import yaml

from gitops_lab.images.oci import MANIFEST_MEDIA_TYPE, build_image
from gitops_lab.images.policy import (
    ImageRef,
    PolicyError,
    parse_duration,
    parse_spec,
    select,
)
from gitops_lab.images.semver import Range, RangeError, parse_version
from gitops_lab.images.setters import apply_markers, find_markers


# ---- semver ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("rng", "yes", "no"), [
    (">=1.0.0 <2.0.0", ["1.0.0", "1.9.9", "v1.2.3"], ["0.9.9", "2.0.0", "1.5.0-rc.1"]),
    ("^1.2", ["1.2.0", "1.99.0"], ["1.1.9", "2.0.0"]),
    ("^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0", "0.2.2"]),
    ("~1.2.3", ["1.2.3", "1.2.9"], ["1.3.0", "1.2.2"]),
    ("1.x", ["1.0.0", "1.8.1"], ["2.0.0", "0.1.0"]),
    ("1.2 - 1.4", ["1.2.0", "1.4.9"], ["1.5.0", "1.1.0"]),
    ("<1.0.0 || >=3.0.0", ["0.5.0", "3.1.0"], ["1.0.0", "2.9.9"]),
    (">=1.5.0-0 <2.0.0", ["1.5.0-rc.1", "1.6.0"], ["2.0.0-rc.1", "1.6.0-rc.1", "1.4.0"]),
    ("*", ["0.0.1", "9.9.9"], ["1.0.0-alpha"]),
    (">1.2", ["1.3.0"], ["1.2.9"]),
    ("<=1.2", ["1.2.9"], ["1.3.0"]),
])
def test_ranges(rng: str, yes: list[str], no: list[str]) -> None:
    parsed = Range.parse(rng)
    for v in yes:
        version = parse_version(v)
        assert version is not None and parsed.matches(version), (rng, v)
    for v in no:
        version = parse_version(v)
        assert version is not None and not parsed.matches(version), (rng, v)


@pytest.mark.parametrize("bad", ["", "   ", ">=1.0.0 <", ">=abc", "1.0.0 ||", "=>>1"])
def test_invalid_ranges_say_which_part(bad: str) -> None:
    with pytest.raises(RangeError, match="semver range"):
        Range.parse(bad)


def test_version_order() -> None:
    order = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1",
             "1.0.0", "1.0.1", "1.10.0", "2.0.0"]
    versions = [parse_version(v) for v in order]
    assert all(v is not None for v in versions)
    assert sorted(versions, key=lambda v: v) == versions  # type: ignore[arg-type,return-value]
    assert parse_version("latest") is None
    assert parse_version("main-abc1234") is None


# ---- the policy --------------------------------------------------------------------------------
def policy(**spec: Any) -> dict[str, Any]:
    spec.setdefault("image", "127.0.0.1:5001/guestbook")
    spec.setdefault("policy", {"semver": {"range": ">=1.0.0 <2.0.0"}})
    return {"apiVersion": "gitopslab.io/v1alpha1", "kind": "ImagePolicy",
            "metadata": {"name": "p", "namespace": "gitops-lab"}, "spec": spec}


def test_semver_picks_highest_in_range() -> None:
    spec = parse_spec(policy())
    sel = select(spec, ["1.0.0", "1.10.0", "1.9.0", "2.0.0", "latest", "1.11.0-rc.1"])
    assert sel.tag == "1.10.0"
    assert sel.observed == 6


def test_filter_and_extract() -> None:
    spec = parse_spec(policy(filterTags={"pattern": r"^main-(?P<ts>\d+)-[0-9a-f]+$",
                                         "extract": "$ts"},
                             policy={"numerical": {"order": "asc"}}))
    sel = select(spec, ["main-100-abc", "main-99-fff", "main-1000-aaa", "feature-5000-x"])
    assert sel.tag == "main-1000-aaa"
    assert sel.candidates == 3
    spec = parse_spec(policy(filterTags={"pattern": r"^v?(?P<version>.*)$",
                                         "extract": "${version}"}))
    assert select(spec, ["v1.2.0", "v1.3.0", "1.1.0"]).tag == "v1.3.0"


def test_alphabetical_ignores_floating_tags() -> None:
    spec = parse_spec(policy(policy={"alphabetical": {}}))
    assert select(spec, ["20240101", "20240301", "latest", "stable"]).tag == "20240301"
    spec = parse_spec(policy(policy={"alphabetical": {"order": "desc"}}))
    assert select(spec, ["b", "a", "c"]).tag == "a"


@pytest.mark.parametrize(("tags", "kind", "type_", "reason", "words"), [
    (["latest"], "semver", "FloatingTag", "OnlyFloatingTags", "only floating tags"),
    (["latest", "stable"], "alphabetical", "FloatingTag", "OnlyFloatingTags", "'latest'"),
    (["foo", "bar"], "semver", "PolicyError", "NoVersionTags", "is a semantic version"),
    (["2.0.0", "3.1.0"], "semver", "PolicyError", "NoTagInRange", "highest 3.1.0"),
    ([], "semver", "PolicyError", "NoTags", "no tags yet"),
    (["x", "y"], "numerical", "PolicyError", "NoNumericTags", "is a number"),
])
def test_no_tag_says_why(tags: list[str], kind: str, type_: str, reason: str,
                         words: str) -> None:
    pol = {"semver": {"range": ">=1.0.0 <2.0.0"}} if kind == "semver" else {kind: {}}
    spec = parse_spec(policy(policy=pol))
    with pytest.raises(PolicyError) as err:
        select(spec, tags)
    assert (err.value.type, err.value.reason) == (type_, reason)
    assert words in str(err.value)
    assert "127.0.0.1:5001/guestbook" in str(err.value) or not tags


@pytest.mark.parametrize(("spec", "reason", "words"), [
    ({"policy": {"semver": {"range": ">=1.0 <"}}}, "InvalidRange", "policy.semver.range"),
    ({"filterTags": {"pattern": "^(v"}}, "InvalidFilter", "not a valid regular expression"),
    ({"filterTags": {"pattern": "^v(?P<v>.*)$", "extract": "$version"}}, "InvalidFilter",
     "names group 'version'"),
    ({"policy": {"semver": {"range": "1.x"}, "numerical": {}}}, "InvalidPolicy",
     "exactly one"),
    ({"image": "guestbook"}, "InvalidImage", "names no registry host"),
    ({"image": "127.0.0.1:5001/guestbook:1.0.0"}, "InvalidImage", "must not carry a tag"),
    ({"interval": "ten seconds"}, "InvalidInterval", "not a duration"),
    ({"update": {"applicationRef": {}}}, "InvalidUpdate", "applicationRef.name"),
])
def test_invalid_spec_names_the_field(spec: dict[str, Any], reason: str, words: str) -> None:
    with pytest.raises(PolicyError) as err:
        parse_spec(policy(**spec))
    assert err.value.reason == reason
    assert words in str(err.value)


def test_durations_and_refs() -> None:
    assert parse_duration("1m30s") == 90
    assert parse_duration("500ms") == 0.5
    ref = ImageRef.parse("127.0.0.1:5001/team/guestbook")
    assert (ref.registry, ref.repository, ref.plain_http) == ("127.0.0.1:5001", "team/guestbook",
                                                              True)
    assert not ImageRef.parse("registry.example.com/x").plain_http
    assert ImageRef.parse("localhost:5000/x").plain_http


# ---- markers -----------------------------------------------------------------------------------
DEPLOYMENT = (
    "# the web tier\r\n"
    "apiVersion: apps/v1\r\n"
    "kind: Deployment\r\n"
    "spec:\r\n"
    "  template:\r\n"
    "    spec:\r\n"
    "      containers:\r\n"
    "      - name: web\r\n"
    "        image: 127.0.0.1:5001/guestbook:1.0.0   # {\"$imagepolicy\": \"gitops-lab:gb\"}\r\n"
    "      - name: side\r\n"
    "        image: \"127.0.0.1:5001/guestbook:1.0.0\" # {\"$imagepolicy\": \"gitops-lab:other\"}\r\n"
    "        # image: old:1 # {\"$imagepolicy\": \"gitops-lab:gb\"}  (commented: ignored)\r\n"
)
KUSTOMIZATION = """resources: [deployment.yaml]
images:
- name: guestbook
  newName: 127.0.0.1:5001/guestbook # {"$imagepolicy": "gitops-lab:gb:name"}
  newTag: '1.0.0' # {"$imagepolicy": "gitops-lab:gb:tag"}
- name: numeric
  newTag: v2 # {"$imagepolicy": "gitops-lab:num:tag"}
"""


def values(ns: str, name: str, repo: str, tag: str) -> dict[tuple[str, str, str], str]:
    return {(ns, name, "image"): f"{repo}:{tag}", (ns, name, "tag"): tag,
            (ns, name, "name"): repo}


def test_markers_change_only_the_value_bytes() -> None:
    data = DEPLOYMENT.encode()
    markers, problems = find_markers(data, "apps/gb/deployment.yaml")
    assert problems == []
    assert [(m.line, m.policy, m.field, m.value) for m in markers] == [
        (9, "gb", "image", "127.0.0.1:5001/guestbook:1.0.0"),
        (11, "other", "image", "127.0.0.1:5001/guestbook:1.0.0")]
    mine = [m for m in markers if m.policy == "gb"]
    new, changed = apply_markers(data, mine, values("gitops-lab", "gb",
                                                    "127.0.0.1:5001/guestbook", "1.1.0"))
    assert [m.line for m, _ in changed] == [9]
    expected = data.replace(b"guestbook:1.0.0   #", b"guestbook:1.1.0   #")
    assert new == expected  # CRLF, comments, spacing, the other policy's line: all as they were
    # applied again: nothing to do
    again, changed = apply_markers(new, find_markers(new, "x")[0], values(
        "gitops-lab", "gb", "127.0.0.1:5001/guestbook", "1.1.0"))
    assert again == new and changed == []


def test_kustomization_images_keep_quoting_and_stay_strings() -> None:
    data = KUSTOMIZATION.encode()
    markers, problems = find_markers(data, "kustomization.yaml")
    assert problems == []
    new, changed = apply_markers(data, markers, {
        **values("gitops-lab", "gb", "127.0.0.1:5001/guestbook", "1.2.0"),
        **values("gitops-lab", "num", "r/n", "1.10")})
    assert len(changed) == 2
    text = new.decode()
    assert "  newTag: '1.2.0' # {" in text
    assert '  newTag: "1.10" # {' in text  # plain 1.10 would read back as the float 1.1
    assert yaml.safe_load(text)["images"][1]["newTag"] == "1.10"
    assert text.count("\n") == KUSTOMIZATION.count("\n")


@pytest.mark.parametrize(("line", "words"), [
    ('image: x:1 # {"$imagepolicy": "gitops-lab"}', "must read <namespace>:<name>"),
    ('image: x:1 # {"$imagepolicy": "a:b:digest"}', "must read"),
    ('image: x:1 # {"$imagepolicy": gitops-lab:gb}', "not valid JSON"),
    ('- x:1 # {"$imagepolicy": "a:b"}', "must end a `key: value` line"),
])
def test_malformed_markers_are_problems(line: str, words: str) -> None:
    markers, problems = find_markers(line.encode() + b"\n", "f.yaml")
    assert markers == []
    assert len(problems) == 1 and words in str(problems[0]) and "f.yaml:1" in str(problems[0])


# ---- the OCI image -------------------------------------------------------------------------------
def test_image_is_reproducible_and_well_formed() -> None:
    binary = b"\x7fELF fake binary" * 100
    a, b = build_image(binary, version="1.1.0"), build_image(binary, version="1.1.0")
    assert a.digest == b.digest and a.layer == b.layer
    manifest = json.loads(a.manifest)
    assert manifest["mediaType"] == MANIFEST_MEDIA_TYPE
    assert manifest["config"]["digest"] == "sha256:" + hashlib.sha256(a.config).hexdigest()
    assert manifest["layers"][0]["size"] == len(a.layer)
    config = json.loads(a.config)
    assert config["config"]["Entrypoint"] == ["/guestbook"]
    assert config["config"]["ExposedPorts"] == {"8080/tcp": {}}
    assert config["config"]["User"] == "65532"
    assert config["config"]["Env"][0].startswith("PATH=")
    raw = gzip.decompress(a.layer)
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(raw).hexdigest()]
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        member = tar.getmember("guestbook")
        assert member.mode == 0o755 and member.uid == 0
        extracted = tar.extractfile(member)
        assert extracted is not None and extracted.read() == binary
    assert build_image(binary, version="1.2.0").digest != a.digest


# ---- the registry client's paging ------------------------------------------------------------------
def test_tags_follow_link_pages() -> None:
    """Distribution 3, Harbor and GHCR page tags/list with `Link: <…>; rel="next"`; every page
    is read. (The lab's Distribution 2.8 answers in one page.) A loopback server plays one."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlparse

    from gitops_lab.images.registry import RegistryClient

    tags = [f"1.0.{i}" for i in range(250)]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            url = urlparse(self.path)
            q = parse_qs(url.query)
            n, last = int(q.get("n", ["100"])[0]), q.get("last", [""])[0]
            start = tags.index(last) + 1 if last else 0
            page = tags[start:start + min(n, 100)]
            body = json.dumps({"name": "r", "tags": page}).encode()
            self.send_response(200)
            if start + len(page) < len(tags):
                self.send_header("Link", f'</v2/r/tags/list?n={n}&last={page[-1]}>; rel="next"')
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        listed = RegistryClient(f"127.0.0.1:{server.server_address[1]}").tags("r")
    finally:
        server.shutdown()
    assert listed.tags == tags
    assert listed.pages == [100, 100, 50]


# ---- the ImageTimeline widget (rendering only) -------------------------------------------------------
def test_image_timeline_orders_and_marks_tags() -> None:
    from gitops_lab.widgets.images import ImageTimeline, image_entries

    spec = parse_spec(policy())
    tags = ["1.10.0", "latest", "1.2.0", "2.0.0", "1.9.0", "main-abc"]
    entries = image_entries(tags, spec, "1.10.0", {"1.9.0"}, {"1.9.0", "1.2.0"})
    assert [e["tag"] for e in entries] == ["1.2.0", "1.9.0", "1.10.0", "2.0.0", "latest",
                                           "main-abc"]
    by_tag = {e["tag"]: e for e in entries}
    assert by_tag["1.10.0"]["latest"] and not by_tag["1.10.0"]["git"]
    assert by_tag["1.9.0"]["git"] and by_tag["1.9.0"]["running"]
    assert by_tag["2.0.0"]["in_range"] is False and by_tag["latest"]["floating"]
    many = image_entries([f"1.0.{i}" for i in range(40)], spec, "1.0.39", {"1.0.3"}, set(),
                         keep=5)
    assert [e["tag"] for e in many] == ["1.0.3", "1.0.35", "1.0.36", "1.0.37", "1.0.38",
                                        "1.0.39"]

    widget = ImageTimeline(None, "p", load=False)  # type: ignore[arg-type]
    pol = policy()
    pol["status"] = {"latestTag": "1.10.0", "conditions": [
        {"type": "Ready", "status": "False"},
        {"type": "UpdateError", "status": "True", "message": "push refused <by hook>"}]}
    widget.update(pol, tags, {"1.9.0"}, {"1.9.0"}, [])
    assert widget.chips.value.count('class="gitops-image-tag"') == 6
    assert "UpdateError: push refused &lt;by hook&gt;" in widget.message.value

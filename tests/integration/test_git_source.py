"""Integration tests for gitops_lab.source.git against a real `git daemon` on 127.0.0.1.
Covers fetch/resolve/read_tree as the agent uses them; nothing here leaves the loopback.
"""

from __future__ import annotations

import itertools
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gitops_lab.labgit import GitServer, WorkingCopy
from gitops_lab.source import RenderError, RepoCache, SourceError, find_kubectl, render, render_revision

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  v: '{v}'\n"
_names = itertools.count()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    with GitServer(tmp_path_factory.mktemp("gitd")) as srv:
        yield srv


@pytest.fixture
def cache(tmp_path: Path) -> RepoCache:
    return RepoCache(tmp_path / "cache")


def new_repo(
    server: GitServer, tmp_path: Path, files: dict[str, str | bytes]
) -> tuple[str, WorkingCopy]:
    """A fresh repo on the server with one commit of `files`, and a working copy of it."""
    name = f"repo{next(_names)}"
    server.create_repo(name, files)
    url = server.url(name)
    return url, WorkingCopy(url, tmp_path / f"wc-{name}")


BASE_FILES: dict[str, str | bytes] = {
    "apps/web/cm.yaml": CM.format(name="web", v=1),
    "apps/web/nested/extra.yaml": CM.format(name="extra", v=1),
    "apps/db/cm.yaml": CM.format(name="db", v=1),
    "README.md": "# lab\n",
}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- fetch and resolve ----------------------------------------------------------------------


def test_resolve_branch_tag_sha_and_head(
    server: GitServer, tmp_path: Path, cache: RepoCache
) -> None:
    url, wc = new_repo(server, tmp_path, BASE_FILES)
    first = wc.head
    wc.tag("v1")  # lightweight
    wc.write({"apps/web/cm.yaml": CM.format(name="web", v=2)})
    second = wc.commit("web v2")
    wc.tag("v2", message="release 2")  # annotated: must peel to the commit
    wc.push(tags=True)
    wc.checkout("dev", create=True)
    wc.write({"apps/db/cm.yaml": CM.format(name="db", v=3)})
    dev = wc.commit("db on dev")
    wc.push()

    cache.fetch(url)
    assert cache.resolve(url, "HEAD") == second
    assert cache.resolve(url, "") == second
    assert cache.resolve(url, "main") == second
    assert cache.resolve(url, "dev") == dev
    assert cache.resolve(url, "v1") == first
    assert cache.resolve(url, "v2") == second
    assert cache.resolve(url, "refs/tags/v2") == second
    assert cache.resolve(url, first) == first
    assert cache.resolve(url, first[:7]) == first
    assert cache.resolve(url, first[:4].upper()) == first
    info = cache.commit_info(url, second)
    assert info.sha == second and info.message == "web v2" and "Lab Learner" in info.author
    assert [c.sha for c in cache.log(url, "dev", 3)] == [dev, second, first]


def test_bad_revision_names_revision_and_url(
    server: GitServer, tmp_path: Path, cache: RepoCache
) -> None:
    url, _ = new_repo(server, tmp_path, BASE_FILES)
    cache.fetch(url)
    for bad in ("no-such-branch", "deadbeef", "-x"):
        with pytest.raises(SourceError) as info:
            cache.resolve(url, bad)
        assert f"revision '{bad}' not found in {url}" in str(info.value)
    assert "branches: main" in str(source_error(lambda: cache.resolve(url, "nope")))


def source_error(fn: Callable[[], object]) -> SourceError:
    """The SourceError that `fn()` raises (fails the test if it raises none)."""
    with pytest.raises(SourceError) as info:
        fn()
    return info.value


def test_unreachable_repo_fails_fast_and_names_url(cache: RepoCache) -> None:
    url = f"git://127.0.0.1:{closed_port()}/lab.git"
    started = time.monotonic()
    err = source_error(lambda: cache.fetch(url, timeout=10))
    assert time.monotonic() - started < 5
    assert url in str(err) and "refused" in str(err).lower()
    assert err.url == url
    # resolve on a never-fetched URL fetches first, so it fails the same way
    assert url in str(source_error(lambda: cache.resolve(url, "main")))


def test_missing_repository_on_server(server: GitServer, cache: RepoCache) -> None:
    url = server.url("does-not-exist")
    err = source_error(lambda: cache.fetch(url))
    assert url in str(err) and "no such repository" in str(err)


def test_silent_server_is_bounded_by_timeout(cache: RepoCache) -> None:
    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        url = f"git://127.0.0.1:{listener.getsockname()[1]}/lab.git"
        started = time.monotonic()
        err = source_error(lambda: cache.fetch(url, timeout=1.5))
        assert time.monotonic() - started < 6
    assert url in str(err) and "timed out" in str(err)


def test_unsupported_url_is_refused(cache: RepoCache) -> None:
    for bad in ("ext::sh -c touch% /tmp/pwned", "relative/path", "--upload-pack=x", ""):
        with pytest.raises(SourceError):
            cache.fetch(bad)


def test_new_commit_visible_only_after_fetch(
    server: GitServer, tmp_path: Path, cache: RepoCache
) -> None:
    url, wc = new_repo(server, tmp_path, BASE_FILES)
    cache.fetch(url)
    old = cache.resolve(url, "main")
    wc.write({"apps/web/cm.yaml": CM.format(name="web", v=9)})
    new = wc.commit("web v9")
    wc.push()
    assert cache.resolve(url, "main") == old
    cache.fetch(url)
    assert cache.resolve(url, "main") == new
    assert b"'9'" in cache.read_tree(url, new, "apps/web")["apps/web/cm.yaml"]
    assert b"'1'" in cache.read_tree(url, old, "apps/web")["apps/web/cm.yaml"]  # history stays
    reverted = wc.revert(new)
    wc.push()
    cache.fetch(url)
    assert cache.resolve(url, "HEAD") == reverted
    assert b"'1'" in cache.read_tree(url, reverted, "apps/web")["apps/web/cm.yaml"]


def test_force_push_and_deleted_branch_are_followed(
    server: GitServer, tmp_path: Path, cache: RepoCache
) -> None:
    url, wc = new_repo(server, tmp_path, BASE_FILES)
    base = wc.head
    wc.checkout("feature", create=True)
    wc.write({"f.yaml": CM.format(name="f", v=1)})
    wc.commit("feature")
    wc.push()
    cache.fetch(url)
    assert cache.resolve(url, "feature") != base
    wc.repo.git.reset("--hard", base)
    wc.write({"g.yaml": CM.format(name="g", v=1)})
    rewritten = wc.commit("rewritten feature")
    wc.push(force=True)
    cache.fetch(url)
    assert cache.resolve(url, "feature") == rewritten
    wc.repo.git.push("origin", "--delete", "feature")
    cache.fetch(url)
    assert "not found" in str(source_error(lambda: cache.resolve(url, "feature")))


def test_file_url_and_plain_path(server: GitServer, tmp_path: Path, cache: RepoCache) -> None:
    url, wc = new_repo(server, tmp_path, BASE_FILES)
    path = server.repo_path(url.rsplit("/", 1)[-1])
    for u in (f"file://{path}", str(path)):
        cache.fetch(u)
        assert cache.resolve(u, "main") == wc.head
    assert cache.mirror_path(f"file://{path}") != cache.mirror_path(str(path))


# -- read_tree -----------------------------------------------------------------------------


def test_read_tree_of_a_subpath_and_of_the_root(
    server: GitServer, tmp_path: Path, cache: RepoCache
) -> None:
    url, _ = new_repo(server, tmp_path, BASE_FILES)
    cache.fetch(url)
    sha = cache.resolve(url, "main")
    web = cache.read_tree(url, sha, "apps/web")
    assert sorted(web) == ["apps/web/cm.yaml", "apps/web/nested/extra.yaml"]
    assert web["apps/web/cm.yaml"] == str(BASE_FILES["apps/web/cm.yaml"]).encode()
    assert cache.read_tree(url, sha, "./apps/web/") == web
    root = cache.read_tree(url, sha, "")
    assert cache.read_tree(url, sha, ".") == root
    assert sorted(root) == sorted(BASE_FILES)
    assert [m.obj["metadata"]["name"] for m in render(web, root="apps/web")] == ["web", "extra"]
    assert cache.read_tree(url, sha[:8], "apps/db") == {
        "apps/db/cm.yaml": str(BASE_FILES["apps/db/cm.yaml"]).encode()
    }


def test_missing_path_names_path_and_short_sha(
    server: GitServer, tmp_path: Path, cache: RepoCache
) -> None:
    url, _ = new_repo(server, tmp_path, BASE_FILES)
    cache.fetch(url)
    sha = cache.resolve(url, "main")
    err = source_error(lambda: cache.read_tree(url, sha, "apps/nope"))
    assert "'apps/nope'" in str(err) and sha[:7] in str(err) and url in str(err)
    assert err.path == "apps/nope"
    assert "is a file" in str(source_error(lambda: cache.read_tree(url, sha, "README.md")))
    assert "not found" in str(source_error(lambda: cache.read_tree(url, "0" * 40, "apps")))


@pytest.mark.parametrize("path", ["..", "../other", "apps/../../etc", "/etc", "/"])
def test_path_leaving_the_repo_is_refused(
    server: GitServer, tmp_path: Path, cache: RepoCache, path: str
) -> None:
    url, _ = new_repo(server, tmp_path, BASE_FILES)
    cache.fetch(url)
    sha = cache.resolve(url, "main")
    err = source_error(lambda: cache.read_tree(url, sha, path))
    assert repr(path)[1:-1] in str(err)
    # a '..' that stays inside is just a path
    assert sorted(cache.read_tree(url, sha, "apps/db/../web")) == [
        "apps/web/cm.yaml",
        "apps/web/nested/extra.yaml",
    ]


def test_symlinks_inside_the_repo_are_followed(
    server: GitServer, tmp_path: Path, cache: RepoCache
) -> None:
    url, wc = new_repo(server, tmp_path, BASE_FILES)
    wc.symlink("apps/db/shared.yaml", "../web/cm.yaml")  # file link
    wc.symlink("apps/current", "web")  # directory link
    wc.symlink("apps/web/nested/up.yaml", "../../db/cm.yaml")
    sha = wc.commit("links")
    wc.push()
    cache.fetch(url)
    db = cache.read_tree(url, sha, "apps/db")
    assert db["apps/db/shared.yaml"] == str(BASE_FILES["apps/web/cm.yaml"]).encode()
    current = cache.read_tree(url, sha, "apps/current")  # the path itself is a link
    assert sorted(current) == [
        "apps/current/cm.yaml",
        "apps/current/nested/extra.yaml",
        "apps/current/nested/up.yaml",
    ]
    assert current["apps/current/nested/up.yaml"] == str(BASE_FILES["apps/db/cm.yaml"]).encode()
    everything = cache.read_tree(url, sha, "apps")
    assert "apps/current/cm.yaml" in everything and "apps/web/cm.yaml" in everything


@pytest.mark.parametrize("target", ["../../../etc/passwd", "/etc/passwd", "../../.."])
def test_symlink_escaping_the_repo_is_refused(
    server: GitServer, tmp_path: Path, cache: RepoCache, target: str
) -> None:
    url, wc = new_repo(server, tmp_path, BASE_FILES)
    wc.symlink("apps/web/evil.yaml", target)
    sha = wc.commit("evil link")
    wc.push()
    cache.fetch(url)
    with pytest.raises(RenderError) as info:
        cache.read_tree(url, sha, "apps/web")
    assert "apps/web/evil.yaml" in str(info.value) and "escapes the repository" in str(info.value)
    assert info.value.path == "apps/web/evil.yaml"
    assert cache.read_tree(url, sha, "apps/db")  # the rest of the repo still reads


def test_symlink_loop_and_dangling_link_are_refused(
    server: GitServer, tmp_path: Path, cache: RepoCache
) -> None:
    url, wc = new_repo(server, tmp_path, BASE_FILES)
    wc.symlink("apps/web/nested/loop", "..")
    wc.symlink("apps/db/a.yaml", "b.yaml")
    wc.symlink("apps/db/b.yaml", "a.yaml")
    wc.symlink("apps/dangling/x.yaml", "nothing.yaml")
    sha = wc.commit("bad links")
    wc.push()
    cache.fetch(url)
    with pytest.raises(RenderError, match="a loop"):
        cache.read_tree(url, sha, "apps/web")
    with pytest.raises(RenderError, match="too many levels of symbolic links"):
        cache.read_tree(url, sha, "apps/db")
    with pytest.raises(RenderError, match=r"apps/dangling/x\.yaml.*points to nothing"):
        cache.read_tree(url, sha, "apps/dangling")


# -- read + render ------------------------------------------------------------------------


def test_render_revision_of_a_plain_directory(
    server: GitServer, tmp_path: Path, cache: RepoCache
) -> None:
    url, wc = new_repo(server, tmp_path, BASE_FILES)
    cache.fetch(url)
    out = render_revision(cache, url, wc.head, "apps/web/")
    assert [(m.path, m.obj["metadata"]["name"]) for m in out] == [
        ("apps/web/cm.yaml", "web"),
        ("apps/web/nested/extra.yaml", "extra"),
    ]


@pytest.mark.skipif(find_kubectl() is None, reason="no kubectl found (lab bin dir or PATH)")
def test_render_revision_lets_an_overlay_reach_its_base(
    server: GitServer, tmp_path: Path, cache: RepoCache
) -> None:
    url, wc = new_repo(
        server,
        tmp_path,
        {
            "base/kustomization.yaml": "resources:\n- cm.yaml\n",
            "base/cm.yaml": CM.format(name="settings", v=1),
            "envs/prod/kustomization.yaml": "resources:\n- ../../base\nnamespace: prod\n",
        },
    )
    cache.fetch(url)
    [m] = render_revision(cache, url, wc.head, "envs/prod")
    assert (m.key.namespace, m.key.name) == ("prod", "settings")
    assert m.path == "envs/prod/kustomization.yaml"


def test_kustomize_cannot_reach_a_host_directory_outside_the_checkout(
    server: GitServer, tmp_path: Path, cache: RepoCache
) -> None:
    """Issue 13 item 1: a `../` climb out of the repo to a host kustomization is refused."""
    host = tmp_path / "host"
    host.mkdir()
    (host / "kustomization.yaml").write_text(
        "configMapGenerator:\n- name: stolen\n  files: [secret.txt]\n")
    (host / "secret.txt").write_text("HOST-ONLY-CONTENT\n")
    climb = "../" * 40 + str(host).lstrip("/")
    url, wc = new_repo(server, tmp_path, {
        "apps/evil/kustomization.yaml": f"resources:\n- cm.yaml\n- {climb}\n",
        "apps/evil/cm.yaml": CM.format(name="evil", v=1),
        "apps/abs/kustomization.yaml": f"resources:\n- {host}\n",
    })
    cache.fetch(url)
    with pytest.raises(RenderError) as info:
        render_revision(cache, url, wc.head, "apps/evil")
    message = str(info.value)
    assert message.startswith(f"apps/evil/kustomization.yaml: resources entry '{climb}' leaves "
                              "the repository"), message
    assert "HOST-ONLY-CONTENT" not in message
    with pytest.raises(RenderError, match=r"^apps/abs/kustomization\.yaml: resources entry "
                                          r"'/.*' is an absolute path"):
        render_revision(cache, url, wc.head, "apps/abs")


@pytest.mark.skipif(find_kubectl() is None, reason="no kubectl found (lab bin dir or PATH)")
def test_a_bad_symlink_breaks_only_the_app_that_loads_it(
    server: GitServer, tmp_path: Path, cache: RepoCache
) -> None:
    """Issue 13 item 10: symlinks are judged per app, on the files its render can load."""
    url, wc = new_repo(server, tmp_path, {
        "base/kustomization.yaml": "resources:\n- cm.yaml\n",
        "base/cm.yaml": CM.format(name="settings", v=1),
        "base/unused/notes.txt": "not loaded by anything\n",
        "envs/prod/kustomization.yaml": "resources:\n- ../../base\n- extra.yaml\n"
                                        "namespace: prod\n",
        "envs/prod/extra.yaml": CM.format(name="extra", v=1),
        "envs/bad/kustomization.yaml": "resources:\n- ../../base\n- evil.yaml\n",
        "other/plain.yaml": CM.format(name="plain", v=1),
    })
    wc.symlink("other/evil.yaml", "/etc/passwd")  # an absolute link elsewhere in the repo
    wc.symlink("junk/dangling.yaml", "nothing.yaml")  # and a dangling one
    wc.symlink("envs/bad/evil.yaml", "../../../etc/passwd")  # this one an app does load
    sha = wc.commit("bad links elsewhere")
    wc.push()
    cache.fetch(url)
    out = render_revision(cache, url, sha, "envs/prod")
    assert sorted((m.key.namespace, m.key.name) for m in out) == [
        ("prod", "extra"), ("prod", "settings")]
    with pytest.raises(RenderError, match=r"symlink 'envs/bad/evil\.yaml'.*escapes"):
        render_revision(cache, url, sha, "envs/bad")
    with pytest.raises(RenderError, match=r"symlink 'other/evil\.yaml'.*escapes"):
        render_revision(cache, url, sha, "other")


def test_a_base_missing_from_the_commit_names_the_entry(
    server: GitServer, tmp_path: Path, cache: RepoCache
) -> None:
    url, wc = new_repo(server, tmp_path, {
        "envs/prod/kustomization.yaml": "resources:\n- ../../base\n",
    })
    cache.fetch(url)
    with pytest.raises(RenderError) as info:
        render_revision(cache, url, wc.head, "envs/prod")
    assert str(info.value).startswith(
        "envs/prod/kustomization.yaml: resources entry '../../base': path 'base' not found at ")


# -- sharing ---------------------------------------------------------------------------------


def test_two_cache_users_on_one_url_concurrently(server: GitServer, tmp_path: Path) -> None:
    url, wc = new_repo(server, tmp_path, BASE_FILES)
    root = tmp_path / "shared-cache"
    shared = RepoCache(root)
    users = [shared, shared, RepoCache(root), RepoCache(root)]  # same object and same dir
    errors: list[BaseException] = []
    seen: list[str] = []
    stop = threading.Event()

    def agent(cache: RepoCache) -> None:
        try:
            while not stop.is_set():
                cache.fetch(url)
                sha = cache.resolve(url, "main")
                files = cache.read_tree(url, sha, "apps/web")
                assert "apps/web/cm.yaml" in files
                seen.append(sha)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=agent, args=(c,)) for c in users]
    for t in threads:
        t.start()
    pushed = []
    for i in range(4):
        wc.write({"apps/web/cm.yaml": CM.format(name="web", v=100 + i)})
        pushed.append(wc.commit(f"web {100 + i}"))
        wc.push()
        time.sleep(0.2)
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(seen) >= len(users)
    for cache in users:
        cache.fetch(url)
        assert cache.resolve(url, "main") == pushed[-1]
    assert len(list(root.glob("*.git"))) == 1  # one mirror per URL


# -- the server itself ---------------------------------------------------------------------


def test_git_server_listens_on_loopback_and_ensure_reuses_it(tmp_path: Path) -> None:
    root = tmp_path / "srv"
    first = GitServer.ensure(root)
    try:
        assert first.running and first.url("x").startswith("git://127.0.0.1:")
        again = GitServer.ensure(root)
        assert (again.pid, again.port) == (first.pid, first.port)
        assert (root / "daemon.json").is_file()
        first.create_repo("team/app", {"a.yaml": CM.format(name="a", v=1)})
        cache = RepoCache(tmp_path / "cache")
        cache.fetch(again.url("team/app"))
        assert cache.read_tree(again.url("team/app"), cache.resolve(again.url("team/app"), ""), "")
        with pytest.raises(Exception, match="already exists"):
            first.create_repo("team/app")
        assert first.create_repo("team/app", exist_ok=True) == first.repo_path("team/app")
    finally:
        first.stop()
    assert not first.running
    assert not (root / "daemon.json").exists()
    replacement = GitServer.ensure(root)  # a stale record is replaced
    try:
        assert replacement.running
    finally:
        replacement.stop()


def test_empty_repository_has_no_head(server: GitServer, tmp_path: Path, cache: RepoCache) -> None:
    name = f"empty{next(_names)}"
    server.create_repo(name)
    url = server.url(name)
    cache.fetch(url)
    assert "HEAD" in str(source_error(lambda: cache.resolve(url, "HEAD")))
    wc = WorkingCopy(url, tmp_path / "wc-empty")
    wc.write({"a.yaml": CM.format(name="a", v=1)})
    sha = wc.commit("first")
    wc.push()
    cache.fetch(url)
    assert cache.resolve(url, "HEAD") == sha == cache.resolve(url, "main")


def test_head_naming_a_missing_branch_says_so(
    server: GitServer, tmp_path: Path, cache: RepoCache
) -> None:
    """Not "is it empty?": the repo has commits, but its HEAD names a branch that is gone."""
    url, _ = new_repo(server, tmp_path, BASE_FILES)
    name = url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    bare = server.repo_path(name)
    subprocess.run(["git", "-C", str(bare), "symbolic-ref", "HEAD", "refs/heads/gone"],
                   check=True)
    cache.fetch(url)
    message = str(source_error(lambda: cache.resolve(url, "HEAD")))
    assert "HEAD names branch 'gone', which does not exist" in message, message
    assert "branches: main" in message
    assert "empty" not in message
    assert cache.resolve(url, "main")  # the branch itself still resolves


def test_head_moved_to_a_missing_branch_after_the_first_fetch_is_not_followed_stale(
    server: GitServer, tmp_path: Path, cache: RepoCache
) -> None:
    url, _ = new_repo(server, tmp_path, BASE_FILES)
    name = url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    bare = server.repo_path(name)
    cache.fetch(url)
    main = cache.resolve(url, "HEAD")
    subprocess.run(["git", "-C", str(bare), "symbolic-ref", "HEAD", "refs/heads/gone"],
                   check=True)
    cache.fetch(url)
    message = str(source_error(lambda: cache.resolve(url, "HEAD")))
    assert "HEAD names no existing branch" in message and "branches: main" in message, message
    assert cache.resolve(url, "main") == main
    subprocess.run(["git", "-C", str(bare), "symbolic-ref", "HEAD", "refs/heads/main"],
                   check=True)
    cache.fetch(url)
    assert cache.resolve(url, "HEAD") == main  # recovers when the remote is fixed

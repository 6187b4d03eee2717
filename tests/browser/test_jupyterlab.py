"""Chapter 03 in a real JupyterLab, driven by headless Chromium: Run All Cells, then the
AppDashboard's sync badge must turn "Synced". Leaves artifacts/jupyterlab-03.png.

JupyterLab runs with a random token on 127.0.0.1 and its own config/settings dirs (no news,
no update check, no autosave — the notebook on disk stays without outputs); the browser may
reach nothing but that server. The kernel's lab is `gitops-lab-browser`, torn down at the end.
Needs /usr/bin/chromium (Debian: `apt-get install chromium`); skipped without it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from gitops_lab.lab import teardown

if TYPE_CHECKING:
    from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = "notebooks/03-deploy.ipynb"
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
LAB_NAME = os.environ.get("GITOPS_LAB_BROWSER_CLUSTER", "gitops-lab-browser")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SYNCED_TIMEOUT_MS = int(os.environ.get("GITOPS_LAB_BROWSER_TIMEOUT_MS", "120000"))

pytestmark = [pytest.mark.browser, pytest.mark.cluster, pytest.mark.timeout(420)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class JupyterLab:
    url: str
    token: str
    proc: subprocess.Popen[bytes]
    log: Path

    def api(self, method: str, path: str) -> object:
        req = urllib.request.Request(f"{self.url}{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if body else None


def _write_config(home: Path) -> dict[str, str]:
    """Config and settings of our own: no news feed, no update check, no PyPI, no autosave."""
    config = home / "config"
    settings = config / "lab" / "user-settings"
    (settings / "@jupyterlab" / "docmanager-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "docmanager-extension" / "plugin.jupyterlab-settings").write_text(
        json.dumps({"autosave": False}))
    (settings / "@jupyterlab" / "notebook-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings").write_text(
        json.dumps({"autoStartDefaultKernel": True}))  # no "Select Kernel" dialog
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
     ).write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    (config / "jupyter_server_config.json").write_text(json.dumps({
        "LabApp": {"news_url": None, "extension_manager": "readonly",
                   "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"},
    }))
    return {"JUPYTER_CONFIG_DIR": str(config), "JUPYTERLAB_SETTINGS_DIR": str(settings),
            "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
            "JUPYTER_RUNTIME_DIR": str(home / "runtime")}


@pytest.fixture
def jupyterlab(tmp_path: Path) -> Iterator[JupyterLab]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found; hint: apt-get install chromium (Debian)")
    pytest.importorskip("playwright.sync_api")
    port, token = _free_port(), secrets.token_hex(24)
    env = dict(os.environ, **_write_config(tmp_path))
    env["GITOPS_LAB_CLUSTER"] = LAB_NAME
    env.setdefault("GITOPS_LAB_PROVIDER", "local")
    env.pop("KUBECONFIG", None)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    jupyter = Path(sys.executable).parent / "jupyter"
    cmd = [str(jupyter) if jupyter.exists() else "jupyter", "lab", "--no-browser",
           "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={ROOT}"]
    if os.geteuid() == 0:  # CI containers run as root
        cmd.append("--allow-root")
    log = tmp_path / "jupyterlab.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    lab = JupyterLab(f"http://127.0.0.1:{port}", token, proc, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                lab.api("GET", "/api/status")
                break
            except (urllib.error.URLError, OSError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start; its log:\n{log.read_text()[-3000:]}")
                time.sleep(0.3)
        yield lab
    finally:
        try:  # shut the kernels down first: they live in their own sessions
            for kernel in lab.api("GET", "/api/kernels") or []:  # type: ignore[union-attr]
                lab.api("DELETE", f"/api/kernels/{kernel['id']}")
        except (urllib.error.URLError, OSError, ValueError):
            pass
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        teardown(LAB_NAME)


def _wait_for_kernel(lab: JupyterLab, page: Page, timeout: float = 60.0) -> None:
    """The notebook's kernel is started, idle and connected to the page. Accepts the
    "Select Kernel" dialog (preselected: the notebook's python3) should JupyterLab show it."""
    deadline = time.monotonic() + timeout
    kernels: object = []
    while time.monotonic() < deadline:
        select = page.locator(".jp-Dialog button.jp-mod-accept")
        if select.count():
            select.first.click()
        kernels = lab.api("GET", "/api/kernels")
        if isinstance(kernels, list) and len(kernels) == 1 and \
                kernels[0].get("execution_state") == "idle" and kernels[0].get("connections"):
            return
        time.sleep(0.3)
    page.screenshot(path=str(ARTIFACTS / "jupyterlab-03-failure.png"))
    raise AssertionError(f"no idle, connected kernel within {timeout:.0f} s: {kernels}; "
                         "see artifacts/jupyterlab-03-failure.png")


def test_run_all_cells_of_chapter_03_shows_synced(jupyterlab: JupyterLab) -> None:
    from playwright.sync_api import Route, sync_playwright
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    notebook = ROOT / NOTEBOOK
    pristine = notebook.read_bytes()
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "jupyterlab-03.png"
    blocked: list[str] = []

    def only_jupyterlab(route: Route) -> None:
        if route.request.url.startswith(jupyterlab.url + "/"):
            route.continue_()
        else:  # never let the browser reach anything else
            blocked.append(route.request.url)
            route.abort()

    start = time.monotonic()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.route("**/*", only_jupyterlab)
            page.goto(f"{jupyterlab.url}/lab/tree/{NOTEBOOK}?token={jupyterlab.token}")
            page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=60_000)
            _wait_for_kernel(jupyterlab, page)
            page.locator(".jp-StatusBar-Widget", has_text="Python 3 (ipykernel) | Idle").first \
                .wait_for(timeout=60_000)

            for _attempt in range(2):  # Run menu → Run All Cells, as a learner would
                page.locator(".lm-MenuBar-item", has_text="Run").first.click()
                page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
                try:  # the first code cell is queued or running: "[*]:" (or done: "[1]:")
                    page.locator(".jp-CodeCell .jp-InputArea-prompt").first.filter(
                        has_text=re.compile(r"\[(\*|\d+)\]")).wait_for(timeout=20_000)
                    break
                except PlaywrightTimeout:
                    continue

            synced = page.locator(".gitops-sync-badge", has_text="Synced")
            try:
                synced.first.wait_for(timeout=SYNCED_TIMEOUT_MS)
            except Exception:
                page.screenshot(path=str(ARTIFACTS / "jupyterlab-03-failure.png"), full_page=True)
                raise AssertionError(
                    "no Synced badge; see artifacts/jupyterlab-03-failure.png. Outputs:\n"
                    + "\n".join(page.locator(".jp-OutputArea-output").all_inner_texts())[-3000:]
                    + f"\nJupyterLab log:\n{jupyterlab.log.read_text()[-2000:]}") from None
            badge_after = time.monotonic() - start
            # then let the chapter finish: every code cell numbered, the kernel idle
            page.wait_for_function(
                """() => {
                    const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')];
                    return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
                }""", timeout=SYNCED_TIMEOUT_MS)
            page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(
                timeout=30_000)
            finished_after = time.monotonic() - start

            errors = [t for t in page.locator(
                ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
            ).all_inner_texts() if "Error" in t or "Traceback" in t]
            dashboard = page.locator(".gitops-app-dashboard").last
            dashboard.scroll_into_view_if_needed()
            page.wait_for_timeout(500)  # let the last redraw settle
            page.screenshot(path=str(shot))
            dashboard.screenshot(path=str(ARTIFACTS / "jupyterlab-03-dashboard.png"))
            badge_text = dashboard.locator(".gitops-sync-badge").inner_text()
            health_text = dashboard.locator(".gitops-health-badge").inner_text()
            pods = dashboard.locator(".gitops-tree-node[data-kind='Pod']").count()
        finally:
            browser.close()

    if notebook.read_bytes() != pristine:  # must never happen (autosave is off): undo, fail
        notebook.write_bytes(pristine)
        pytest.fail(f"JupyterLab saved {NOTEBOOK}; it must stay without outputs")
    print(f"\nbadge Synced after {badge_after:.1f} s, all cells done after {finished_after:.1f} s;"
          f" screenshot {shot}; blocked requests: {blocked or 'none'}")
    assert not errors, "a cell failed in JupyterLab:\n" + "\n".join(errors)[-3000:]
    assert "Synced" in badge_text and "OutOfSync" not in badge_text, badge_text
    assert "Healthy" in health_text, health_text
    assert pods >= 3, f"the dashboard's tree should show the 3 pods, shows {pods}"
    assert shot.stat().st_size > 10_000

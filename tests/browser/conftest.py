"""Studio in a real browser: Playwright (sync API) driving Debian's Chromium.

Each module gets the app as deployed (``gunicorn -c gunicorn.conf.py app:app`` on a
free port, one gevent worker) with its workspace and store in a temporary
directory; flows call the app's own ``/demo`` API, or the ``target`` fixture where a
test must see which requests arrived. Set ``FLOWRUN_SCREENSHOTS=docs/screenshots``
to keep the screenshots of the main states (by default they go to a temporary
directory). The ``page`` fixture fails a test on any console error, page error,
dialog or failed request.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from ..target import free_port
from ..waits import wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parent.parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
XSS = "<img src=x onerror=alert(1)>"

if not os.path.exists(CHROMIUM):
    if IN_CI:
        pytest.fail(
            f"{CHROMIUM} is missing: .ci/run must `apt-get install -y chromium`",
            pytrace=False,
        )
    pytest.skip(
        f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install "
        "chromium); set CI=true to make its absence a failure",
        allow_module_level=True,
    )

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    if IN_CI:
        pytest.fail("the playwright package is missing", pytrace=False)
    pytest.skip("browser tests need the playwright package", allow_module_level=True)

# Every wait is on something the page shows; its deadline only bounds a wait that
# went wrong. A loaded machine (CI: 2 shared cores) makes Studio slower, and must
# never make a test fail: Playwright's 5 s default is too short for that.
expect.set_options(timeout=15_000)


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 20) -> None:
    def healthy():
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/api/health", timeout=1) as resp:
                return resp.status == 200
        except OSError:
            return False

    wait_until(healthy, timeout, message="gunicorn to answer /api/health")


def workspace_flows(server_url: str, target_url: str) -> dict[str, dict]:
    """The workspace: two examples pointed at this server, and test flows."""
    flows = {}
    for name in ("simple-chain", "user-input"):
        text = (ROOT / "examples" / f"{name}.json").read_text("utf-8")
        flows[name] = json.loads(text.replace("http://127.0.0.1:8000", server_url))
    # The sample five-step slow flow, its requests sent to the recording target.
    slow = json.loads((ROOT / "examples" / "slow-steps.json").read_text("utf-8"))
    slow["variables"]["baseUrl"] = f"{target_url}/demo"
    assert slow["name"] == "Slow steps" and len(slow["nodes"]) == 5
    flows["slow-steps"] = slow
    flows["xss"] = {
        "name": "Echo",
        "defaults": {"baseUrl": f"{target_url}/demo"},
        "nodes": [
            {
                "id": "echo",
                "name": f"Echo {XSS}",
                "method": "POST",
                "url": "/echo",
                "headers": {"Content-Type": "text/plain"},
                "body": XSS,
                "bodyFormat": "text",
            }
        ],
    }
    return flows


class Server:
    """A gunicorn serving Studio on ``url``; can be stopped and started again on
    the same port, workspace and store (a server going down mid-run)."""

    def __init__(self, base: Path, target_url: str):
        self.base = base
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        flows_dir = base / "flows"
        flows_dir.mkdir(exist_ok=True)
        for name, doc in workspace_flows(self.url, target_url).items():
            (flows_dir / f"{name}.json").write_text(json.dumps(doc, indent=2), "utf-8")
        self.env = dict(
            os.environ,
            PORT=str(self.port),
            FLOWRUN_BIND="127.0.0.1",
            WEB_CONCURRENCY="1",
            FLOWRUN_FLOWS_DIR=str(flows_dir),
            FLOWRUN_DATA_DIR=str(base / "data"),
            FLOWRUN_HEARTBEAT_S="1",
        )
        self.env.pop("FLOWRUN_TOKEN", None)
        self.proc = None
        self.log = None

    def start(self) -> None:
        self.log = open(self.base / "gunicorn.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:app"],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_healthy(self.url, self.proc)

    def kill(self) -> None:
        """Stop at once, as a crash or a power cut would (no graceful shutdown)."""
        self.proc.kill()
        self.proc.wait(10)
        self.log.close()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory, target):
    """Real gunicorn serving Studio on a free port."""
    srv = Server(tmp_path_factory.mktemp("studio"), target.url)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def studio(server):
    """The base URL of the module's Studio."""
    return server.url


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    """Where screenshots go: FLOWRUN_SCREENSHOTS if set, else a temporary dir."""
    wanted = os.environ.get("FLOWRUN_SCREENSHOTS")
    folder = Path(wanted) if wanted else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# Counts the page's fetches in flight (helpers.settle waits for none), so a test
# never reloads or leaves while a request of the page's own is on its way.
INFLIGHT = """(() => {
  window.__inflight = 0;
  const f = window.fetch;
  window.fetch = (...args) => {
    window.__inflight += 1;
    return f(...args).finally(() => { window.__inflight -= 1; });
  };
})()"""


def watch(pg) -> list[str]:
    """Collect what must not happen on a page: console errors, page errors,
    dialogs (alert, confirm, beforeunload) and failed requests."""
    problems: list[str] = []
    pg.on(
        "console",
        lambda m: (
            problems.append(f"console {m.type}: {m.text}")
            if m.type == "error"
            else None
        ),
    )
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    pg.on(
        "requestfailed",
        lambda r: problems.append(f"request failed: {r.url} {r.failure}"),
    )

    def on_dialog(dialog):
        # A test that leaves unsaved work on purpose says so first (helpers.reload).
        if dialog.type == "beforeunload" and getattr(pg, "leaving", False):
            dialog.accept()
            return
        problems.append(f"dialog {dialog.type}: {dialog.message}")
        dialog.dismiss()

    pg.on("dialog", on_dialog)
    pg.problems = problems
    pg.tolerated = ()  # substrings of console errors a test expects
    return problems


# Whether Studio has started and has a flow in its editor.
READY = """async () =>
  Boolean((await import("/static/js/state.js")).store.get().flow)"""


def ready(page) -> None:
    """Wait until Studio has started on the page and a flow is open in the editor.

    The page's frame (the flows list, Go with the Flow) is drawn by the server; a
    click on it before the scripts ran, or before the first flow arrived, does
    nothing."""
    wait_until(lambda: page.evaluate(READY), 15, message="Studio to open a flow")


def new_page(browser, url, *, width=1280, height=800, scheme="light"):
    context = browser.new_context(
        viewport={"width": width, "height": height}, color_scheme=scheme
    )
    context.add_init_script(INFLIGHT)
    pg = context.new_page()
    watch(pg)
    pg.goto(url + "/")
    # Listed (on a phone the list is in a drawer, out of view).
    expect(pg.locator("#flow-list .flow-item").first).to_be_attached()
    ready(pg)
    return pg


@pytest.fixture
def page(browser, studio):
    """A fresh page on Studio; fails the test on any console error, page error,
    dialog or failed request."""
    pg = new_page(browser, studio)
    yield pg
    # What closing the page itself cuts short is not the page's doing.
    problems = [p for p in pg.problems if not any(t in p for t in pg.tolerated)]
    pg.context.close()
    assert problems == []

import os
import shutil

import pytest

# The incident walk-through drives the real loop: the watched web service and the loopback sshd.
from tests.incident.loop import web_service  # noqa: F401
from tests.targets.conftest import sshd  # noqa: F401

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]


@pytest.fixture
def browser_page(monkeypatch):
    """A page in Debian's headless chromium driven by Playwright (never `playwright install`)."""
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.fail(f"chromium not found at {CHROMIUM}: apt-get install chromium")
    # Playwright's sync API runs an event loop in this thread; scoped to the test, so it never
    # leaks into subprocesses such as `check --deploy`.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        page.set_default_timeout(15000)
        yield page
        browser.close()


@pytest.fixture
def artifacts_dir(request):
    """Where a browser test keeps its screenshots: `var/test-artifacts/<test name>/` (git-ignored,
    kept after the run; `TEST_ARTIFACTS_DIR` moves the root). Emptied at the start of the test."""
    from pathlib import Path

    root = Path(os.environ.get("TEST_ARTIFACTS_DIR") or Path(__file__).resolve().parents[2] / "var" / "test-artifacts")
    path = root / request.node.name
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path

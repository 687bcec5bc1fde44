import os
import shutil

import pytest

# The incident walk-through drives the real loop: the watched web service and the loopback sshd.
from tests.incident.loop import web_service  # noqa: F401
from tests.peers import program
from tests.targets.conftest import sshd  # noqa: F401

ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]


@pytest.fixture
def browser_page(monkeypatch):
    """A page in Debian's headless chromium driven by Playwright (never `playwright install`)."""
    chromium = os.environ.get("CHROMIUM_PATH") or program("chromium")  # skips naming the package when missing
    # Playwright's sync API runs an event loop in this thread; scoped to the test, so it never
    # leaks into subprocesses such as `check --deploy`.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=ARGS)
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


# --- journeys (tests/browser/test_journeys.py): screenshots kept as artifacts ---
import contextlib  # noqa: E402
from pathlib import Path  # noqa: E402

ARTIFACTS = Path(os.environ.get("BROWSER_ARTIFACTS_DIR") or Path(__file__).resolve().parents[2] / "var" / "test-artifacts" / "browser")
_artifact_dirs: list[Path] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def shots(request, browser_page):
    """`shots("step")` saves a full-page screenshot as var/test-artifacts/browser/<test>/NN-step.png
    (BROWSER_ARTIFACTS_DIR overrides the root); a failing test also leaves NN-failure.png."""
    folder = ARTIFACTS / request.node.name.replace("/", "_").replace("[", "-").replace("]", "")
    if folder.exists():
        for old in folder.glob("*.png"):
            old.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    browser_page.set_viewport_size({"width": 1600, "height": 900})  # wide changelists fit on the picture
    counter = {"n": 0}

    def shot(step: str) -> Path:
        counter["n"] += 1
        path = folder / f"{counter['n']:02d}-{step}.png"
        browser_page.screenshot(path=str(path), full_page=True)
        return path

    shot.folder = folder
    yield shot
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        with contextlib.suppress(Exception):  # the page may be gone; the test's own error is what matters
            shot("failure")
    _artifact_dirs.append(folder)
    print(f"\nscreenshots: {folder}")


def pytest_terminal_summary(terminalreporter):
    if _artifact_dirs:
        terminalreporter.write_line(f"browser screenshots: {ARTIFACTS} ({len(_artifact_dirs)} test(s))")

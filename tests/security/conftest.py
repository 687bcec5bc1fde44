from tests.browser.conftest import browser_page  # noqa: F401  (headless chromium for the CSP checks)

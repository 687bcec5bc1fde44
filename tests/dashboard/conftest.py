# The headless-chromium fixture of tests/browser, for the dashboard browser test.
from tests.browser.conftest import browser_page  # noqa: F401

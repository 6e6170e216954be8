"""The browser fixtures of tests/browser (Playwright driving Debian's Chromium), for finishing's
own phone-width checks; kept in this sub-package so the browser's event loop stops when these
tests are done."""

from tests.browser.conftest import (  # noqa: F401
    _allow_orm_beside_playwright,
    browser,
    open_as,
    shots,
)

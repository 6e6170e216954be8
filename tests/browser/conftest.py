"""Browser journeys: Playwright for Python driving Debian's Chromium against a live server.

The server is pytest-django's live server (started by the tests on a free port, serving the
test database). Screenshots of each step are saved under test-artifacts/screenshots/.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1366, "height": 900}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]


def _chromium() -> str | None:
    for candidate in (os.environ.get("ETABLI_CHROMIUM"), "/usr/bin/chromium",
                      shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="package", autouse=True)
def _allow_orm_beside_playwright():
    """Playwright's sync API runs an event loop in the test's thread, which makes Django refuse
    ORM calls there; set before any data fixture (house_setup…) touches the database, and only
    for the browser tests."""
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if before is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


# Package scope: Playwright's event loop stops once the browser tests are done, so the rest of
# the suite runs as plain synchronous code again.
@pytest.fixture(scope="package")
def browser(_allow_orm_beside_playwright, django_db_setup):
    executable = _chromium()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is not installed (.ci/run installs Debian's chromium)")
        pytest.skip("Chromium is not installed: apt-get install chromium")
    from django.db import connections
    from playwright.sync_api import sync_playwright

    # While an event loop runs in this thread, Django's `connections` are kept per context
    # instead of per thread: the tests get new connection objects, which lack the database
    # contents serialized when the test database was made, and `serialized_rollback` would
    # silently restore nothing (every test after the first would find the reference data —
    # operations, alloys, the house, the default route — gone). Carry them over.
    serialized = {alias: getattr(connections[alias], "_test_serialized_contents", None)
                  for alias in connections}
    with sync_playwright() as pw:
        for alias, contents in serialized.items():
            if contents is not None:
                connections[alias]._test_serialized_contents = contents
        instance = pw.chromium.launch(executable_path=executable, headless=True,
                                      args=CHROMIUM_ARGS)
        yield instance
        instance.close()
        connections.close_all()  # those connections, before the test database is dropped


class Shots:
    """Numbered screenshots for one test."""

    def __init__(self, name: str):
        self.dir = ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def __call__(self, page, label: str) -> Path:
        self.count += 1
        path = self.dir / f"{self.count:02d}-{re.sub(r'[^A-Za-z0-9_-]+', '-', label)}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def shots(request) -> Shots:
    return Shots(request.node.name)


@pytest.fixture
def open_as(browser, live_server):
    """`open_as(user, phone=False)` → a logged-in page in its own browser context."""
    contexts = []

    def _open(user, *, password: str = "pw-for-browser-1", phone: bool = False,
              locale: str = "en-GB"):
        user.set_password(password)
        user.save(update_fields=["password"])
        context = browser.new_context(viewport=PHONE if phone else DESKTOP, locale=locale,
                                      base_url=live_server.url)
        context.set_default_timeout(15000)
        contexts.append(context)
        page = context.new_page()
        page.goto("/accounts/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        return page

    yield _open
    for context in contexts:
        context.close()

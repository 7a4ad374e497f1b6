"""Browser tests: a live server, a real Chromium, and a sign-in helper."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.factories import PASSWORD

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def sign_in(page, live_server):
    def sign_in_as(user) -> None:
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("Username").fill(user.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()

    return sign_in_as


@pytest.fixture
def screenshot(page):
    """Save a full-page screenshot for the README (docs/screenshots/<name>.png)."""

    def take(name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)

    return take


@pytest.fixture(autouse=True)
def csp_violations(page):
    """Every browser test fails if Chromium blocked anything under the Content-Security-Policy
    (it reports each refusal as a console error); a test may also inspect the list itself."""
    refused: list[str] = []

    def collect(message) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            refused.append(f"{message.text} ({message.location['url']})")

    page.on("console", collect)
    yield refused
    assert refused == []


@pytest.fixture
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1280, "height": 800}}

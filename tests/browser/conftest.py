"""Browser tests: a live server, a real Chromium, and a sign-in helper."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from asgiref.local import Local
from django.db import connections
from django.tasks import task_backends
from django_tasks_db.management.commands.db_worker import Worker

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


def _reset_task_backends() -> None:
    task_backends.__dict__.pop("settings", None)
    task_backends._connections = Local()


@pytest.fixture
def database_tasks(settings):
    """Tasks go to django-tasks-db's queue, as in production; a worker drains it."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    _reset_task_backends()
    yield
    _reset_task_backends()


@pytest.fixture
def worker():
    """Start a `db_worker` loop in a thread (on the test database) when asked."""
    workers: list[tuple[Worker, threading.Thread]] = []

    def start(max_tasks: int | None = None) -> None:
        db_worker = Worker(
            queue_names=["default"],
            interval=0.05,
            batch=False,
            backend_name="default",
            startup_delay=False,
            max_tasks=max_tasks,
            worker_id="browser-test-worker",
            excluded_queue_names=[],
        )

        def run() -> None:
            try:
                db_worker.run()
            finally:
                connections.close_all()

        thread = threading.Thread(target=run, daemon=True)
        workers.append((db_worker, thread))
        thread.start()

    yield start
    for db_worker, thread in workers:
        db_worker.running = False
        thread.join(timeout=10)

from __future__ import annotations

import pytest
from asgiref.local import Local
from django.tasks import task_backends

from partnerships import signals


@pytest.fixture
def events():
    """Every domain event sent during the test, as (name, kwargs) in order."""
    received: list[tuple[str, dict]] = []
    names = ["invitation_accepted", "partnership_created", "flags_changed", "partnership_ended"]

    def receiver_for(name):
        def receive(sender, **kwargs):
            kwargs.pop("signal", None)
            received.append((name, kwargs))

        return receive

    receivers = {name: receiver_for(name) for name in names}
    for name, receiver in receivers.items():
        getattr(signals, name).connect(receiver, dispatch_uid=f"test-{name}")
    yield received
    for name in names:
        getattr(signals, name).disconnect(dispatch_uid=f"test-{name}")


@pytest.fixture
def mail_server(settings):
    """``mail_server(refusals=n)``: the mail server refuses the next ``n`` messages."""
    from tests.mail import FlakyServer

    def refuse(*, refusals: int) -> None:
        FlakyServer.refusals = refusals

    settings.MAILERS = {"default": {"BACKEND": "tests.mail.FlakyServer"}}
    yield refuse
    FlakyServer.refusals = 0


@pytest.fixture
def database_task_queue(settings):
    """Production's task queue (django-tasks-db) in place of the immediate backend."""

    def reset_backends() -> None:
        task_backends.__dict__.pop("settings", None)
        task_backends._connections = Local()

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    reset_backends()
    yield
    reset_backends()

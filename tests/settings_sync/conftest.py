"""Fixtures shared by the settings catalogue tests: an organization with a signed-in admin or
member, a channel manager with a partner (modules may override them), a partnership in sync
with a change waiting for its run, and the task queue to use."""

from __future__ import annotations

import pytest
from asgiref.local import Local
from django.tasks import task_backends

from partnerships.models import Partnership
from settings_sync import engine
from settings_sync.models import SyncRun
from settings_sync.project.models import Adder
from tests.factories import AdderFactory, make_partnership


@pytest.fixture
def syncing(db, channel_manager, partner, django_capture_on_commit_callbacks) -> Partnership:
    """``channel_manager`` syncs to ``partner`` (non-exclusive) and the link has run: the partner
    holds copies of "Trenching" and "Tile roof" beside its own "Tree removal"."""
    AdderFactory(organization=channel_manager, name="Trenching", amount=1250)
    AdderFactory(organization=channel_manager, name="Tile roof", amount=35)
    AdderFactory(organization=partner, name="Tree removal", amount=900)
    with django_capture_on_commit_callbacks(execute=True):
        partnership = make_partnership(channel_manager, partner, data_sync_enabled=True)
    assert SyncRun.objects.get(partnership=partnership).status == "succeeded"
    return partnership


#: What the run of ``waiting_change`` records when it applies.
CHANGE_COUNTS = {"adders": {"updated": 1}}


def record_change(*partnerships: Partnership) -> list[SyncRun]:
    """Their channel manager changes "Trenching" to 1400 and a `change` run is recorded for
    each partnership, not yet delivered to a worker (the change bypasses the signals, so
    nothing else is queued)."""
    channel_manager = partnerships[0].upstream
    Adder.objects.filter(organization=channel_manager, name="Trenching").update(amount=1400)
    return [engine.schedule_record(p, "change", categories=["adders"]) for p in partnerships]


@pytest.fixture
def waiting_change(syncing) -> SyncRun:
    """``syncing``'s change run, recorded and waiting for a worker (``record_change``)."""
    (sync_run,) = record_change(syncing)
    return sync_run


def _reset_task_backends() -> None:
    task_backends.__dict__.pop("settings", None)
    task_backends._connections = Local()


@pytest.fixture
def task_queue(settings):
    """Switch between the immediate backend and django-tasks-db's queue (production's)."""

    def use(backend: str) -> None:
        settings.TASKS = {"default": {"BACKEND": backend}}
        _reset_task_backends()

    yield use
    _reset_task_backends()

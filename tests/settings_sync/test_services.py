"""Resync and retry, as the pages and the admin ask for them: runs recorded in the caller's
transaction, enqueued once it commits, never applied inside the request (docs/design.md §8.3)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from organizations.prepared import expanded
from settings_sync import engine, services
from settings_sync.models import SyncBatch, SyncRun
from settings_sync.project.models import Adder
from tests.factories import (
    AdderFactory,
    MembershipFactory,
    OrganizationFactory,
    UserFactory,
    make_partnership,
)

pytestmark = pytest.mark.django_db

SYNC = {"data_sync_enabled": True}


@pytest.fixture
def channel_manager():
    organization = OrganizationFactory(name="Helios Energy Partners")
    AdderFactory(organization=organization, name="Trenching")
    return organization


def failed_run(partnership) -> SyncRun:
    def fail(execute, sql, params, many, context):
        # Alone, or after the copies (on PostgreSQL prepared once per connection).
        if 'INSERT INTO "settings_sync_syncchange"' in expanded(sql):
            raise OperationalError("disk full")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(fail):
        run = engine.run(partnership, "link")
    assert run.status == "failed"
    return run


def test_resync_of_many_partners_is_one_insert_and_runs_after_commit(
    channel_manager, django_capture_on_commit_callbacks
):
    partnerships = [make_partnership(channel_manager, **SYNC) for _ in range(60)]
    with django_capture_on_commit_callbacks() as callbacks, CaptureQueriesContext(connection) as q:
        batch = services.resync_all_partners(channel_manager, by=None)
    statements = [query["sql"].split()[0] for query in q.captured_queries]
    statements = [verb for verb in statements if verb not in ("SAVEPOINT", "RELEASE")]
    assert statements == ["INSERT", "SELECT", "INSERT"]  # the batch, the partners, the runs
    assert SyncRun.objects.filter(batch=batch, status="queued").count() == 60
    assert len(callbacks) == 2  # two tasks: batches of 50 and 10 partners
    assert not Adder.objects.filter(synced_partnership__in=partnerships).exists()
    with CaptureQueriesContext(connection) as applied:
        callbacks[0]()
    # The 50 partners of the first task get their copies by one statement for all of them
    # (docs/design.md §10), not one each.
    texts = " ".join(query["sql"] for query in applied.captured_queries)
    assert texts.count(f'INSERT INTO "{Adder._meta.db_table}"') == 1
    for callback in callbacks[1:]:
        callback()
    assert set(SyncRun.objects.filter(batch=batch).values_list("status", flat=True)) == {
        "succeeded"
    }
    assert Adder.objects.filter(synced_partnership__in=partnerships).count() == 60


def test_resync_all_leaves_out_partners_without_sync(channel_manager):
    make_partnership(channel_manager, **SYNC)
    make_partnership(channel_manager)
    batch = services.resync_all_partners(channel_manager, by=None)
    assert isinstance(batch, SyncBatch)
    assert batch.runs.count() == 1


def test_retry_queues_a_new_run_linked_to_the_failed_one(
    channel_manager, django_capture_on_commit_callbacks
):
    failed = failed_run(make_partnership(channel_manager, **SYNC))
    with django_capture_on_commit_callbacks() as callbacks:
        again = services.retry_run(failed, by=None)
    assert (again.status, again.retry_of) == ("queued", failed)
    assert len(callbacks) == 1
    callbacks[0]()
    again.refresh_from_db()
    assert again.status == "succeeded"


@pytest.mark.parametrize("status", ["queued", "running", "succeeded", "skipped"])
def test_only_a_failed_run_can_be_retried(channel_manager, status):
    run = engine.schedule_record(make_partnership(channel_manager, **SYNC), "link")
    SyncRun.objects.filter(pk=run.pk).update(status=status)
    run.refresh_from_db()
    with pytest.raises(ValidationError, match="Only a failed sync can be retried"):
        services.retry_run(run, by=None)
    with pytest.raises(ValueError, match="Only a failed run"):
        engine.retry(run)
    assert SyncRun.objects.count() == 1


def test_a_member_cannot_retry_a_failed_run(client, channel_manager):
    failed = failed_run(make_partnership(channel_manager, **SYNC))
    client.force_login(MembershipFactory(organization=channel_manager, role="member").user)
    response = client.post(reverse("settings_sync:retry", args=[channel_manager.slug, failed.pk]))
    assert response.status_code == 403
    assert not SyncRun.objects.filter(retry_of=failed).exists()


def test_staff_without_change_permission_cannot_retry_in_the_admin(client, channel_manager):
    failed = failed_run(make_partnership(channel_manager, **SYNC))
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_syncrun"))
    client.force_login(viewer)
    changelist = reverse("admin:settings_sync_syncrun_changelist")
    assert client.get(changelist).status_code == 200
    client.post(changelist, {"action": "retry_failed", "_selected_action": [failed.pk]})
    assert not SyncRun.objects.filter(retry_of=failed).exists()


def test_staff_retry_in_the_admin(client, channel_manager, django_capture_on_commit_callbacks):
    failed = failed_run(make_partnership(channel_manager, **SYNC))
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    changelist = reverse("admin:settings_sync_syncrun_changelist")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            changelist, {"action": "retry_failed", "_selected_action": [failed.pk]}, follow=True
        )
    assert "Queued a retry of 1 failed run(s)." in response.content.decode()
    assert SyncRun.objects.get(retry_of=failed).status == "succeeded"

"""Linking a partner: a partnership created on its own, with the immediate task backend, has
its link run applied in the transaction that creates it (docs/design.md §10, "Linking one
partner"). What the partner, its history and its people see is what the run applied at the
commit gives; a failure is recorded and retried like any run's; anywhere else (a caller's
transaction, a queue of workers) the run still waits for the commit and its task.

These tests commit for real (``transactional_db``): the point is what happens at the commit.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import OperationalError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django_tasks_db.models import DBTaskResult

from notifications.models import Notification
from partnerships import services
from settings_sync import engine, profiles
from settings_sync.models import CategoryOverride, ProfileAssignment, ProfileOffer, SyncRun
from settings_sync.project.models import Adder
from settings_sync.usage.models import Persona
from tests.factories import (
    AdderFactory,
    MembershipFactory,
    OrganizationFactory,
    UserFactory,
)

pytestmark = pytest.mark.usefixtures("transactional_db")

STRICT = {"is_exclusive": True, "data_sync_enabled": True, "allow_downstream_edit": False}
NON_EXCLUSIVE = {"is_exclusive": False, "data_sync_enabled": True, "allow_downstream_edit": False}

#: A fresh partner linked in the transaction that creates the partnership: the
#: organizations' lock, the network's, the rules' two reads and both organizations' admins
#: (one text on PostgreSQL; four statements on SQLite, which takes no lock of the network),
#: the partnership; the run's record and a savepoint around `in_sync` (on PostgreSQL sent
#: with it, and released by the commit), then the first copies with their history, the mark of
#: the drift counts they make stale, the cascade's read and the run's outcome (one text on
#: PostgreSQL; two statements a category, then the other three, on SQLite; docs/design.md
#: §10); the commit. Who is told is not read again after it (the admins were read with the
#: locks), nor the run, its partnership and both organizations. The run's own task cost 19
#: on PostgreSQL (its record committed alone, the claim, a second transaction that locks and
#: reads it again).
LINK_QUERIES = {"postgresql": 6, "sqlite": 18}


def channel_manager(*, people: bool = True):
    upstream = OrganizationFactory(name="Helios Energy Partners")
    if people:
        MembershipFactory(organization=upstream)
    AdderFactory(organization=upstream, name="Trenching", amount=1250)
    AdderFactory(organization=upstream, name="Tile roof", amount=Decimal("0.35"))
    Persona.objects.create(organization=upstream, name="Household", annual_kwh=9000)
    return upstream


def partner(name: str):
    """A partner with an admin, an adder of its own and one named like the channel manager's."""
    downstream = OrganizationFactory(name=name)
    MembershipFactory(organization=downstream)
    AdderFactory(organization=downstream, name="Tree removal", amount=900)
    AdderFactory(organization=downstream, name="TILE ROOF ", amount=3)
    return downstream


def seen(partnership) -> dict:
    """What the partner, its history and both sides' people see of the link (ids and times
    left out: they differ between two links by nature)."""
    downstream = partnership.downstream
    run = SyncRun.objects.get(partnership=partnership)
    return {
        "adders": sorted(
            (a.name, a.amount, a.sync_state, a.archived_at is not None, a.managed_by_id)
            for a in Adder.all_objects.filter(organization=downstream)
        ),
        "personas": sorted(
            (p.name, p.annual_kwh, p.sync_state)
            for p in Persona.all_objects.filter(organization=downstream)
        ),
        "run": (
            run.event,
            run.mode,
            run.status,
            run.counts,
            run.note,
            run.overwritten,
            run.trigger,
            run.error,
            run.started_by_id,
            run.started_at is not None and run.finished_at is not None,
        ),
        "history": sorted(
            (c.category, c.action, c.label, c.before, c.after, c.note) for c in run.changes.all()
        ),
        "notifications": sorted(
            (n.organization_id == downstream.pk, n.event, n.message.replace(downstream.name, "…"))
            for n in Notification.objects.filter(
                organization__in=[downstream, partnership.upstream]
            )
        ),
    }


@pytest.mark.parametrize("flags", [STRICT, NON_EXCLUSIVE], ids=["strict", "non_exclusive"])
def test_a_link_applied_in_its_transaction_is_the_link_applied_at_the_commit(flags):
    """The same partner, copies, history, run and notifications as the run a task applies
    once the partnership has committed (that path: a caller's transaction around the
    service), in one transaction and without the task's round."""
    upstream = channel_manager()
    staff = UserFactory()
    alpha, beta = partner("Alpha Solar"), partner("Beta Solar")
    with CaptureQueriesContext(connection) as queries:
        alone = services.create_partnership(upstream, alpha, by=staff, **flags)
    seen_alone = seen(alone)
    Notification.objects.filter(organization=upstream).delete()  # one per link: compare each
    with transaction.atomic():
        at_commit = services.create_partnership(upstream, beta, by=staff, **flags)

    assert seen_alone == seen(at_commit)
    assert seen_alone["run"][2] == "succeeded"
    assert not [q for q in queries.captured_queries if "'running'" in q["sql"]]  # no claim


def test_a_fresh_partner_is_linked_in_one_transaction():
    """A partner with nothing yet, as staff link them: one commit, no claim, no second read
    of the run, and a fixed number of queries."""
    upstream = channel_manager(people=False)
    downstream = OrganizationFactory()  # no people: nobody to notify (their queries apart)
    with CaptureQueriesContext(connection) as queries:
        partnership = services.create_partnership(upstream, downstream, by=None, **NON_EXCLUSIVE)
    run = SyncRun.objects.get(partnership=partnership)
    assert (run.status, run.counts) == (
        "succeeded",
        {"adders": {"created": 2}, "personas": {"created": 1}},
    )
    statements = [q["sql"] for q in queries.captured_queries]
    assert len(statements) == LINK_QUERIES[connection.vendor], statements
    assert len([s for s in statements if s.startswith("COMMIT")]) <= 1
    assert not [s for s in statements if "'running'" in s]


def test_the_admins_told_of_a_link_are_read_with_the_locks_and_not_again():
    """Both organizations' admins are read in the text that locks them: each is told (the
    channel manager that a partner joined, the partner that its settings changed) and no
    membership is read once the partnership has committed."""
    upstream = channel_manager(people=False)
    upstream_admin = MembershipFactory(organization=upstream).user
    downstream = OrganizationFactory(name="Gamma Solar")
    partner_admin = MembershipFactory(organization=downstream).user
    MembershipFactory(organization=downstream, role="member")  # not told
    with CaptureQueriesContext(connection) as queries:
        services.create_partnership(upstream, downstream, by=None, **NON_EXCLUSIVE)
    statements = [q["sql"] for q in queries.captured_queries]
    committed = next(n for n, sql in enumerate(statements) if sql.startswith("COMMIT"))
    assert [s for s in statements[committed:] if "organizations_membership" in s] == []
    assert sorted(Notification.objects.values_list("user_id", "organization_id", "event")) == [
        (upstream_admin.pk, upstream.pk, Notification.Event.PARTNER_JOINED),
        (partner_admin.pk, downstream.pk, Notification.Event.SETTINGS_CHANGED),
    ]


def test_a_link_that_fails_in_its_transaction_is_recorded_and_retried():
    """The run's writes are rolled back, the partnership stays, and the failed run is
    recorded with its error, committed with the partnership, to be retried (rules R4, R9)."""
    upstream = channel_manager()
    downstream = partner("Alpha Solar")
    before = list(Adder.all_objects.filter(organization=downstream).order_by("pk").values())

    def fail_on_history(execute, sql, params, many, context):
        if "settings_sync_syncchange" in sql and sql.lstrip().upper().startswith("INSERT"):
            raise OperationalError("connection lost while writing the history")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(fail_on_history):
        partnership = services.create_partnership(upstream, downstream, by=None, **STRICT)

    partnership.refresh_from_db()
    assert partnership.is_active
    failed = SyncRun.objects.get(partnership=partnership)
    assert (failed.event, failed.status) == ("link", "failed")
    assert "connection lost" in failed.error
    assert failed.finished_at is not None
    assert not failed.changes.exists()
    assert list(Adder.all_objects.filter(organization=downstream).order_by("pk").values()) == before
    assert Notification.objects.filter(organization=upstream, event="run_failed").exists()

    retried = engine.retry(failed)
    assert (retried.status, retried.retry_of) == ("succeeded", failed)
    assert Adder.objects.get(organization=downstream, name="Trenching").amount == 1250


@pytest.mark.postgres
def test_a_link_whose_first_statement_fails_on_the_server_is_still_recorded():
    """The run's record goes to the server in the text of the run's first statement (its
    in-sync read). When that statement fails there, after the record went in (here the
    server no longer holds the prepared statement, as after a reset of the connection behind
    the app's back), the record stays and the failure is recorded against it: the
    partnership is created and the run can be retried (rules R4, R9)."""
    upstream = channel_manager()
    services.create_partnership(upstream, partner("Alpha Solar"), by=None, **STRICT)
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # what the first link prepared is gone
    partnership = services.create_partnership(upstream, partner("Beta Solar"), by=None, **STRICT)

    partnership.refresh_from_db()
    assert partnership.is_active
    failed = SyncRun.objects.get(partnership=partnership)
    assert (failed.event, failed.status) == ("link", "failed")
    assert "does not exist" in failed.error
    assert not failed.changes.exists()
    retried = engine.retry(failed)  # every statement the server lost is prepared again
    assert (retried.status, retried.retry_of) == ("succeeded", failed)


def test_a_link_inside_a_callers_transaction_waits_for_its_commit():
    """The caller may change more before it commits (here the channel manager's amount): the
    run is applied at the commit, from what was committed, not inside the service."""
    upstream = channel_manager()
    downstream = partner("Alpha Solar")
    with transaction.atomic():
        partnership = services.create_partnership(upstream, downstream, by=None, **STRICT)
        assert not SyncRun.objects.filter(partnership=partnership).exists()
        Adder.objects.filter(organization=upstream, name="Trenching").update(amount=1400)
    run = SyncRun.objects.get(partnership=partnership)
    assert run.status == "succeeded"
    assert Adder.objects.get(organization=downstream, name="Trenching").amount == 1400


def test_with_a_queue_of_workers_the_link_waits_for_its_task(task_queue):
    """Production (rule R2): the run is recorded and enqueued, a worker applies it."""
    task_queue("django_tasks_db.DatabaseBackend")
    upstream = channel_manager()
    downstream = partner("Alpha Solar")
    partnership = services.create_partnership(upstream, downstream, by=None, **STRICT)
    run = SyncRun.objects.get(partnership=partnership)
    assert run.status == "queued"
    assert DBTaskResult.objects.filter(args_kwargs__args=[run.pk]).exists()
    assert not Adder.objects.filter(organization=downstream, name="Trenching").exists()


def test_an_accepted_request_naming_a_profile_links_with_the_profiles_overrides():
    """A request that named a profile: the partnership follows it, and its link run, applied
    in the accepting transaction, reads the overrides the profile gave (adders in flexible:
    merged, the partner keeps its own)."""
    upstream = channel_manager()
    downstream = partner("Alpha Solar")
    profile = profiles.save_profile(
        upstream, name="Approved equipment only", flags=STRICT, values={"adders": "flexible"}
    )
    request = services.request_partnership(upstream, downstream, by=None, **STRICT)
    ProfileOffer.objects.create(profile=profile, partnership_request=request)

    with CaptureQueriesContext(connection) as queries:
        partnership = services.accept_request(request, by=None)

    offers = f'"{ProfileOffer._meta.db_table}"'
    assert len([q for q in queries.captured_queries if offers in q["sql"]]) == 1  # once

    assert ProfileAssignment.objects.get(partnership=partnership).profile == profile
    assert CategoryOverride.objects.get(partnership=partnership).value == "flexible"
    run = SyncRun.objects.get(partnership=partnership)
    assert run.status == "succeeded"
    assert Adder.objects.filter(organization=downstream, name="Tree removal").exists()
    assert Adder.objects.get(organization=downstream, name="Trenching").amount == 1250

"""The bulk writer: what it writes for a copy, and what it never does (fire model signals).

docs/design.md §8.4 (one list of bookkeeping columns) and §8.6 (sync writes fire no signals).
"""

from __future__ import annotations

import io

import pytest
from django.core.files.base import ContentFile
from django.db.models import signals
from PIL import Image

from organizations.models import Organization
from organizations.prepared import Planned, fetched_together
from partnerships import services
from settings_sync import engine, registry
from settings_sync.engine import writes
from settings_sync.project.models import Adder, DefaultCosts
from tests.factories import (
    AdderFactory,
    EquipmentFactory,
    LicenseFactory,
    OrganizationFactory,
    PersonaFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

STRICT = {"is_exclusive": True, "data_sync_enabled": True}
FLEXIBLE = {**STRICT, "allow_downstream_edit": True}
SYNCED_MODELS = [category.model for category in registry.all()]


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (0, 120, 250)).save(buffer, format="PNG")
    return buffer.getvalue()


def run_on_commit(django_capture_on_commit_callbacks, function, *args, **kwargs):
    with django_capture_on_commit_callbacks(execute=True):
        return function(*args, **kwargs)


@pytest.fixture
def channel_manager():
    helios = OrganizationFactory(name="Helios Energy Partners")
    AdderFactory(organization=helios, name="Trenching")
    AdderFactory(organization=helios, name="Tile roof")
    EquipmentFactory(organization=helios)
    PersonaFactory(organization=helios)
    DefaultCosts.objects.filter(organization=helios).update(module_cost_per_watt=1)
    LicenseFactory(organization=helios)
    helios.logo.save("helios.png", ContentFile(png()))
    return helios


class SignalRecorder:
    """Every model signal sent for a row of ``organization`` (its items, or itself)."""

    KINDS = (signals.pre_save, signals.post_save, signals.pre_delete, signals.post_delete)

    def __init__(self) -> None:
        self.organization_ids: set[int] = set()
        self.received: list[tuple[str, str]] = []

    def __call__(self, sender, instance, **kwargs) -> None:
        owner = instance.pk if sender is Organization else instance.organization_id
        if owner in self.organization_ids:
            self.received.append((sender.__name__, str(instance)))

    def __enter__(self) -> SignalRecorder:
        for model in SYNCED_MODELS:
            for signal in self.KINDS:
                signal.connect(self, sender=model, weak=False, dispatch_uid=f"rec-{id(signal)}")
        return self

    def __exit__(self, *exc) -> None:
        for model in SYNCED_MODELS:
            for signal in self.KINDS:
                signal.disconnect(sender=model, dispatch_uid=f"rec-{id(signal)}")


def test_sync_writes_into_a_partner_fire_no_model_signal(
    channel_manager, django_capture_on_commit_callbacks
):
    """Every kind of write a run makes: copies by INSERT … SELECT and one by one, updates,
    adoption, archives (match), detach (unlink), singletons, the invite-only logo and
    licenses. Not one signal of the partner's rows: a receiver of the partner's own edits
    (which would start the partner's own fan-out) never hears of a sync."""
    invitation = services.invite_organization(
        channel_manager,
        name="Summit Solar",
        email="owner@summit.example",
        invited_by=None,
        **STRICT,
    )
    partner = OrganizationFactory(name="Sunrise Solar")
    AdderFactory(organization=partner, name="TILE ROOF ")  # adopted in merge, overwritten in match
    AdderFactory(organization=partner, name="Tree removal")  # archived by match
    with SignalRecorder() as recorder:
        # The invitation's own rows (the organization, its singletons) are made by `save()`
        # when it is accepted; the sync starts once that commits.
        with django_capture_on_commit_callbacks() as accepted:
            summit = services.accept_invitation(invitation, UserFactory()).downstream
        recorder.organization_ids = {summit.pk, partner.pk}
        run_on_commit(django_capture_on_commit_callbacks, lambda: [c() for c in accepted])
        engine.run(summit.upstream_partnerships.get(), "resync")
        partnership = run_on_commit(
            django_capture_on_commit_callbacks,
            services.create_partnership,
            channel_manager,
            partner,
            by=None,
            **FLEXIBLE,
        )
        Adder.objects.filter(organization=channel_manager, name="Trenching").update(amount=7)
        engine.run(partnership, "change", categories=["adders"])  # update of a synced copy
        engine.run(partnership, "link", categories=["adders"])
        run_on_commit(
            django_capture_on_commit_callbacks,
            services.update_flags,
            partnership,
            by=None,
            **STRICT,
        )  # match: archives, overwrites, singletons
        run_on_commit(
            django_capture_on_commit_callbacks, services.end_partnership, partnership, by=None
        )  # detach
    assert Adder.all_objects.filter(organization=partner, archived_by_sync=True).exists()
    assert Adder.objects.filter(organization=summit, synced_partnership__isnull=False).exists()
    summit.refresh_from_db()
    assert summit.logo
    assert recorder.received == []


def test_the_recorder_hears_a_save(channel_manager):
    """The guard above can fail: a `save()` of a partner's item is heard."""
    partner = OrganizationFactory()
    with SignalRecorder() as recorder:
        recorder.organization_ids = {partner.pk}
        AdderFactory(organization=partner)
        partner.save()
    assert [model for model, _ in recorder.received] == [
        "Adder",
        "Adder",
        "Organization",
        "Organization",
    ]


@pytest.mark.parametrize(
    "category", [c for c in registry.all() if c.is_collection], ids=lambda c: c.key
)
def test_the_writer_knows_every_column_of_a_copy(category):
    """The one list of bookkeeping columns covers the model: the fields a run writes back
    and the columns the INSERT … SELECT copy fills are every column of the table."""
    model = category.model
    every_field = {field.name for field in model._meta.concrete_fields}
    written = {"id", "organization", *category.synced_fields, *model.bookkeeping_fields()}
    assert written == every_field

    copied = writes.copy_columns(category, True, True, 1, 2, 3, now=None)
    assert set(copied) == {field.column for field in model._meta.concrete_fields} - {"id"}


def first_copy_history(category, upstream, partnerships, *, together: bool) -> list[list[tuple]]:
    """The history rows a first copy of ``category`` writes into each of ``partnerships``
    (one run each; a group when there are several): its category, action, upstream item,
    label, ``after`` as the database holds it (text; for one partner's first copy on
    PostgreSQL, as the database builds it from the copy's baseline, which holds it) and note,
    and whether its item is the partner's copy of that upstream item. ``together``: as the
    engine writes them (on PostgreSQL copies and history by one statement); without it, by
    the two statements the ORM builds."""
    from django.db import connection
    from django.db.models import TextField
    from django.db.models.functions import Cast
    from django.utils import timezone

    from settings_sync import history_values, locks, policy
    from settings_sync.models import SyncChange, SyncRun

    runs = [
        SyncRun.objects.create(partnership=p, event="link", mode=policy.NON_EXCLUSIVE)
        for p in partnerships
    ]
    now = timezone.now()
    if together:  # as the engine writes it: on PostgreSQL one statement, on SQLite two
        statements = writes.copy_in_sql(category, list(zip(partnerships, runs, strict=True)), now)
        # (a group's statement planned with hash joins only: settings around it; one
        # partner's prepared on the server, its settings in the same ``Planned``)
        writing = [
            statement
            for statement in statements
            if isinstance(statement, Planned) or not statement[0].startswith(("SET LOCAL", "RESET"))
        ]
        assert len(writing) == (1 if connection.vendor == "postgresql" else 2)
    else:
        grouped = len(partnerships) > 1
        first, run = partnerships[0], runs[0]
        statements = writes._copy_statements(
            (category.key, *locks.lock_through(first, category.key), grouped, False),
            upstream.pk,
            None if grouped else first.downstream_id,
            None if grouped else first.pk,
            None if grouped else run.pk,
            now,
            [p.pk for p in partnerships] if grouped else None,
            [r.pk for r in runs] if grouped else None,
        )
        assert len(statements) == 2
    fetched_together(statements)
    copies = category.model.all_objects
    rows = []
    for partnership, sync_run in zip(partnerships, runs, strict=True):
        made = dict(
            copies.filter(organization_id=partnership.downstream_id).values_list(
                "pk", "synced_from_id"
            )
        )
        changes = SyncChange.objects.filter(run=sync_run).annotate(text=Cast("after", TextField()))
        # One partner's first copy on PostgreSQL: the values are the copy's baseline, built
        # by the database as the row's would be (``history_values``), until it changes.
        in_copies = dict(
            copies.filter(
                organization_id=partnership.downstream_id, created_change_id__isnull=False
            )
            .annotate(text=Cast(history_values.kept(category), TextField()))
            .values_list("created_change_id", "text")
        )
        if together and len(partnerships) == 1 and connection.vendor == "postgresql":
            assert len(in_copies) == len(made)
            assert not changes.filter(after__isnull=False).exists()
        else:
            assert not in_copies
        for change in changes:
            change.text = change.text or in_copies[change.pk]
        rows.append(
            sorted(
                (
                    c.category,
                    c.action,
                    c.upstream_item_id,
                    c.label,
                    c.text,
                    c.note,
                    made.get(c.item_id) == c.upstream_item_id,
                )
                for c in sorted(changes, key=lambda c: c.upstream_item_id)
            )
        )
        assert len(rows[-1]) == len(made) == copies.filter(organization=upstream).count()
    return rows


@pytest.mark.parametrize(
    "category", [c for c in registry.all() if c.is_collection], ids=lambda c: c.key
)
def test_a_first_copys_history_is_the_same_written_with_its_copies(category):
    """PostgreSQL writes a first copy's history from the rows its ``INSERT`` returns, in the
    copies' own statement (docs/design.md §10): the same rows as the ORM's two statements
    wrote, ``after`` byte for byte (one partner's kept by its copies, §7.5), for one partner
    and for a group, on both databases."""
    from partnerships.models import Partnership
    from tests.factories import ComparableValueFactory, RateEscalationFactory

    upstream = OrganizationFactory(name="Helios Energy Partners")
    factory = {
        "adders": AdderFactory,
        "equipment": EquipmentFactory,
        "personas": PersonaFactory,
        "rate_escalations": RateEscalationFactory,
        "comparable_values": ComparableValueFactory,
    }[category.key]
    for _ in range(3):
        factory(organization=upstream)
    if category.key == "adders":  # a decimal with trailing zeros, text beyond ASCII
        Adder.objects.filter(organization=upstream).update(amount="12.50", name="Tuile « ½ »")
        AdderFactory(organization=upstream, amount="0.01", applied_by_default=True)
    written = {}
    for together in (True, False):
        partnerships = [
            Partnership.objects.create(
                upstream=upstream,
                downstream=OrganizationFactory(),
                status="active",
                data_sync_enabled=True,
            )
            for _ in range(3)
        ]
        written[together] = [
            *first_copy_history(category, upstream, partnerships[:1], together=together),
            *first_copy_history(category, upstream, partnerships[1:], together=together),
        ]
    assert written[True] == written[False]
    assert all(row[-1] for rows in written[True] for row in rows)  # each its partner's copy


@pytest.mark.postgres
def test_the_apps_connections_never_compile_by_jit():
    """Planned on the statistics of a table that just grew, a first copy and the in-sync
    statement looked dear enough for JIT compilation, which cost more than running them
    (about 120 ms for a statement that runs in 1 ms; docs/design.md §10): every connection the
    settings open runs without it, whatever the server's default."""
    from django.db import connections

    from config.settings.base import without_jit

    with connections["default"].cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"
    # Options the address already carries are kept.
    database = {"ENGINE": "django.db.backends.postgresql", "OPTIONS": {"options": "-c x.y=1"}}
    assert without_jit(database)["OPTIONS"]["options"] == "-c x.y=1 -c jit=off"
    sqlite = {"ENGINE": "django.db.backends.sqlite3"}
    assert without_jit(dict(sqlite)) == sqlite


def _group_copy_plan(upstream) -> str:
    """The plan of the statement that copies ``upstream``'s adders into three new partners
    as one group, and writes their history (with the planner settings sent around it)."""
    from django.db import connection
    from django.utils import timezone

    from partnerships.models import Partnership
    from settings_sync.models import SyncRun

    partnerships = [
        Partnership.objects.create(
            upstream=upstream, downstream=OrganizationFactory(), data_sync_enabled=True
        )
        for _ in range(3)
    ]
    runs = [
        SyncRun.objects.create(partnership=p, event="link", mode="strict") for p in partnerships
    ]
    statements = writes.copy_in_sql(
        registry.get("adders"), list(zip(partnerships, runs, strict=True)), timezone.now()
    )
    plans = []
    with connection.cursor() as cursor:
        for sql, params in statements:
            if sql.startswith("WITH"):
                cursor.execute(f"EXPLAIN {sql}", params)
                plans.append("\n".join(line for (line,) in cursor.fetchall()))
            else:
                cursor.execute(sql, params)
    (plan,) = plans
    return plan


def _adders(organization, count: int, name: str = "Adder") -> None:
    Adder.objects.bulk_create(
        Adder(organization=organization, name=f"{name} {n}", amount=n) for n in range(count)
    )


@pytest.mark.postgres
def test_a_groups_first_copies_join_by_hash_whatever_the_statistics():
    """A group's copies are joined to their upstream items' labels and values, and to their
    runs (docs/design.md §10). Planned on statistics that know a few items per organization,
    a new channel manager's 300 items and the 900 copies just made are estimated at a
    handful of rows: joined by a nested loop, one side would be scanned once per row of the
    other. The statement is planned with hash joins only, whatever the estimates."""
    from django.db import connection

    from partnerships.models import Partnership
    from settings_sync.models import SyncRun

    for _ in range(100):  # what the statistics know: many organizations, two adders each
        AdderFactory.create_batch(2, organization=OrganizationFactory())
    with connection.cursor() as cursor:
        for model in (Adder, Partnership, SyncRun, Organization):
            cursor.execute(f"ANALYZE {model._meta.db_table}")
    upstream = OrganizationFactory()
    _adders(upstream, 300)
    plan = _group_copy_plan(upstream)
    # (The copies' own join to their partnerships has no join condition, so a nested loop;
    # their history joins the rows made to the upstream items' values and to the runs.)
    assert "Hash Cond: (made.synced_from_id = src.described_id)" in plan, plan
    assert "Hash Cond: (run.partnership_id = made.synced_partnership_id)" in plan, plan


@pytest.mark.postgres
def test_a_groups_first_copies_read_the_channel_managers_items_by_index_whatever_the_statistics():
    """A resync's batches copy into more partners one after the other, each batch's copies
    newer than the statistics. Planned on statistics that know the channel manager's items
    alone (every row of the table theirs), the copies' read of those items would walk the
    whole table, grown by every batch before it: it reads them through an index on their
    organization, whatever the estimates (docs/design.md §10)."""
    from django.db import connection

    upstream = OrganizationFactory()
    _adders(upstream, 300)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Adder._meta.db_table}")
    _adders(OrganizationFactory(), 10_000, "Copy")  # earlier batches', past the statistics
    plan = _group_copy_plan(upstream)
    assert "Seq Scan on project_adder" not in plan, plan
    assert "organization_id" in plan.split("Index Cond:")[1], plan

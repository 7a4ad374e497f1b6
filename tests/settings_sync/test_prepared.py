"""Queries compiled once per shape answer exactly as the ORM does (docs/design.md §10)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.models import Count, Value
from django.db.models.functions import Concat
from django.test.utils import CaptureQueriesContext

from organizations.prepared import (
    Prepared,
    Template,
    execute_planned,
    fetched_together,
    insert_rows,
    savepoint_sent_ahead,
)
from settings_sync.project.models import Adder
from tests.factories import AdderFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


def adders_per_organization(organization_ids, names_of):
    return (
        Adder.objects.filter(organization_id__in=organization_ids)
        .exclude(organization_id__in=names_of)
        .order_by("organization_id")
        .values("organization_id")
        .annotate(n=Count("pk"))
        .values_list("organization_id", "n")
    )


@pytest.fixture
def organizations():
    found = []
    for count in range(1, 7):
        organization = OrganizationFactory()
        AdderFactory.create_batch(count, organization=organization)
        found.append(organization.pk)
    return found


def test_same_rows_as_the_orm_for_every_shape_and_every_choice_of_ids(organizations):
    prepared = Prepared(adders_per_organization)
    for size in range(len(organizations) + 1):
        for start in range(len(organizations) - size + 1):
            chosen = organizations[start : start + size]
            excluded = organizations[:1]
            expected = list(adders_per_organization(chosen, excluded))
            assert prepared.rows(chosen, excluded) == expected


def test_a_second_call_of_the_same_shape_reuses_the_sql(organizations, django_assert_num_queries):
    prepared = Prepared(adders_per_organization)
    prepared.rows(organizations[:3], [])
    with django_assert_num_queries(1):
        rows = prepared.rows(organizations[3:6], [])
    assert rows == [(pk, count) for pk, count in zip(organizations[3:6], (4, 5, 6), strict=True)]
    assert len(prepared._compiled) == 1


def test_a_query_that_does_not_take_its_ids_as_parameters_is_refused(organizations):
    prepared = Prepared(lambda ids: Adder.objects.filter(organization_id__in=organizations))
    with pytest.raises(ValueError, match="Every id must appear"):
        prepared.rows(organizations)


def adders_with_their_organization(organization_ids):
    return (
        Adder.objects.filter(organization_id__in=organization_ids)
        .select_related("organization")
        .order_by("organization__name", "-pk")
    )


def test_instances_are_the_orms_with_their_related_objects(organizations):
    prepared = Prepared(adders_with_their_organization)
    for chosen in (organizations[:1], organizations[1:4], organizations, []):
        expected = list(adders_with_their_organization(chosen))
        made = prepared.objects(chosen)
        assert made == expected
        for ours, theirs in zip(made, expected, strict=True):
            assert vars(ours).keys() == vars(theirs).keys()
            fields = Adder._meta.concrete_fields
            assert [getattr(ours, f.attname) for f in fields] == [
                getattr(theirs, f.attname) for f in fields
            ]
            assert ours._state.adding is False
            assert ours.organization.created_at == theirs.organization.created_at
            assert ours.organization.name == theirs.organization.name


def test_instances_of_a_second_call_cost_one_query(organizations, django_assert_num_queries):
    prepared = Prepared(adders_with_their_organization)
    prepared.objects(organizations[:2])
    with django_assert_num_queries(1):
        made = prepared.objects(organizations[2:4])
        assert {adder.organization.pk for adder in made} == set(organizations[2:4])


def adders_statement(shape, organization_id, names_of, since):
    """A statement of ``Template``: adders of one organization (or of several), updated
    since a time, those of ``names_of`` left out."""
    queryset = Adder.objects.filter(updated_at__gte=since).order_by("pk")
    if shape == ("one",):
        queryset = queryset.filter(organization_id=organization_id)
    else:
        queryset = queryset.filter(organization_id__in=names_of)
    sql, params = queryset.values_list("pk").query.sql_with_params()
    return [(sql, params)]


def test_a_template_binds_ids_lists_and_times_as_the_orm_would(organizations):
    from django.db import connection
    from django.utils import timezone

    template = Template(adders_statement)
    later = timezone.now() + timedelta(days=1)
    earlier = timezone.now() - timedelta(days=1)
    # The times of an adder's update to the microsecond: a time bound a moment off is seen.
    exactly = Adder.objects.order_by("pk").first().updated_at
    just_after = exactly + timedelta(microseconds=1)
    for organization in organizations:
        for since in (earlier, later, exactly, just_after):
            for shape, one, many in (
                (("one",), organization, None),
                (("many",), None, organizations[: organizations.index(organization) + 1]),
            ):
                ((sql, params),) = template.statements(shape, one, many, since)
                with connection.cursor() as cursor:
                    cursor.execute(sql, params)
                    rows = cursor.fetchall()
                expected = Adder.objects.filter(
                    updated_at__gte=since,
                    **({"organization_id": one} if one else {"organization_id__in": many}),
                ).order_by("pk")
                assert rows == list(expected.values_list("pk")), (shape, since)
                # Planned on the server once (PostgreSQL, no list among the values; else
                # as above), it answers the same.
                (planned,) = template.statements(shape, one, many, since, planned=True)
                assert fetched_together([planned]) == [rows], (shape, since)
    # One shape for one organization; lists of 1 to 6 ids padded to 1, 2, 4 and 8.
    assert len(template._compiled) == 5


def test_a_template_whose_value_is_not_a_parameter_is_refused(organizations):
    template = Template(lambda shape, organization_id: [("SELECT 1", [])])
    with pytest.raises(ValueError, match="Every value must appear"):
        template.statements((), organizations[0])


COUNTED = (
    "SELECT organization_id, COUNT(*) FROM project_adder "
    "WHERE organization_id IN ($1, $2) AND amount >= $3 GROUP BY organization_id "
    "ORDER BY organization_id"
)


def test_a_planned_statement_answers_as_its_text_for_any_ids(organizations):
    """``execute_planned`` gives the rows of its text with each ``$n`` its id, whether the
    server prepares it now or holds it already."""
    for first, second in [(0, 1), (2, 5), (5, 3)]:
        a, b = organizations[first], organizations[second]
        expected = sorted([(a, first + 1), (b, second + 1)])
        assert execute_planned(COUNTED, [a, b, 0]) == expected
    # The third is a parameter too: no adder has an amount that large.
    assert execute_planned(COUNTED, [organizations[0], organizations[1], 10**6]) == []


@pytest.mark.postgres
def test_a_planned_statement_is_prepared_once_per_connection(organizations, transactional_db):
    """PostgreSQL parses it once (``PREPARE``), then only executes it, planned for each
    call's ids; a new connection prepares it again."""

    def sent(ids) -> str:
        with CaptureQueriesContext(connection) as queries:
            execute_planned(COUNTED, ids)
        (query,) = queries.captured_queries
        return query["sql"]

    connection.close()  # a new connection holds no prepared statement
    assert sent([organizations[0], organizations[1], 0]).startswith("PREPARE cds_planned_")
    again = sent([organizations[2], organizations[3], 0])
    assert "PREPARE " not in again
    assert "EXECUTE cds_planned_" in again
    with connection.cursor() as cursor:
        cursor.execute("SELECT generic_plans, custom_plans FROM pg_prepared_statements")
        assert cursor.fetchall() == [(0, 2)]  # planned for each call's ids, never for any


@pytest.mark.postgres
def test_a_statement_the_server_lost_is_prepared_again(organizations):
    """Should the server no longer hold it (``DEALLOCATE``, a session reset), the call fails
    and the next one prepares it again."""
    with CaptureQueriesContext(connection) as queries:
        execute_planned(COUNTED, [organizations[0], organizations[1], 0])
    (name,) = re.findall(r"EXECUTE (cds_planned_\d+)\(", queries.captured_queries[0]["sql"])
    with connection.cursor() as cursor:
        cursor.execute(f"DEALLOCATE {name}")  # this one only: others stay prepared
    with pytest.raises(DatabaseError), transaction.atomic():
        execute_planned(COUNTED, [organizations[0], organizations[1], 0])
    assert execute_planned(COUNTED, [organizations[0], organizations[1], 0]) == [
        (organizations[0], 1),
        (organizations[1], 2),
    ]


def test_statements_fetched_together_give_each_its_rows(organizations):
    """Several statements in one round trip on PostgreSQL (one query captured), one by one
    elsewhere: each gives its own rows, in order, whether its parameters are written in
    (``Prepared.statement``) or passed; one that returns none gives an empty list."""
    prepared = Prepared(adders_per_organization)
    named = Adder.objects.filter(organization_id=organizations[0]).order_by("pk")
    table = Adder._meta.db_table
    touch = f"UPDATE {table} SET amount = amount WHERE organization_id = %s"  # noqa: S608
    names_of = f"SELECT name FROM {table} WHERE organization_id = %s ORDER BY id"  # noqa: S608
    with CaptureQueriesContext(connection) as queries:
        counted, updated, names = fetched_together(
            [
                prepared.statement(organizations[:3], [organizations[1]]),
                (touch, [organizations[2]]),
                (names_of, [organizations[0]]),
            ]
        )
    assert counted == [(organizations[0], 1), (organizations[2], 3)]
    assert updated == []
    assert names == [(name,) for name in named.values_list("name", flat=True)]
    assert len(queries) == (1 if connection.vendor == "postgresql" else 3)


def test_a_savepoint_sent_ahead_is_an_atomic_block(
    organizations, django_capture_on_commit_callbacks
):
    """A nested block whose savepoint travels with its first statement (no round trip of its
    own on PostgreSQL, and none to release it): that statement still gives its own rows, the
    block's writes stay, and an exception takes back its writes and the callbacks it
    registered, the caller's transaction going on (docs/design.md §10)."""
    organization = organizations[2]
    adders = Adder.objects.filter(organization_id=organization)
    before = sorted(adders.values_list("name", flat=True))
    told = []
    with django_capture_on_commit_callbacks(execute=True):
        with CaptureQueriesContext(connection) as queries, savepoint_sent_ahead():
            names = sorted(adders.values_list("name", flat=True))
            adders.update(amount=7)
            transaction.on_commit(lambda: told.append("kept"))

        def fails() -> None:
            with savepoint_sent_ahead():
                adders.update(amount=8)
                transaction.on_commit(lambda: told.append("taken back"))
                raise ZeroDivisionError

        with pytest.raises(ZeroDivisionError):
            fails()
        adders.filter(amount=7).update(name=Concat("name", Value(" (after)")))
    assert names == before
    assert len(names) == 3
    assert sorted(adders.values_list("amount", flat=True)) == [7, 7, 7]
    assert all(name.endswith(" (after)") for name in adders.values_list("name", flat=True))
    assert told == ["kept"]
    # SAVEPOINT, the read, the update, RELEASE SAVEPOINT; on PostgreSQL the read and update.
    assert len(queries) == (2 if connection.vendor == "postgresql" else 4)


def test_rows_inserted_ahead_of_a_savepoint_stay_whatever_the_block_does():
    """``savepoint_sent_ahead(inserted)`` inserts the row before its savepoint, as it is
    when the block starts: on PostgreSQL in the text of the block's first statement (no
    round trip of its own), given its id once it has run; the block's failure takes back
    its own writes, not that row, even when the text that carried it is what failed; a
    block that sends nothing still inserts it (docs/design.md §10)."""
    from partnerships.models import Partnership

    upstream = OrganizationFactory()
    partners = [OrganizationFactory() for _ in range(3)]
    failing = Partnership(upstream=upstream, downstream=partners[0])
    updated = []

    def fails() -> None:
        with savepoint_sent_ahead(failing):
            failing.is_exclusive = True  # after the block starts: not inserted so
            updated.append(Partnership.objects.filter(upstream=upstream).update(version=5))
            raise ZeroDivisionError

    with transaction.atomic():
        with CaptureQueriesContext(connection) as queries, pytest.raises(ZeroDivisionError):
            fails()
        quiet = Partnership(upstream=upstream, downstream=partners[1])
        with savepoint_sent_ahead(quiet):
            pass
        broken = Partnership(upstream=upstream, downstream=partners[2])
        with (
            pytest.raises(DatabaseError),
            savepoint_sent_ahead(broken),
            connection.cursor() as cursor,
        ):
            cursor.execute("SELECT 1 FROM a_table_that_is_not_there")
        partners[2].name = "Still in the transaction"  # the caller's transaction goes on
        partners[2].save()
    assert updated == [1]  # the block's first statement saw the row
    assert all(p.pk and not p._state.adding for p in [failing, quiet, broken])
    assert sorted(
        Partnership.objects.filter(upstream=upstream).values_list("pk", "version", "is_exclusive")
    ) == sorted([(failing.pk, 1, False), (quiet.pk, 1, False), (broken.pk, 1, False)])
    if connection.vendor == "postgresql":
        # The rows, the savepoint and the update in one text; then the rollback to it.
        assert len(queries) == 2


def test_partnerships_inserted_at_once_are_the_orms_to_the_last_column(admin_user):
    """``insert_rows`` writes the rows ``bulk_create`` writes, every column (defaults and
    values prepared by their fields), for any model: here partnerships, as a link creates
    them (docs/design.md §10)."""
    from partnerships.models import Partnership

    upstream = OrganizationFactory()

    def made() -> list[Partnership]:
        return [
            Partnership(
                upstream=upstream,
                downstream=OrganizationFactory(),
                is_exclusive=bool(n % 2),
                data_sync_enabled=True,
                created_by=admin_user if n else None,
                updated_by=admin_user if n else None,
            )
            for n in range(3)
        ]

    ours, orms = insert_rows(made()), Partnership.objects.bulk_create(made())
    assert all(p.pk and not p._state.adding for p in ours)
    columns = [
        f.attname
        for f in Partnership._meta.concrete_fields
        if f.attname not in ("id", "downstream_id", "created_at", "updated_at")
    ]
    assert [Partnership.objects.values(*columns).get(pk=p.pk) for p in ours] == [
        Partnership.objects.values(*columns).get(pk=p.pk) for p in orms
    ]
    assert all(Partnership.objects.get(pk=p.pk).created_at == p.created_at for p in ours)

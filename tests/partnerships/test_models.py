"""The database itself refuses what a constraint can express (docs/design.md §1.5, §2.1),
on every backend."""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from partnerships import services
from partnerships.models import Invitation, Partnership, PartnershipRequest
from tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db


def insert(**fields) -> Partnership:
    with transaction.atomic():
        return Partnership.objects.create(
            upstream=fields.pop("upstream", None) or OrganizationFactory(),
            downstream=fields.pop("downstream", None) or OrganizationFactory(),
            **fields,
        )


@pytest.mark.parametrize(
    "flags",
    [
        {"allow_downstream_edit": True},
        {"allow_downstream_edit": True, "is_exclusive": True},
        {"allow_downstream_edit": True, "data_sync_enabled": True},
    ],
)
def test_allow_edit_needs_exclusive_and_sync(flags):
    with pytest.raises(IntegrityError):
        insert(**flags)


@pytest.mark.parametrize("model", [Invitation, PartnershipRequest])
def test_allow_edit_rule_also_holds_for_invitations_and_requests(model):
    upstream = OrganizationFactory()
    extra = (
        {
            "organization_name": "x",
            "email": "a@example.com",
            "token_hash": "h",
            "expires_at": "2030-01-01T00:00Z",
        }
        if model is Invitation
        else {"downstream": OrganizationFactory()}
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        model.objects.create(upstream=upstream, allow_downstream_edit=True, **extra)


def test_no_self_partnership():
    organization = OrganizationFactory()
    with pytest.raises(IntegrityError):
        insert(upstream=organization, downstream=organization)


def test_one_active_partnership_per_pair():
    first = insert()
    with pytest.raises(IntegrityError):
        insert(upstream=first.upstream, downstream=first.downstream)
    Partnership.objects.filter(pk=first.pk).update(status="ended")
    insert(upstream=first.upstream, downstream=first.downstream)


def test_one_active_exclusive_partnership_per_downstream():
    first = insert(is_exclusive=True)
    with pytest.raises(IntegrityError):
        insert(downstream=first.downstream, is_exclusive=True)
    insert(downstream=first.downstream)  # the constraint covers exclusive ones only


def test_status_is_constrained():
    with pytest.raises(IntegrityError):
        insert(status="paused")


def test_full_clean_gives_the_friendly_message():
    partnership = Partnership(
        upstream=OrganizationFactory(), downstream=OrganizationFactory(), allow_downstream_edit=True
    )
    with pytest.raises(ValidationError, match="can only be on when"):
        partnership.full_clean()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_exclusive_and_other_upstream_serialise():
    """Two channel managers link the same partner at once, one exclusively: the row lock on
    the partner lets exactly one of them through (the other sees the first and is refused)."""
    partner = OrganizationFactory()
    first, second = OrganizationFactory(), OrganizationFactory()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def link(upstream, **flags):
        try:
            barrier.wait()
            services.create_partnership(upstream, partner, by=None, **flags)
            outcomes.append("created")
        except ValidationError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [
        threading.Thread(target=link, args=(first,), kwargs={"is_exclusive": True}),
        threading.Thread(target=link, args=(second,), kwargs={"data_sync_enabled": True}),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["created", "refused"]
    assert partner.upstream_partnerships.active().count() == 1

"""The world every security test attacks: our organization, a stranger, a channel manager,
and how to tell that a request changed nothing in the database."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import models, transaction
from hypothesis import HealthCheck, settings

from organizations.models import Organization
from partnerships import services
from partnerships.models import Invitation, Partnership, PartnershipRequest
from settings_sync import engine, imports, policy, profiles, registry
from settings_sync.models import Import, SyncBatch, SyncChange, SyncProfile, SyncRun
from tests.factories import MembershipFactory, OrganizationFactory
from tests.settings_sync import catalogue_data as data

#: The project's own apps: their rows (and the users) are what "nothing changed" compares.
PROJECT_APPS = (
    "organizations",
    "partnerships",
    "settings_sync",
    "project",
    "usage",
    "proposal",
    "unsynced",
    "notifications",
)


class Terse:
    """Shown by name alone when hypothesis prints the fixtures of a failing example."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    def _repr_pretty_(self, printer, cycle: bool) -> None:  # the protocol of that printer
        printer.text(repr(self))


class DatabaseState(Terse, dict):
    """Every row of the project's models and every user (archived rows included), by model."""


def rows(model: type[models.Model]) -> list[dict]:
    return list(model._base_manager.order_by("pk").values())


def database_state() -> DatabaseState:
    project_models = [
        model for label in PROJECT_APPS for model in apps.get_app_config(label).get_models()
    ]
    return DatabaseState(
        (model._meta.label, rows(model)) for model in [get_user_model(), *project_models]
    )


def changed_rows(model: type[models.Model], before: DatabaseState) -> list[models.Model]:
    """The rows of ``model`` that are new or different since ``before``."""
    unchanged, pk = before[model._meta.label], model._meta.pk.attname
    return list(
        model._base_manager.filter(pk__in=[row[pk] for row in rows(model) if row not in unchanged])
    )


@contextmanager
def undone():
    """Roll back whatever the block wrote (one hypothesis example, one killer).

    The test's database transaction spans all examples of a ``@given`` test; undoing each one
    makes every example start from the same data.
    """
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


# The organizations ------------------------------------------------------------------------


@dataclass(repr=False)
class Holdings(Terse):
    """One organization, its admin, and one object of every kind its URLs point at."""

    organization: Organization
    admin: User
    partnership: Partnership  # strict, with a partner of its own, synced once
    run: SyncRun  # that sync
    change: SyncChange  # the partner's own adder, archived by that sync
    failed_run: SyncRun
    batch: SyncBatch
    invitation: Invitation
    invitation_token: str  # the token of its link
    request: PartnershipRequest
    received: PartnershipRequest  # a request sent to it
    items: dict[str, models.Model]  # one item per settings list page, by page key
    upload: Import  # a file uploaded into its adders, dry run not yet applied
    profile: SyncProfile  # a sync profile (strict, adders flexible)


def holdings(name: str) -> Holdings:
    organization = OrganizationFactory(name=name)
    admin = MembershipFactory(organization=organization, role="admin").user
    items = {page.key: data.make_item(page.key, organization) for page in data.LIST_PAGES}
    partner = OrganizationFactory()
    data.make_item("adders", partner, 1)
    partnership = services.create_partnership(organization, partner, by=admin, **data.STRICT)
    sync_run = engine.run(partnership, policy.LINK, by=admin)
    invitation = services.invite_organization(
        organization, name="Summit Solar", email="owner@summit.example", invited_by=admin
    )
    return Holdings(
        organization=organization,
        admin=admin,
        partnership=partnership,
        run=sync_run,
        change=sync_run.changes.get(action=SyncChange.Action.ARCHIVED),
        failed_run=SyncRun.objects.create(
            partnership=partnership,
            event=policy.RESYNC,
            mode=partnership.mode,
            status=SyncRun.Status.FAILED,
            error="disk full",
        ),
        batch=SyncBatch.objects.create(organization=organization, created_by=admin),
        invitation=invitation,
        invitation_token=invitation.issue_token(),
        request=services.request_partnership(organization, OrganizationFactory(), by=admin),
        received=services.request_partnership(OrganizationFactory(), organization, by=None),
        items=items,
        profile=profiles.save_profile(
            organization,
            name="Strict but adders",
            flags=data.STRICT,
            values={"adders": "flexible"},
            by=admin,
        ),
        upload=imports.start_import(
            organization=organization,
            category=registry.get("adders"),
            file_name="adders.csv",
            content=b"Name,Pricing,Amount\nImported,fixed,10\n",
            archive_missing=False,
            by=admin,
        ),
    )


STRANGER = "stranger"
CHANNEL_MANAGER = "channel manager"


@dataclass(repr=False)
class World(Terse):
    """The signed-in admin's organization and two others.

    ``ours`` is a channel manager in its own right and the partner of ``channel manager``
    (flexible: its settings stay editable), so it legitimately sees some of that
    organization's things (the partnership between them, its runs, shared proposal
    templates) but nothing else of it. ``stranger`` has no partnership with ``ours`` at all.
    """

    ours: Holdings
    others: dict[str, Holdings]
    upstream: Partnership  # channel manager → ours
    upstream_run: SyncRun  # its first sync, which archived ``restorable`` in ours
    restorable: SyncChange
    received: PartnershipRequest  # sent to ours before the channel manager's partnership


def build_world() -> World:
    ours = holdings("Sunrise Solar")
    channel_manager = holdings("Helios Energy Partners")
    stranger = holdings("Coastal Roofing")
    data.make_item("adders", ours.organization, 5)  # not in the channel manager's catalogue
    received = services.request_partnership(
        OrganizationFactory(name="Summit Roofing"), ours.organization, by=None
    )
    upstream = services.create_partnership(
        channel_manager.organization, ours.organization, by=None, **data.STRICT
    )
    upstream_run = engine.run(upstream, policy.LINK)
    upstream = services.update_flags(upstream, by=None, **data.FLEXIBLE)
    engine.run(upstream, policy.LINK)  # the flags' run: the copies are no longer locked
    return World(
        ours=ours,
        others={STRANGER: stranger, CHANNEL_MANAGER: channel_manager},
        upstream=upstream,
        upstream_run=upstream_run,
        restorable=upstream_run.changes.get(action=SyncChange.Action.ARCHIVED),
        received=received,
    )


#: Hypothesis settings of tests that take the module's fixtures (read-only, so safe to share).
HOSTILE = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])

"""Organization, membership and license invariants held by the database and the models."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from organizations.models import License, Membership, Organization
from tests.factories import LicenseFactory, MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


def test_slug_is_derived_and_unique():
    first = Organization.objects.create(name="Sunrise Solar")
    second = Organization.objects.create(name="Sunrise-Solar")
    assert (first.slug, second.slug) == ("sunrise-solar", "sunrise-solar-2")


def test_one_membership_per_user_and_organization():
    membership = MembershipFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Membership.objects.create(user=membership.user, organization=membership.organization)


def test_role_is_constrained():
    with pytest.raises(IntegrityError), transaction.atomic():
        MembershipFactory(role="owner")


def test_duplicate_live_license_refused_by_database():
    organization = OrganizationFactory()
    LicenseFactory(organization=organization, number="A1", jurisdiction="Texas")
    with pytest.raises(IntegrityError), transaction.atomic():
        LicenseFactory(organization=organization, number=" a1", jurisdiction="TEXAS ")


def test_restore_refused_while_a_live_license_holds_the_key():
    organization = OrganizationFactory()
    archived = LicenseFactory(organization=organization, number="A1", jurisdiction="Texas")
    archived.archive(reason="test")
    LicenseFactory(organization=organization, number="A1", jurisdiction="Texas")
    with pytest.raises(ValidationError, match="already has a license"):
        License.all_objects.get(pk=archived.pk).restore()
    assert License.all_objects.get(pk=archived.pk).is_archived


def test_restore_brings_an_archived_license_back():
    license_ = LicenseFactory()
    license_.archive(reason="test")
    assert not License.objects.filter(pk=license_.pk).exists()
    License.all_objects.get(pk=license_.pk).restore()
    assert License.objects.filter(pk=license_.pk).exists()


@pytest.mark.parametrize(
    "other", ["Summit Solar", "  summit SOLAR ", "SUMMIT  solar", "Summit\u00a0Solar"]
)
def test_the_database_refuses_a_second_organization_with_the_same_name(other):
    OrganizationFactory(name="Summit Solar")
    with pytest.raises(IntegrityError), transaction.atomic():
        Organization.objects.create(name=other, slug="another-summit")
    with pytest.raises(IntegrityError), transaction.atomic():
        Organization.objects.bulk_create([Organization(name=other, slug="bulk-summit")])
    assert Organization.objects.count() == 1


def test_names_that_only_look_alike_in_ascii_are_told_apart_the_same_way_everywhere():
    """Case folding is Python's, stored in a column: "ÉNERGIE" and "énergie" are one name on
    SQLite too (whose lower() only folds ASCII), and "Straße" is "STRASSE"."""
    OrganizationFactory(name="Énergie Solaire")
    OrganizationFactory(name="Straße Solar")
    for name in ["ÉNERGIE SOLAIRE", "STRASSE SOLAR"]:
        assert Organization.name_taken(name)
        with pytest.raises(IntegrityError), transaction.atomic():
            Organization.objects.create(name=name, slug="x")


def test_full_clean_reports_a_taken_name_beside_the_name():
    OrganizationFactory(name="Summit Solar")
    with pytest.raises(ValidationError) as error:
        Organization(name=" summit solar", slug="summit-2").full_clean()
    assert error.value.message_dict == {
        "name": [
            "Another organization on Channel Data Sync already has this name. Choose a name "
            "that tells your organization apart."
        ]
    }


def test_migration_tells_existing_namesakes_apart_by_their_slugs():
    import importlib

    from django.apps import apps

    migration = importlib.import_module("organizations.migrations.0006_fill_name_keys")
    first = OrganizationFactory(name="Summit Solar", slug="summit-solar")
    second = OrganizationFactory(name="Summit Solar 2", slug="summit-solar-2")
    # Namesakes stored before names were unique (the key column kept what it had).
    Organization.objects.filter(pk=second.pk).update(name=" SUMMIT solar", name_key="")
    other = OrganizationFactory(name="Helios")
    migration.fill_name_keys(apps, None)
    names = dict(Organization.objects.values_list("pk", "name"))
    assert names == {
        first.pk: "Summit Solar",
        second.pk: " SUMMIT solar (summit-solar-2)",
        other.pk: "Helios",
    }
    assert Organization.objects.get(pk=second.pk).name_key == "summit solar (summit-solar-2)"


def test_saving_only_the_name_keeps_its_key():
    organization = OrganizationFactory(name="Sunrise Solar")
    organization.name = "Sunset Solar"
    organization.save(update_fields=["name"])
    assert Organization.objects.get(pk=organization.pk).name_key == "sunset solar"

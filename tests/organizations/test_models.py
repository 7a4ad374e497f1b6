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
    second = Organization.objects.create(name="Sunrise Solar")
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

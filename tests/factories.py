"""factory-boy factories for the project's models."""

from __future__ import annotations

import datetime

import factory
from django.contrib.auth import get_user_model

from organizations.models import License, Membership, Organization

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.django.Password(PASSWORD)


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Solar Organization {n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = Membership.Role.ADMIN


class LicenseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = License

    organization = factory.SubFactory(OrganizationFactory)
    license_type = "C-46 Solar Contractor"
    number = factory.Sequence(lambda n: f"{100000 + n}")
    jurisdiction = "California"
    expires_on = datetime.date(2028, 6, 30)


def make_partnership(upstream=None, downstream=None, *, by=None, **flags):
    """An active partnership created through the service, as staff would."""
    from partnerships.services import create_partnership

    return create_partnership(
        upstream or OrganizationFactory(), downstream or OrganizationFactory(), by=by, **flags
    )


class AdderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "project.Adder"

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Adder {n}")
    pricing = "fixed"
    amount = 100


class EquipmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "project.Equipment"

    organization = factory.SubFactory(OrganizationFactory)
    kind = "module"
    manufacturer = "REC"
    model = factory.Sequence(lambda n: f"Alpha {400 + n}")
    unit_cost = 265


class PersonaFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "usage.Persona"

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Household {n}")
    annual_kwh = 9000


class RateEscalationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "usage.RateEscalation"

    organization = factory.SubFactory(OrganizationFactory)
    utility_name = factory.Sequence(lambda n: f"Utility {n}")
    annual_escalation_percent = 3


class ComparableValueFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "proposal.ComparableValue"

    organization = factory.SubFactory(OrganizationFactory)
    label = factory.Sequence(lambda n: f"Comparable {n}")
    unit = "trees"
    factor_per_mwh = 16

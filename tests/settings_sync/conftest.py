"""Fixtures shared by the settings catalogue tests: an organization with a signed-in admin or
member, and a channel manager with a partner (modules may override them)."""

from __future__ import annotations

import pytest

from tests.factories import MembershipFactory, OrganizationFactory

from . import catalogue_data as data


@pytest.fixture
def org():
    return OrganizationFactory()


@pytest.fixture
def admin(client, org):
    user = MembershipFactory(organization=org, role="admin").user
    client.force_login(user)
    return user


@pytest.fixture
def member(client, org):
    user = MembershipFactory(organization=org, role="member").user
    client.force_login(user)
    return user


@pytest.fixture
def upstream():
    return OrganizationFactory(name=data.UPSTREAM_NAME)


@pytest.fixture
def partner():
    return OrganizationFactory(name="Sunrise Installers")

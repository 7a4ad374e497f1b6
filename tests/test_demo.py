"""The demo command loads realistic data once; a second run adds nothing."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from organizations.models import License, Membership, Organization

pytestmark = pytest.mark.django_db(transaction=True)


def counts() -> tuple[int, ...]:
    return (
        Organization.objects.count(),
        Membership.objects.count(),
        License.all_objects.count(),
        get_user_model().objects.count(),
    )


def test_demo_is_idempotent_and_prints_accounts():
    out = io.StringIO()
    call_command("demo", no_serve=True, stdout=out)
    first = counts()
    assert first[0] >= 4
    assert "helios-admin" in out.getvalue()
    assert "password: " in out.getvalue()
    assert Organization.objects.get(slug="helios-energy").logo
    call_command("demo", no_serve=True, stdout=io.StringIO())
    assert counts() == first

"""Staff can open every admin list and change page (a smoke test over the registry)."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from tests.factories import LicenseFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_every_admin_page_opens(client):
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    MembershipFactory()
    LicenseFactory().archive(reason="test")
    for model in admin.site._registry:
        opts = model._meta
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        assert client.get(changelist).status_code == 200, changelist
        assert client.get(changelist, {"q": "solar"}).status_code == 200, changelist
        instance = admin.site._registry[model].get_queryset(None).first()
        if instance is not None:
            change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[instance.pk])
            assert client.get(change).status_code == 200, change

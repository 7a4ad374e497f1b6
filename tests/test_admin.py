"""Staff can open every admin list and change page (a smoke test over the registry)."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from settings_sync import engine
from settings_sync.project.models import Adder
from settings_sync.unsynced.models import FinancingProduct
from settings_sync.usage.models import Persona
from tests.factories import LicenseFactory, MembershipFactory, UserFactory, make_partnership

pytestmark = pytest.mark.django_db


def test_every_admin_page_opens(client):
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    membership = MembershipFactory()
    LicenseFactory().archive(reason="test")
    # A partnership with a sync run and its changes, so every history page has rows.
    upstream = membership.organization
    Adder.objects.create(organization=upstream, name="Trenching", amount=1250)
    Persona.objects.create(organization=upstream, name="EV owner", annual_kwh=14500)
    partnership = make_partnership(upstream, data_sync_enabled=True)
    engine.run(partnership, "link")
    FinancingProduct.objects.create(
        organization=upstream, name="25-year", lender="GoodLeap", apr_percent=7, term_months=300
    )
    for mode in ("off", "strict"):
        assert (
            client.get(
                reverse("admin:partnerships_partnership_changelist"), {"mode": mode}
            ).status_code
            == 200
        )
    assert (
        client.get(reverse("admin:project_adder_changelist"), {"sync_state": "synced"}).status_code
        == 200
    )
    for model in admin.site._registry:
        opts = model._meta
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        assert client.get(changelist).status_code == 200, changelist
        assert client.get(changelist, {"q": "solar"}).status_code == 200, changelist
        instance = admin.site._registry[model].get_queryset(None).first()
        if instance is not None:
            change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[instance.pk])
            assert client.get(change).status_code == 200, change

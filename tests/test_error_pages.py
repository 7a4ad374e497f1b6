"""The product's own pages for 403, 404 and 500."""

from __future__ import annotations

import logging

import pytest
from django.urls import reverse
from django.views.defaults import server_error

from tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db


def test_forbidden_says_why_and_that_nothing_changed(member_client, organization):
    response = member_client.post(
        reverse("organizations:organization", args=[organization.slug]), {"name": "Renamed"}
    )
    assert response.status_code == 403
    page = response.content.decode()
    assert "You can't change this" in page
    assert "Only an admin of this organization can change its settings." in page
    assert "Nothing was changed." in page


def test_a_refused_request_is_logged_on_one_line_with_its_reason(
    member_client, organization, caplog
):
    path = reverse("organizations:organization", args=[organization.slug])
    with caplog.at_level(logging.WARNING, logger="django.request"):
        member_client.post(path, {"name": "Renamed"})
    assert caplog.messages == [
        f"Forbidden (Permission denied): {path} "
        "(Only an admin of this organization can change its settings.)"
    ]
    assert len(caplog.text.splitlines()) == 1  # no traceback
    assert "Traceback" not in caplog.text


def test_another_organizations_page_is_not_found(admin_client):
    other = OrganizationFactory()
    response = admin_client.get(reverse("organizations:organization", args=[other.slug]))
    assert response.status_code == 404
    page = response.content.decode()
    assert "Page not found" in page
    assert "it belongs to an organization you are not a member of" in page


def test_server_error_page_needs_no_context_and_no_database(rf, django_assert_num_queries):
    """Django renders 500.html without context processors; it must not need the database,
    which may be what failed."""
    with django_assert_num_queries(0):
        response = server_error(rf.get("/"))
    assert response.status_code == 500
    page = response.content.decode()
    assert "Something went wrong" in page
    assert "Nothing was half-saved" in page
    assert 'href="/"' in page
    assert "bootstrap.min.css" in page

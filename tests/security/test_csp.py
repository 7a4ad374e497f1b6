"""The Content-Security-Policy: every page carries one that runs no inline code, and no
template holds markup that such a policy would block (the browser tests check the pages as
Chromium applies it)."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from tests.factories import MembershipFactory, make_partnership

pytestmark = pytest.mark.django_db

TEMPLATES = Path(settings.BASE_DIR) / "templates"


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {
        name: values
        for name, *values in (part.split() for part in policy.split(";") if part.strip())
    }


def assert_strict(response) -> None:
    policy = directives(response)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]


def test_pages_carry_a_policy_without_inline_code(client):
    membership = MembershipFactory()
    partnership = make_partnership(membership.organization, data_sync_enabled=True)
    assert_strict(client.get(reverse("login")))
    client.force_login(membership.user)
    organization = membership.organization
    for url in [
        reverse("organizations:organization", kwargs={"org": organization.slug}),
        reverse("partnerships:list", kwargs={"org": organization.slug}),
        reverse("partnerships:edit", kwargs={"org": organization.slug, "pk": partnership.pk}),
        reverse("help-sync"),
        "/o/no-such-organization/settings/",
    ]:
        response = client.get(url)
        assert response.status_code in (200, 404), url
        assert_strict(response)


class InlineCode(HTMLParser):
    """Collects what a policy without 'unsafe-inline' would block in a template."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.found.append("an inline <script>")
        if tag == "style":
            self.found.append("a <style> element")
        for name, value in attrs:
            if name == "style":
                self.found.append(f"a style attribute on <{tag}>")
            elif name.startswith(("on", "hx-on")):
                self.found.append(f"an inline handler {name} on <{tag}>")
            elif name in ("href", "src", "action") and (value or "").startswith("javascript:"):
                self.found.append(f"a javascript: URL on <{tag}>")


@pytest.mark.parametrize(
    "template",
    sorted(str(path.relative_to(TEMPLATES)) for path in TEMPLATES.rglob("*.html")),
)
def test_templates_hold_nothing_the_policy_blocks(template):
    parser = InlineCode()
    parser.feed((TEMPLATES / template).read_text())
    assert parser.found == []

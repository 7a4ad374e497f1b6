"""The run page shows a run's place in a cascade (docs/design.md §14.1): the run that started
it, the runs it started below (a small tree), with links only to runs the viewer may open."""

from __future__ import annotations

import itertools

import pytest
from django.urls import reverse

from settings_sync import engine
from settings_sync.models import SyncRun
from settings_sync.project.models import Adder
from tests.factories import AdderFactory, MembershipFactory, OrganizationFactory, make_partnership
from tests.settings_sync.catalogue_data import STRICT

pytestmark = pytest.mark.django_db


@pytest.fixture
def cascade(django_capture_on_commit_callbacks):
    """Level 0 → 1 → 2 → 3 strict, and Level 1 → "Side" strict; a change at the top."""
    levels = [OrganizationFactory(name=f"Level {n}") for n in range(4)]
    side = OrganizationFactory(name="Side")
    AdderFactory(organization=levels[0], name="Trenching", amount=1)
    with django_capture_on_commit_callbacks(execute=True):
        for up, down in itertools.pairwise(levels):
            make_partnership(up, down, **STRICT)
        make_partnership(levels[1], side, **STRICT)
    Adder.objects.filter(organization=levels[0]).update(amount=2)
    with django_capture_on_commit_callbacks(execute=True):
        top = engine.run(levels[0].downstream_partnerships.get(), "change")
    return levels, side, top


def run_page(client, organization, sync_run) -> str:
    client.force_login(MembershipFactory(organization=organization, role="admin").user)
    url = reverse("settings_sync:run", args=[organization.slug, sync_run.pk])
    return client.get(url).content.decode()


def test_the_run_page_shows_the_cause_and_the_runs_started(client, cascade):
    levels, _side, top = cascade
    into_2 = top.caused.get(partnership__downstream=levels[2])
    into_3 = into_2.caused.get()
    page = run_page(client, levels[1], into_2)
    # The cause: the level 1 admin may open it (its own partnership).
    top_url = reverse("settings_sync:run", args=[levels[1].slug, top.pk])
    assert f'Started by\n        <a href="{top_url}">run #{top.pk}</a> (Level 0 → Level 1)' in page
    # The run it started: shown, but not linked (Level 1 is no side of Level 2 → Level 3).
    assert f"Run #{into_3.pk}:\n      Level 2 → Level 3" in page
    assert reverse("settings_sync:run", args=[levels[1].slug, into_3.pk]) not in page


def test_the_top_run_shows_a_small_tree(client, cascade, django_assert_max_num_queries):
    levels, side, top = cascade
    client.force_login(MembershipFactory(organization=levels[0], role="admin").user)
    url = reverse("settings_sync:run", args=[levels[0].slug, top.pk])
    with django_assert_max_num_queries(20):
        page = client.get(url).content.decode()
    started = list(top.caused.order_by("pk"))
    assert [run.partnership.downstream for run in started] == [levels[2], side]
    assert page.count('data-testid="cascade-run"') == 3  # into 2, into Side, and into 3 below
    assert "This run changed Level 1, so it started these runs:" in page
    assert "Level 2 → Level 3" in page


def test_a_run_that_started_nothing_says_so(client, cascade):
    levels, _side, _top = cascade
    last = SyncRun.objects.filter(partnership__downstream=levels[3]).latest("pk")
    page = run_page(client, levels[3], last)
    assert "This run started no runs further down." in page
    assert "(Level 1 → Level 2)" in page  # its cause, and the cause's cause
    assert "(Level 0 → Level 1)" in page

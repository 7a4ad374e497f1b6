"""The override rows of the Partnership Details form and the partner's read-only view of them
(docs/design.md §12): shown by the flags' rule, kept while hidden, validated, previewed as
they run."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from partnerships.models import Partnership
from settings_sync import overrides
from settings_sync.models import CategoryOverride, SyncRun
from settings_sync.project.models import Adder
from tests.factories import AdderFactory, MembershipFactory, make_partnership

pytestmark = pytest.mark.django_db

FLEXIBLE = {"is_exclusive": True, "data_sync_enabled": True, "allow_downstream_edit": True}


def edit_url(partnership: Partnership) -> str:
    return reverse("partnerships:edit", args=[partnership.upstream.slug, partnership.pk])


def form_data(partnership: Partnership, *, flags: dict, rows: dict | None = None, **extra):
    data = {"version": partnership.version, **extra}
    data.update({name: "on" for name, on in flags.items() if on})
    data.update({f"override-{key}": value for key, value in (rows or {}).items()})
    return data


def options_of(content: str, key: str) -> list[str]:
    select = re.search(rf'<select[^>]*name="override-{key}".*?</select>', content, re.S)
    assert select, f"no row for {key}"
    return re.findall(r'<option value="([a-z_]+)"', select.group(0))


def selected_of(content: str, key: str) -> str | None:
    match = re.search(rf'name="override-{key}".*?<option value="(\w+)" selected', content, re.S)
    if match:
        return match.group(1)
    hidden = re.search(rf'<input type="hidden" name="override-{key}" value="(\w+)"', content)
    return hidden.group(1) if hidden else None


@pytest.fixture
def manager_client(client, channel_manager):
    client.force_login(MembershipFactory(organization=channel_manager, role="admin").user)
    return client


@pytest.fixture
def flexible(channel_manager, partner, django_capture_on_commit_callbacks):
    AdderFactory(organization=channel_manager, name="Trenching", amount=1250)
    AdderFactory(organization=partner, name="Tree removal", amount=900)
    with django_capture_on_commit_callbacks(execute=True):
        return make_partnership(channel_manager, partner, **FLEXIBLE)


class TestTheRows:
    def test_rows_follow_the_flags_rule_and_hiding_clears_nothing(self, manager_client, flexible):
        page = manager_client.get(edit_url(flexible)).content.decode()
        assert options_of(page, "adders") == ["follow", "off", "flexible", "strict"]
        assert options_of(page, "logo") == ["follow", "off"]  # invite-only

        def refresh(flags, rows):
            data = form_data(flexible, flags=flags, rows=rows, _refresh="1")
            return manager_client.post(edit_url(flexible), data, HTTP_HX_REQUEST="true")

        # Exclusive unticked: follow and off only; a strict choice is kept and says so.
        response = refresh({"data_sync_enabled": True}, {"adders": "strict"})
        content = response.content.decode()
        assert options_of(content, "equipment") == ["follow", "off"]
        assert options_of(content, "adders") == ["follow", "off", "strict"]
        assert "Strict (kept; no effect until the partnership is Exclusive)" in content
        assert selected_of(content, "adders") == "strict"
        # Data Sync unticked: no rows, their values carried in hidden inputs.
        content = refresh({"is_exclusive": True}, {"adders": "strict"}).content.decode()
        assert 'data-testid="override-rows"' not in content
        assert selected_of(content, "adders") == "strict"
        # Ticked again: still there.
        content = refresh(FLEXIBLE, {"adders": "strict"}).content.decode()
        assert selected_of(content, "adders") == "strict"
        assert not CategoryOverride.objects.exists()  # a redraw saves nothing

    def test_without_javascript_update_preview_redraws_the_form(self, manager_client, flexible):
        page = manager_client.get(edit_url(flexible)).content.decode()
        assert 'name="_refresh" value="1"' in page
        response = manager_client.post(
            edit_url(flexible),
            form_data(flexible, flags=FLEXIBLE, rows={"adders": "strict"}, _refresh="1"),
        )
        assert response.status_code == 200
        content = response.content.decode()
        assert "<html" in content
        assert "Saving changes how these categories sync with Sunrise Solar" in content
        assert not CategoryOverride.objects.exists()


class TestSaving:
    def test_the_preview_matches_the_run(
        self, manager_client, flexible, django_capture_on_commit_callbacks
    ):
        rows = {"adders": "strict", "equipment": "off"}
        preview = manager_client.post(
            edit_url(flexible),
            form_data(flexible, flags=FLEXIBLE, rows=rows, _refresh="1"),
            HTTP_HX_REQUEST="true",
        ).content.decode()
        assert re.search(r'data-category="adders".*?data-outcome="match"', preview, re.S)
        assert re.search(r'data-category="adders".*?data-action="archived">1 ', preview, re.S)
        # the copy of Trenching becomes locked: a write, in the preview as in the run (§14.3)
        assert re.search(r'data-category="adders".*?data-action="updated">1 ', preview, re.S)
        before = set(SyncRun.objects.values_list("pk", flat=True))
        with django_capture_on_commit_callbacks(execute=True):
            saved = manager_client.post(
                edit_url(flexible), form_data(flexible, flags=FLEXIBLE, rows=rows)
            )
        assert saved.status_code == 302
        assert dict(CategoryOverride.objects.values_list("category", "value")) == rows
        runs = SyncRun.objects.exclude(pk__in=before)
        assert sorted((r.event, tuple(r.categories)) for r in runs) == [
            ("link", ("adders",)),
            ("unlink", ("equipment",)),
        ]
        assert runs.get(event="link").counts == {"adders": {"archived": 1, "updated": 1}}
        assert not Adder.objects.filter(name="Tree removal").exists()

    def test_a_flags_change_and_an_override_in_one_save(
        self, manager_client, flexible, partner, django_capture_on_commit_callbacks
    ):
        """Strict for the partnership, adders off: the flags' link, and adders detached."""
        before = set(SyncRun.objects.values_list("pk", flat=True))
        strict = {"is_exclusive": True, "data_sync_enabled": True}
        with django_capture_on_commit_callbacks(execute=True):
            saved = manager_client.post(
                edit_url(flexible), form_data(flexible, flags=strict, rows={"adders": "off"})
            )
        assert saved.status_code == 302
        runs = SyncRun.objects.exclude(pk__in=before).order_by("pk")
        assert [(r.event, r.categories) for r in runs] == [("unlink", ["adders"]), ("link", None)]
        assert "adders" not in runs[1].counts
        copy = Adder.objects.get(organization=partner, name="Trenching")
        assert copy.synced_partnership_id is None  # detached, and the partner's own

    @pytest.mark.parametrize(
        ("flags", "rows", "message"),
        [
            ({"data_sync_enabled": True}, {"adders": "strict"}, "Flexible and Strict can only"),
            (FLEXIBLE, {"logo": "strict"}, "Logo is copied once"),
            (FLEXIBLE, {"adders": "everything"}, "Adders: choose Follow the partnership"),
        ],
    )
    def test_forged_rows_are_refused_beside_the_row(
        self, manager_client, flexible, flags, rows, message
    ):
        version = Partnership.objects.get(pk=flexible.pk).version
        response = manager_client.post(
            edit_url(flexible), form_data(flexible, flags=flags, rows=rows)
        )
        assert response.status_code == 400
        content = response.content.decode()
        key = next(iter(rows))
        assert re.search(rf'id="id_override-{key}_error">[^<]*{message}', content)
        assert not CategoryOverride.objects.exists()
        flexible.refresh_from_db()
        assert (flexible.mode, flexible.version) == ("flexible", version)

    def test_a_form_opened_before_the_overrides_changed_is_stale(self, manager_client, flexible):
        opened = form_data(flexible, flags=FLEXIBLE, rows={"equipment": "off"})
        overrides.set_override(flexible, "adders", "strict")
        response = manager_client.post(edit_url(flexible), opened)
        assert response.status_code == 400
        assert "changed meanwhile" in response.content.decode()
        assert dict(CategoryOverride.objects.values_list("category", "value")) == {
            "adders": "strict"
        }


class TestReadOnly:
    def test_the_partner_sees_the_effective_mode_per_category(self, client, flexible, partner):
        overrides.set_override(flexible, "equipment", "strict")
        overrides.set_override(flexible, "adders", "off")
        client.force_login(MembershipFactory(organization=partner, role="member").user)
        page = client.get(flexible.url_for(partner)).content.decode()
        table = re.search(r'data-testid="effective-modes".*?</table>', page, re.S).group(0)

        def mode_of(key):
            row = re.search(rf'data-category="{key}".*?</tr>', table, re.S).group(0)
            return re.search(r'data-testid="effective-mode"[^>]*>([^<]+)<', row).group(1)

        assert (mode_of("equipment"), mode_of("adders"), mode_of("personas")) == (
            "Strict",
            "Off",
            "Flexible",
        )
        assert edit_url(flexible) not in page
        # The partner's admin may not change them, even by a forged POST.
        client.force_login(MembershipFactory(organization=partner, role="admin").user)
        forged = client.post(
            reverse("partnerships:edit", args=[partner.slug, flexible.pk]),
            form_data(flexible, flags=FLEXIBLE, rows={"equipment": "follow"}),
        )
        assert forged.status_code == 403
        assert CategoryOverride.objects.get(category="equipment").value == "strict"


class TestPredictor:
    @pytest.mark.parametrize(
        ("flags", "rows", "expected"),
        [
            (
                {"is_exclusive": "on", "data_sync_enabled": "on"},
                {"adders": "off", "equipment": "flexible"},
                {
                    "adders": ("none", "Off"),
                    "equipment": ("merge", "Flexible"),
                    "personas": ("match", "Strict"),
                },
            ),
            (
                {"data_sync_enabled": "on"},
                {"adders": "strict"},  # no effect on a non-exclusive partnership
                {"adders": ("merge", "Non-exclusive"), "personas": ("merge", "Non-exclusive")},
            ),
        ],
    )
    def test_the_predictor_takes_overrides(self, client, partner_admin, flags, rows, expected):
        client.force_login(partner_admin)
        params = {"event": "link", **flags, **{f"override-{k}": v for k, v in rows.items()}}
        page = client.get(reverse("help-sync"), params).content.decode()
        table = re.search(r'data-testid="prediction".*?</table>', page, re.S).group(0)
        for key, (outcome, mode) in expected.items():
            row = re.search(rf'data-category="{key}".*?</tr>', table, re.S).group(0)
            assert f'data-outcome="{outcome}"' in row, key
            assert re.search(rf'data-testid="predicted-mode"[^>]*>{mode}<', row), key


class TestAdmin:
    def change(self, client, partnership, *, rows: list[tuple[str, str]], **flags):
        data = {
            "upstream": partnership.upstream_id,
            "downstream": partnership.downstream_id,
            **{name: "on" for name, on in flags.items() if on},
            "category_overrides-TOTAL_FORMS": str(len(rows)),
            "category_overrides-INITIAL_FORMS": "0",
            "category_overrides-MIN_NUM_FORMS": "0",
            "category_overrides-MAX_NUM_FORMS": "1000",
        }
        for n, (key, value) in enumerate(rows):
            data[f"category_overrides-{n}-category"] = key
            data[f"category_overrides-{n}-value"] = value
        url = reverse("admin:partnerships_partnership_change", args=[partnership.pk])
        return client.post(url, data)

    @pytest.fixture
    def staff_client(self, client):
        from tests.factories import UserFactory

        client.force_login(UserFactory(is_staff=True, is_superuser=True))
        return client

    def test_staff_set_an_override_inline_and_it_runs(
        self, staff_client, flexible, django_capture_on_commit_callbacks
    ):
        url = reverse("admin:partnerships_partnership_change", args=[flexible.pk])
        assert "Category overrides" in staff_client.get(url).content.decode()
        with django_capture_on_commit_callbacks(execute=True):
            response = self.change(staff_client, flexible, rows=[("adders", "strict")], **FLEXIBLE)
        assert response.status_code == 302
        assert CategoryOverride.objects.get().value == "strict"
        run = SyncRun.objects.latest("pk")
        assert (run.event, run.categories, run.mode) == ("link", ["adders"], "strict")

    def test_the_admin_refuses_what_the_flags_do_not_allow(self, staff_client, flexible):
        response = self.change(
            staff_client, flexible, rows=[("adders", "strict")], data_sync_enabled=True
        )
        assert response.status_code == 200
        assert "Flexible and Strict can only be chosen" in response.content.decode()
        assert not CategoryOverride.objects.exists()
        flexible.refresh_from_db()
        assert flexible.mode == "flexible"

"""Pages of sync profiles: list, create and edit (flags and per-category rows), archive, and
apply one to many partners with a fleet preview (docs/design.md §12.3)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from organizations.access import can_edit_organization_settings, organization_view
from organizations.search import can_match
from partnerships.forms import FlagsForm, refreshed_flags
from partnerships.models import Invitation, Partnership

from . import previews, profiles
from .models import ProfileOffer, SyncProfile
from .override_forms import OverrideRows

PAGE_SIZE = 50


def _require_admin(request: HttpRequest) -> None:
    if not can_edit_organization_settings(request.membership):
        raise PermissionDenied("Only an admin of this organization can manage sync profiles.")


def _profile(request: HttpRequest, pk: int) -> SyncProfile:
    return get_object_or_404(SyncProfile.objects.live(), pk=pk, organization=request.organization)


class ProfileForm(FlagsForm):
    name = forms.CharField(label="Name", max_length=100, help_text="For example “Solar only”.")


@organization_view
@require_http_methods(["GET"])
def profile_list(request: HttpRequest) -> HttpResponse:
    _require_admin(request)
    found = (
        SyncProfile.objects.live()
        .filter(organization=request.organization)
        .annotate(followers=Count("assignments"))
    )
    context = {
        "tab": "partnerships",
        "profiles": found,
        # the Partnerships tab's search, carried to "Apply to partners"
        "query": request.GET.get("q", "").strip(),
    }
    return render(request, "settings_sync/profiles.html", context)


@organization_view
@require_http_methods(["GET", "POST"])
def profile_form(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """Create a profile, or edit one (then offer to apply it again to its partners)."""
    _require_admin(request)
    profile = _profile(request, pk) if pk else None
    stored = profile.overrides if profile else {}
    refresh = request.method == "POST" and "_refresh" in request.POST
    status = 200
    if refresh:
        form = ProfileForm(initial={**request.POST.dict(), **refreshed_flags(request.POST)})
        rows = OverrideRows(flags=form.shown_flags(), data=request.POST, stored={})
    elif request.method == "POST":
        form = ProfileForm(request.POST)
        rows = OverrideRows(flags=form.shown_flags(), data=request.POST, stored={}, check=True)
        if form.is_valid() and not rows.errors:
            try:
                saved = profiles.save_profile(
                    request.organization,
                    name=form.cleaned_data["name"],
                    flags=form.flags(),
                    values=rows.values,
                    by=request.user,
                    profile=profile,
                )
            except ValidationError as error:
                form.add_error(None, ValidationError(error.messages))
            else:
                followers = saved.assignments.count()
                if profile is not None and followers:
                    messages.success(
                        request,
                        f"“{saved.name}” saved. Its {followers} partner"
                        f"{'s' if followers != 1 else ''} keep their settings until you apply "
                        "it again: see below what that would change.",
                    )
                    url = f"{_apply_url(request, saved)}?following=1"
                    return redirect(url)
                messages.success(request, f"“{saved.name}” saved.")
                return redirect("settings_sync:profiles", org=request.organization.slug)
        status = 400
    else:
        initial = {"data_sync_enabled": True}
        if profile is not None:
            initial = {"name": profile.name, **profile.flags}
        form = ProfileForm(initial=initial)
        rows = OverrideRows(flags=form.shown_flags(), stored=stored)
    template = "settings_sync/profile_form.html"
    if request.htmx:
        template += "#form"
    return render(
        request,
        template,
        {"tab": "partnerships", "form": form, "override_rows": rows, "profile": profile},
        status=status,
    )


@organization_view
@require_POST
def profile_archive(request: HttpRequest, pk: int) -> HttpResponse:
    _require_admin(request)
    profile = _profile(request, pk)
    profiles.archive_profile(profile, by=request.user)
    messages.success(
        request,
        f"“{profile.name}” is archived. Partners that followed it keep their settings.",
    )
    return redirect("settings_sync:profiles", org=request.organization.slug)


def _apply_url(request: HttpRequest, profile: SyncProfile) -> str:
    return reverse(
        "settings_sync:profile-apply", kwargs={"org": request.organization.slug, "pk": profile.pk}
    )


def _matching(request: HttpRequest, profile: SyncProfile, params) -> tuple:
    """The partnerships the search and filter of ``params`` match (the Partnerships tab's
    search by partner name; ``following`` narrows to the profile's followers)."""
    query = params.get("q", "").strip()
    found = profiles.applicable(profile).select_related("upstream", "downstream")
    if query:
        found = (
            found.filter(downstream__name__icontains=query) if can_match(query) else found.none()
        )
    following = params.get("following") == "1"
    if following:
        found = found.filter(profile_assignment__profile=profile)
    return found.order_by("downstream__name", "pk"), query, following


def _chosen(request: HttpRequest, profile: SyncProfile) -> tuple[list[Partnership], dict]:
    """The partnerships a preview or an apply is for: every one matching the search
    (``scope=all``), or the rows ticked. A ticked id that is not one of this channel
    manager's active partnerships is a forgery: 404, nothing done."""
    found, query, following = _matching(request, profile, request.POST)
    scope = {"q": query, "following": "1" if following else ""}
    if request.POST.get("scope") == "all":
        return list(found), {**scope, "scope": "all"}
    try:
        ids = sorted({int(value) for value in request.POST.getlist("partnership")})
    except ValueError:
        raise Http404("Unknown partner.") from None
    chosen = list(
        profiles.applicable(profile).filter(pk__in=ids).select_related("upstream", "downstream")
    )
    if len(chosen) != len(ids):
        raise Http404("Unknown partner.")
    return chosen, {**scope, "ids": ids}


@organization_view
@require_http_methods(["GET", "POST"])
def profile_apply(request: HttpRequest, pk: int) -> HttpResponse:
    """Pick partners (ticked rows, or all matching the search), see the fleet preview,
    confirm: the partners get the profile's flags and overrides, their runs one batch."""
    _require_admin(request)
    profile = _profile(request, pk)
    context = {"tab": "partnerships", "profile": profile}
    if request.method == "POST":
        chosen, scope = _chosen(request, profile)
        if not chosen:
            messages.error(request, "Tick at least one partner, or apply to all that match.")
            return redirect(_apply_url(request, profile))
        if request.POST.get("action") == "apply":
            try:
                batch, refused = profiles.apply_profile(
                    profile, [p.pk for p in chosen], by=request.user
                )
            except ValidationError as error:  # a partnership ended since the preview
                messages.error(request, f"Nothing was applied: {' '.join(error.messages)}")
                return redirect(_apply_url(request, profile))
            for partnership, reason in refused:
                messages.warning(request, f"{partnership.downstream} kept its settings: {reason}")
            return redirect("settings_sync:batch", org=request.organization.slug, pk=batch.pk)
        context.update(
            {"fleet": previews.fleet_preview(profile, chosen), "chosen": chosen, "scope": scope}
        )
        return render(request, "settings_sync/profile_apply.html", context)
    found, query, following = _matching(request, profile, request.GET)
    page = Paginator(found, PAGE_SIZE).get_page(request.GET.get("page"))
    context.update({"page": page, "query": query, "following": following})
    return render(request, "settings_sync/profile_apply.html", context)


class ProfileChoicePart:
    """The invitation and request forms' optional sync profile (``partnerships.hooks``): its
    flags replace the form's, its overrides start the partnership (docs/design.md §12.3)."""

    FIELD = "sync_profile"

    def __init__(self, request: HttpRequest, data, *, validate: bool) -> None:
        self.request = request
        self.choices = list(SyncProfile.objects.live().filter(organization=request.organization))
        value = (data or {}).get(self.FIELD, "") if data is not None else ""
        self.profile = next((p for p in self.choices if str(p.pk) == value), None)
        self.errors = []
        if value and self.profile is None and validate:
            self.errors = ["Choose one of your sync profiles, or none."]

    @property
    def flags(self) -> dict | None:
        return self.profile.flags if self.profile else None

    @property
    def overrides(self) -> dict | None:
        return self.profile.overrides if self.profile else None

    @property
    def html(self) -> str:
        if not self.choices:
            return ""
        return render_to_string(
            "settings_sync/includes/profile_choice.html",
            {"part": self, "field": self.FIELD},
            request=self.request,
        )

    def save(self, offer) -> None:
        if self.profile is None:
            return
        field = "invitation" if isinstance(offer, Invitation) else "partnership_request"
        ProfileOffer.objects.create(profile=self.profile, **{field: offer})


def offer_form_part(request: HttpRequest, data, *, validate: bool) -> ProfileChoicePart:
    return ProfileChoicePart(request, data, validate=validate)

"""Generic settings pages, driven by the registry: a list per collection, a form per
singleton. The page comes from the URL; everything else from its registry entry."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from organizations.access import can_edit_organization_settings, organization_view
from organizations.search import can_match
from partnerships.models import Partnership

from . import catalogue, conflicts
from .locks import is_item_locked, lock_for
from .pages import SettingsPage

PAGE_SIZE = 50


def _editable(request: HttpRequest, lock: Partnership | None) -> bool:
    return lock is None and can_edit_organization_settings(request.membership)


def _require_editable(request: HttpRequest, page: SettingsPage, lock: Partnership | None) -> None:
    """Refuse a change server-side, whatever the page showed (403, nothing changes)."""
    if lock is not None:
        raise PermissionDenied(
            f"{page.label} are managed by {lock.upstream}, who keeps them equal to theirs; "
            "they are read-only here."
        )
    if not can_edit_organization_settings(request.membership):
        raise PermissionDenied("Only an admin of this organization can change its settings.")


def _require_unlocked(item) -> None:
    """Refuse a change of an item locked by a channel manager above (403, nothing changes),
    though others in its category may be editable (docs/design.md §14.3)."""
    if is_item_locked(item):
        raise PermissionDenied(
            f"“{item}” is managed by {item.managed_by or 'your channel manager'}; "
            "it is read-only here."
        )


def _page_url(request: HttpRequest, page: SettingsPage) -> str:
    return reverse(
        "settings_sync:page",
        kwargs={"org": request.organization.slug, "group": page.group, "key": page.key},
    )


def _context(request: HttpRequest, page: SettingsPage, lock: Partnership | None, **extra) -> dict:
    group_pages = catalogue.pages_in(page.group)
    return {
        "tab": page.group,
        "page": page,
        "group_pages": group_pages,
        "group_has_local_pages": any(not p.synced for p in group_pages),
        "lock": lock,
        "can_edit": _editable(request, lock),
        **extra,
    }


@organization_view
def group_index(request: HttpRequest, group: str) -> HttpResponse:
    pages = catalogue.pages_in(group)
    return redirect(_page_url(request, pages[0]))


@organization_view
@require_http_methods(["GET", "POST"])
def settings_page(request: HttpRequest, group: str, key: str) -> HttpResponse:
    page = catalogue.page_or_404(group, key)
    lock = lock_for(request.organization, page)
    if page.is_list:
        if request.method == "POST":
            _require_editable(request, page, lock)
            return redirect(_page_url(request, page))
        return _list(request, page, lock)
    return _singleton(request, page, lock)


def _list(request: HttpRequest, page: SettingsPage, lock) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    items = page.model.objects.filter(organization=request.organization)
    if query and page.search_fields:
        condition = Q()
        for name in page.search_fields:
            condition |= Q(**{f"{name}__icontains": query})
        items = items.filter(condition) if can_match(query) else items.none()
    # The page's ids first, then its rows with their provenance: the joins and the update
    # check run for the 50 rows shown, not for every item sorted (docs/design.md §10).
    items_page = Paginator(
        items.order_by(*page.model._meta.ordering, "pk").values_list("pk", flat=True), PAGE_SIZE
    ).get_page(request.GET.get("page"))
    ids = list(items_page.object_list)
    rows = page.model.objects.filter(pk__in=ids)
    if page.synced and page.is_collection:
        rows = rows.for_list()
        if lock is None:
            rows = conflicts.with_update_available(rows)
    by_pk = {row.pk: row for row in rows} if ids else {}
    items_page.object_list = [by_pk[pk] for pk in ids]
    shared = _shared_by_channel_managers(request, page) if page.shared_with_partners else []
    return render(
        request,
        "settings_sync/list.html",
        _context(
            request,
            page,
            lock,
            items_page=items_page,
            query=query,
            shared=shared,
            transferable=page.synced and page.transferable,
        ),
    )


def _shared_by_channel_managers(request: HttpRequest, page: SettingsPage):
    """The items this organization's channel managers share on this page (read-only here)."""
    upstream_ids = (
        Partnership.objects.active().filter(downstream=request.organization).values("upstream_id")
    )
    return page.model.objects.filter(organization__in=upstream_ids).select_related("organization")


def _singleton(request: HttpRequest, page: SettingsPage, lock) -> HttpResponse:
    row = page.model.for_organization(request.organization)
    form = None
    if _editable(request, lock):
        form = page.form_class(request.POST or None, instance=row)
    elif request.method == "POST":
        _require_editable(request, page, lock)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, f"{page.label} saved.")
        return redirect(_page_url(request, page))
    values = [
        (row._meta.get_field(name).verbose_name, _display(row, name))
        for name in page.form_class._meta.fields
    ]
    return render(
        request,
        "settings_sync/singleton.html",
        _context(request, page, lock, row=row, form=form, values=values),
        status=400 if form is not None and form.is_bound else 200,
    )


def _display(obj, name: str):
    display = getattr(obj, f"get_{name}_display", None)
    return display() if display else getattr(obj, name)


@organization_view
@require_http_methods(["GET", "POST"])
def item_form(request: HttpRequest, group: str, key: str, pk: int | None = None) -> HttpResponse:
    page = catalogue.page_or_404(group, key)
    if not page.is_list:
        return redirect(_page_url(request, page))
    lock = lock_for(request.organization, page)
    _require_editable(request, page, lock)
    item = None
    if pk is not None:
        item = get_object_or_404(
            page.model.objects.filter(organization=request.organization), pk=pk
        )
        _require_unlocked(item)
    form = page.form_class(request.POST or None, instance=item, organization=request.organization)
    if request.method == "POST" and form.is_valid():
        saved = form.save()
        messages.success(request, f"{page.item_label.capitalize()} “{saved}” saved.")
        return redirect(_page_url(request, page))
    return render(
        request,
        "settings_sync/item_form.html",
        _context(request, page, lock, form=form, item=item),
        status=400 if form.is_bound else 200,
    )


@organization_view
@require_http_methods(["GET", "POST"])
def item_archive(request: HttpRequest, group: str, key: str, pk: int) -> HttpResponse:
    page = catalogue.page_or_404(group, key)
    lock = lock_for(request.organization, page)
    _require_editable(request, page, lock)
    if not page.is_list:
        raise Http404("A single setting is edited, never deleted.")
    item = get_object_or_404(page.model.objects.filter(organization=request.organization), pk=pk)
    _require_unlocked(item)
    archivable = hasattr(item, "archive")
    if request.method == "POST":
        with transaction.atomic():
            if archivable:
                item.archive(by=request.user, reason="Deleted in Organization Settings")
            else:
                item.delete()  # never-synced settings have no history to keep
        messages.success(request, f"{page.item_label.capitalize()} “{item}” deleted.")
        return redirect(_page_url(request, page))
    return render(
        request,
        "settings_sync/item_archive.html",
        _context(request, page, lock, item=item, archivable=archivable),
    )

"""Export and import pages: thin views over :mod:`settings_sync.exports` and
:mod:`settings_sync.imports` (docs/design.md §11)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from organizations.access import organization_view, require_admin

from . import catalogue, exports, imports, registry, spreadsheets
from .locks import lock_for
from .models import Import
from .views import _context, _require_editable


class ImportForm(forms.Form):
    file = forms.FileField(
        label="File",
        help_text="CSV (comma or semicolon separated, UTF-8) or Excel workbook (.xlsx); "
        "at most 5 MB and 20,000 rows.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.xlsx,text/csv"}),
    )
    archive_missing = forms.BooleanField(
        label="Archive items missing from the file",
        required=False,
        help_text="Items of yours that the file does not list are archived (they can be "
        "restored). Leave unticked to only add and update.",
    )


def _category_or_404(group: str, key: str) -> registry.Category:
    page = catalogue.page_or_404(group, key)
    category = registry.find(page.key)
    if category is None or not imports.importable(category):
        raise Http404("Only lists of settings with a natural key are imported and exported.")
    return category


def _format(request: HttpRequest) -> str:
    fmt = request.GET.get("format", spreadsheets.CSV)
    return fmt if fmt in spreadsheets.FORMATS else spreadsheets.CSV


@organization_view
@require_GET
def export_items(request: HttpRequest, group: str, key: str) -> HttpResponse:
    category = _category_or_404(group, key)
    return exports.export_category(
        category=category, organization=request.organization, fmt=_format(request)
    )


@organization_view
@require_GET
def export_history(request: HttpRequest) -> HttpResponse:
    return exports.export_history(
        organization=request.organization,
        status=request.GET.get("status", ""),
        fmt=_format(request),
    )


@organization_view
@require_GET
def import_template(request: HttpRequest, group: str, key: str) -> HttpResponse:
    category = _category_or_404(group, key)
    return exports.template(category=category, organization=request.organization)


@organization_view
@require_http_methods(["GET", "POST"])
def import_upload(request: HttpRequest, group: str, key: str) -> HttpResponse:
    category = _category_or_404(group, key)
    lock = lock_for(request.organization, category)
    # Decided before the file is read: a locked category or a member gets 403.
    _require_editable(request, category, lock)
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            spreadsheets.refuse_oversized(upload.size)  # before the file is read
            started = imports.start_import(
                organization=request.organization,
                category=category,
                file_name=upload.name,
                content=upload.read(),
                archive_missing=form.cleaned_data["archive_missing"],
                by=request.user,
            )
        except ValidationError as error:
            form.add_error("file", error)
        else:
            return redirect("settings_sync:import", org=request.organization.slug, pk=started.pk)
    return render(
        request,
        "settings_sync/import_upload.html",
        _context(request, category, lock, form=form),
        status=400 if form.is_bound else 200,
    )


def _own_import(request: HttpRequest, pk: int) -> Import:
    return get_object_or_404(Import.objects.filter(organization=request.organization), pk=pk)


@organization_view
@require_GET
def import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    upload = _own_import(request, pk)
    category = registry.get(upload.category)
    require_admin(request)
    lock = lock_for(request.organization, category)
    plan = None
    if upload.status == Import.Status.PLANNED:
        plan = imports.plan_of(upload)
    return render(
        request,
        "settings_sync/import_detail.html",
        _context(request, category, lock, upload=upload, plan=plan),
    )


@organization_view
@require_POST
def import_apply(request: HttpRequest, pk: int) -> HttpResponse:
    upload = _own_import(request, pk)
    category = registry.get(upload.category)
    _require_editable(request, category, lock_for(request.organization, category))
    try:
        plan = imports.apply_import(
            upload=upload, expected_digest=request.POST.get("digest", ""), by=request.user
        )
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
        return redirect("settings_sync:import", org=request.organization.slug, pk=upload.pk)
    counts = plan.counts
    messages.success(
        request,
        f"Imported {upload.file_name}: {counts['create']} created, {counts['update']} updated, "
        f"{counts['unchanged']} unchanged, {counts['archive']} archived.",
    )
    return redirect(
        reverse(
            "settings_sync:page",
            kwargs={"org": request.organization.slug, "group": category.group, "key": category.key},
        )
    )


@organization_view
@require_GET
def import_history(request: HttpRequest) -> HttpResponse:
    uploads = Import.objects.filter(organization=request.organization).select_related("created_by")[
        :200
    ]
    for upload in uploads:
        upload.category_label = registry.get(upload.category).label
    return render(
        request,
        "settings_sync/import_history.html",
        {"tab": "history", "uploads": uploads},
    )

"""The partner's page for an update waiting on one item: the comparison (theirs, yours, last
synced) and the two answers, *take theirs* and *keep mine* (docs/design.md §13).

The comparison opens in place under the item's row (htmx asks for the ``comparison-row``
partial) or as a page of its own without JavaScript; the answers are plain form posts.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from organizations.access import can_edit_organization_settings, organization_view

from . import catalogue, conflicts
from .locks import is_item_locked, lock_for
from .views import _context as page_context

TAKE = "take"
KEEP = "keep"


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[(TAKE, "Take theirs"), (KEEP, "Keep mine")], widget=forms.HiddenInput
    )
    note = forms.CharField(
        label="Why you keep your version (optional)",
        required=False,
        max_length=conflicts.NOTE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Your channel manager sees this note beside the item.",
    )


@organization_view
@require_http_methods(["GET", "POST"])
def item_update(request: HttpRequest, group: str, key: str, pk: int) -> HttpResponse:
    page = catalogue.page_or_404(group, key)
    if not (page.synced and page.is_list and page.is_collection):
        raise PermissionDenied("Only synced lists have updates from a channel manager.")
    item = get_object_or_404(
        page.model.objects.filter(organization=request.organization).select_related(
            "synced_from", "synced_partnership__upstream", "managed_by"
        ),
        pk=pk,
    )
    list_url = reverse(
        "settings_sync:page",
        kwargs={"org": request.organization.slug, "group": group, "key": key},
    )
    if item.synced_partnership_id is None:
        messages.info(request, f"“{item}” is your own: no channel manager sends updates for it.")
        return redirect(list_url)
    lock = lock_for(request.organization, page)
    if lock is not None or is_item_locked(item):
        manager = item.managed_by or lock.upstream
        raise PermissionDenied(
            f"“{item}” is managed by {manager}: the sync keeps it equal to theirs, there is "
            "nothing to take or keep."
        )
    can_answer = can_edit_organization_settings(request.membership)
    form = DecisionForm(request.POST or None)
    error = ""
    if request.method == "POST":
        if not can_answer:
            raise PermissionDenied("Only an admin of this organization can answer an update.")
        if form.is_valid():
            try:
                if form.cleaned_data["decision"] == TAKE:
                    conflicts.take_upstream(item, by=request.user)
                    messages.success(
                        request,
                        f"“{item}” now has {conflicts.possessive_name(item.synced_partnership)} "
                        "version.",
                    )
                else:
                    conflicts.keep_local(item, by=request.user, note=form.cleaned_data["note"])
                    messages.success(
                        request,
                        f"You kept your version of “{item}”. You will hear again when "
                        f"{item.synced_partnership.upstream} changes it.",
                    )
                return redirect(list_url)
            except ValidationError as invalid:
                if hasattr(invalid, "error_dict"):
                    form.add_error(None, invalid)
                else:
                    error = " ".join(invalid.messages)
    context = page_context(
        request,
        page,
        lock,
        item=item,
        upstream=item.synced_partnership.upstream,
        waiting=conflicts.update_available(item),
        rows=conflicts.comparison(item),
        form=form,
        error=error,
        can_answer=can_answer,
        columns=len(page.columns) + 2,
    )
    template = "settings_sync/item_update.html"
    if request.htmx and request.method == "GET":
        template += "#comparison-row"
    return render(request, template, context, status=400 if form.is_bound else 200)

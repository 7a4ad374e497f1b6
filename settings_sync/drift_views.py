"""Drift of one partner, item by item: what the partner edited locally, its note, and whether
an update from the channel manager waits for it (docs/design.md §13.3)."""

from __future__ import annotations

from django import forms
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from organizations.access import organization_view
from partnerships.models import Partnership

from . import conflicts, registry


class DriftFilter(forms.Form):
    category = forms.ChoiceField(label="Category", required=False)
    state = forms.ChoiceField(
        label="Show", required=False, choices=list(conflicts.STATE_FILTERS.items())
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["category"].choices = [
            ("", "Every category"),
            *((c.key, c.label) for c in registry.all() if c.is_collection),
        ]
        for field in self.fields.values():
            field.widget.attrs["class"] = "form-select form-select-sm"


@organization_view
@require_GET
def partner_drift(request: HttpRequest, pk: int) -> HttpResponse:
    organization = request.organization
    partnership = get_object_or_404(
        Partnership.objects.select_related("upstream", "downstream").filter(
            Q(upstream=organization) | Q(downstream=organization)
        ),
        pk=pk,
    )
    form = DriftFilter(request.GET or None)
    category_key = state = ""
    if form.is_valid():
        category_key = form.cleaned_data["category"]
        state = form.cleaned_data["state"]
    rows = conflicts.drift(partnership, category_key=category_key, state=state)
    return render(
        request,
        "settings_sync/drift.html",
        {
            "tab": "partnerships",
            "partnership": partnership,
            "form": form,
            "rows": rows,
            "filtered": bool(category_key or state),
        },
        status=400 if form.is_bound and not form.is_valid() else 200,
    )

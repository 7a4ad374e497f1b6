"""Predict, watch and repair: previews, history, drift, resync with progress, the help page."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import timesince_filter
from django.template.loader import render_to_string
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRefresh

from organizations.access import can_edit_organization_settings, organization_view
from organizations.models import Organization
from partnerships import modes
from partnerships.forms import FlagsFormMixin, refreshed_flags
from partnerships.models import Partnership
from partnerships.network import organizations_below
from partnerships.permissions import can_edit_flags
from partnerships.templatetags.partnership_tags import mode_label

from . import engine, history_values, overrides, policy, previews, registry, services, status
from .locks import is_item_locked, lock_for
from .models import SyncBatch, SyncChange, SyncRun
from .override_forms import OverrideRows
from .run_tree import cascade_of
from .templatetags.settings_tags import run_status

# Hooks on partnership pages -----------------------------------------------------------------


def decorate_partner_list(request: HttpRequest, partnerships: list) -> bool:
    """The Partnerships tab's sync column: last run and drift, read for the page in bulk, set
    on each partnership as ``sync_status``, and its cell's HTML as ``sync_cell``."""
    by_pk = status.statuses(partnerships)
    for partnership in partnerships:
        partnership.sync_status = by_pk[partnership.pk]
        partnership.sync_cell = sync_cell(partnership)
    return True


def sync_cell(partnership: Partnership) -> SafeString:
    """A partnership's cell in the sync column: its last run, the categories whose override
    makes them differ from its mode, and its drift. Written in Python, not a template: the
    tab shows one in each row and an include per row cost more than the rest of the row
    (docs/design.md §10)."""
    partner_status = partnership.sync_status
    last_run = partner_status.last_run
    if last_run is not None:
        ago = escape(timesince_filter(last_run.created_at))
        parts = [f'{run_status(last_run)} <span class="text-body-secondary">{ago} ago</span>']
    else:
        parts = [_NEVER_SYNCED]
    active = partnership.is_active
    if partner_status.otherwise and active:
        otherwise = " · ".join(
            f"{escape(label)}: {escape(mode_label(mode))}"
            for label, mode in partner_status.otherwise
        )
        parts.append(f'<div data-testid="otherwise">{otherwise}</div>')
    if partnership.data_sync_enabled and active:
        if partner_status.drift:
            stale = f" · {int(partner_status.stale)} out of date" if partner_status.stale else ""
            parts.append(
                '<div data-testid="drift"><span class="text-warning-emphasis"><i class="bi '
                'bi-exclamation-triangle" aria-hidden="true"></i> '
                f"{int(partner_status.diverged)} diverged · {int(partner_status.missing)} missing"
                f"{stale}</span></div>"
            )
        else:
            parts.append(_IN_SYNC)
    return mark_safe(f'<div class="small">{"".join(parts)}</div>')  # noqa: S308 (escaped)


_NEVER_SYNCED = mark_safe('<span class="text-body-secondary">Never synced</span>')
_IN_SYNC = mark_safe(
    '<div data-testid="drift"><span class="text-success"><i class="bi bi-check2" '
    'aria-hidden="true"></i> In sync</span></div>'
)


def partnership_section(request: HttpRequest, partnership: Partnership, *, oob: bool) -> str:
    """Sync status, drift, resync and history on a partnership's page."""
    partner_status = status.statuses([partnership])[partnership.pk]
    runs = list(SyncRun.objects.filter(partnership=partnership).for_list()[:10])
    return render_to_string(
        "settings_sync/includes/partnership_section.html",
        {
            "partnership": partnership,
            "status": partner_status,
            "runs": runs,
            "diverged": status.diverged_items(partnership),
            "can_resync": _can_resync(request, partnership),
            "current_organization": request.organization,
            "oob": oob,
        },
        request=request,
    )


def flag_preview(request: HttpRequest, edited: Partnership, stored_mode: str) -> str:
    """What saving the flags and per-category overrides shown in the form would do to the
    partner: the flags' event, and the runs of the categories whose override changed, shown
    as one plan (docs/design.md §12.2)."""
    event = policy.event_for_mode_change(stored_mode, edited.mode)
    plan = previews.change_plan(
        edited, stored_mode=stored_mode, stored_overrides=overrides.saved_overrides(edited.pk)
    )
    reach = 0
    if plan is not None and plan.writes_anything:  # what is written travels on (§14.1)
        reach = organizations_below(edited.downstream)
    return render_to_string(
        "settings_sync/includes/preview.html",
        {
            "plan": plan,
            "event": event,
            "partner": edited.downstream,
            "reach": reach,
            "when": "save" if event is not None else "save_categories",
            "nothing": "Saving these flags starts no sync: no category changes mode.",
        },
        request=request,
    )


def offer_preview(
    request: HttpRequest,
    *,
    upstream: Organization,
    downstream: Organization | None,
    flags: dict,
    name: str,
    invited: bool,
    overrides: dict | None = None,
    named_by=None,
) -> str:
    """What an invited (new) or requested (existing) organization would receive.

    ``downstream`` is given only where that organization's own admins look: the page on which
    they answer a request. A channel manager asking an existing organization sees a plan
    made against an empty stand-in instead, the same whichever organization it names: it
    counts what the channel manager sends and nothing of what the other organization holds,
    which a stranger must not be able to read through the preview.
    """
    own_side_only = downstream is None and not invited
    if downstream is not None:
        partner = downstream
    elif invited:
        partner = Organization(name=name or "the new organization")
    else:
        partner = Organization(name="the organization you ask")
    offer = Partnership(upstream=upstream, downstream=partner, **flags)
    named = getattr(named_by, "profile_offer", None) if named_by is not None else None
    if named is not None:
        overrides = named.profile.overrides
    if overrides:
        offer.pending_overrides = overrides  # a sync profile named by the offer
    event = policy.INVITE if invited else policy.LINK
    plan = engine.preview(offer, event) if offer.data_sync_enabled else None
    return render_to_string(
        "settings_sync/includes/preview.html",
        {
            "plan": plan,
            "event": event,
            "partner": partner,
            "heading": "Preview of what you send" if own_side_only else "",
            "when": "invite" if invited else "answer" if downstream is not None else "request",
            "own_side_only": own_side_only,
            "nothing": "With Data Sync off, nothing is copied.",
        },
        request=request,
    )


# Resync ---------------------------------------------------------------------------------


def _can_resync(request: HttpRequest, partnership: Partnership) -> bool:
    return can_edit_flags(request.membership, partnership) and partnership.data_sync_enabled


def _own_partnership(request: HttpRequest, pk: int) -> Partnership:
    return get_object_or_404(
        Partnership.objects.select_related("upstream", "downstream").filter(
            Q(upstream=request.organization) | Q(downstream=request.organization)
        ),
        pk=pk,
    )


@organization_view
@require_http_methods(["GET", "POST"])
def resync(request: HttpRequest, pk: int) -> HttpResponse:
    partnership = _own_partnership(request, pk)
    if not _can_resync(request, partnership):
        raise PermissionDenied(
            "Only an admin of the channel manager can resync an active partnership with "
            "Data Sync on."
        )
    if request.method == "POST":
        (sync_run,) = services.resync_partnerships(
            [partnership], by=request.user, trigger="Resync now"
        )
        return redirect("settings_sync:run", org=request.organization.slug, pk=sync_run.pk)
    plan = engine.preview(partnership, policy.RESYNC)
    return render(
        request,
        "settings_sync/resync.html",
        {"tab": "partnerships", "partnership": partnership, "plan": plan},
    )


#: How many partners the confirmation of *Resync all partners* previews: a preview reads every
#: category of each, so a network of thousands is counted, not planned.
RESYNC_ALL_PREVIEW_LIMIT = 20


@organization_view
@require_http_methods(["GET", "POST"])
def resync_all(request: HttpRequest) -> HttpResponse:
    if not can_edit_organization_settings(request.membership):
        raise PermissionDenied("Only an admin can resync partners.")
    if request.method == "POST":
        batch = services.resync_all_partners(request.organization, by=request.user)
        return redirect("settings_sync:batch", org=request.organization.slug, pk=batch.pk)
    partnerships = services.resyncable_partnerships(request.organization)
    count = partnerships.count()
    previewed = list(
        partnerships.select_related("upstream", "downstream").order_by("downstream__name", "pk")[
            :RESYNC_ALL_PREVIEW_LIMIT
        ]
    )
    plans = engine.preview_many(previewed, policy.RESYNC)
    return render(
        request,
        "settings_sync/resync_all.html",
        {
            "tab": "partnerships",
            "count": count,
            "previewed": len(previewed),
            "not_previewed": count - len(previewed),
            "summary": _summed(plan.summary() for plan in plans),
            "changing": sum(1 for plan in plans if plan.writes_anything),
        },
    )


BATCH_RUNS_PAGE_SIZE = 50


@organization_view
@require_GET
def batch(request: HttpRequest, pk: int) -> HttpResponse:
    """A resync of many partners: a progress bar that follows the runs until they end."""
    sync_batch = get_object_or_404(SyncBatch, pk=pk, organization=request.organization)
    counts = dict(sync_batch.runs.values_list("status").annotate(n=Count("pk")).order_by())
    # Counted by partner: a profile may start two runs for one (docs/design.md §12.3).
    partners = sync_batch.runs.values("partnership").distinct()
    total = partners.count()
    done = total - partners.filter(status__in=SyncRun.PENDING).count()
    context = {
        "tab": "history",
        "batch": sync_batch,
        "total": total,
        "done": done,
        "counts": counts,
        "percent": round(100 * done / total) if total else 100,
        "finished": done == total,
    }
    if context["finished"]:
        context["summary"] = _batch_summary(sync_batch)
        context["failed_runs"] = list(
            sync_batch.runs.filter(status="failed").select_related("partnership__downstream")
        )
        context["runs_page"] = Paginator(
            sync_batch.runs.select_related("partnership__downstream").order_by(
                "partnership__downstream__name", "pk"
            ),
            BATCH_RUNS_PAGE_SIZE,
        ).get_page(request.GET.get("page"))
    template = "settings_sync/batch.html"
    if request.htmx:
        template += "#progress"
    return render(request, template, context)


def _batch_summary(sync_batch: SyncBatch) -> dict[str, dict[str, int]]:
    return _summed(sync_batch.runs.values_list("counts", flat=True))


def _summed(summaries) -> dict[str, dict[str, int]]:
    """Category → action → count, added up over several runs or plans."""
    total: dict[str, dict[str, int]] = {}
    for counts in summaries:
        for key, actions in (counts or {}).items():
            for action, count in actions.items():
                total.setdefault(key, {}).setdefault(action, 0)
                total[key][action] += count
    return total


# History ---------------------------------------------------------------------------------


def _runs_of(organization: Organization):
    return SyncRun.objects.filter(
        Q(partnership__upstream=organization) | Q(partnership__downstream=organization)
    )


@organization_view
@require_GET
def history(request: HttpRequest) -> HttpResponse:
    runs = _runs_of(request.organization).for_list()
    status_filter = request.GET.get("status", "")
    if status_filter in SyncRun.Status.values:
        runs = runs.filter(status=status_filter)
    page = Paginator(runs, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "settings_sync/history.html",
        {"tab": "history", "page": page, "status_filter": status_filter},
    )


CHANGES_PER_PAGE = 100


@organization_view
@require_GET
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    sync_run = get_object_or_404(_runs_of(request.organization).for_list(), pk=pk)
    # A run can hold thousands of changes: they come a page at a time (docs/design.md §10).
    page = Paginator(sync_run.changes.all(), CHANGES_PER_PAGE).get_page(request.GET.get("page"))
    changes = list(page.object_list)
    history_values.fill(changes)
    restorable = _restorable(request, sync_run, changes)
    context = {
        "tab": "history",
        "run": sync_run,
        "changes": changes,
        "page": page,
        "restorable": restorable,
        "can_retry": sync_run.status == SyncRun.Status.FAILED
        and can_edit_organization_settings(request.membership)
        and sync_run.partnership.upstream_id == request.organization.pk,
        "running": sync_run.status in SyncRun.PENDING,
        "cascade": cascade_of(sync_run, request.organization),
    }
    template = "settings_sync/run.html"
    if request.htmx:
        if not context["running"]:
            return HttpResponseClientRefresh()  # finished: show the whole page with changes
        template += "#run-status"
    return render(request, template, context)


def _restorable(request: HttpRequest, sync_run: SyncRun, changes: list[SyncChange]) -> set[int]:
    """Archived items of this run that the partner's admin may bring back now."""
    partnership = sync_run.partnership
    if partnership.downstream_id != request.organization.pk or not can_edit_organization_settings(
        request.membership
    ):
        return set()
    archived = [change for change in changes if change.action == SyncChange.Action.ARCHIVED]
    restorable = set()
    by_category: dict[str, list[SyncChange]] = {}
    for change in archived:
        by_category.setdefault(change.category, []).append(change)
    for key, category_changes in by_category.items():
        category = registry.get(key)
        if lock_for(request.organization, category) is not None:
            continue
        still_archived = {
            item.pk
            for item in category.model.all_objects.filter(
                organization=request.organization,
                pk__in=[change.item_id for change in category_changes],
                archived_at__isnull=False,
            )
            if not is_item_locked(item)
        }
        restorable |= {c.pk for c in category_changes if c.item_id in still_archived}
    return restorable


@organization_view
@require_POST
def retry_run(request: HttpRequest, pk: int) -> HttpResponse:
    sync_run = get_object_or_404(
        SyncRun, pk=pk, partnership__upstream=request.organization, status=SyncRun.Status.FAILED
    )
    if not can_edit_organization_settings(request.membership):
        raise PermissionDenied("Only an admin can retry a sync.")
    retried = services.retry_run(sync_run, by=request.user)
    messages.info(request, "The sync is being retried; this page follows it until it ends.")
    return redirect("settings_sync:run", org=request.organization.slug, pk=retried.pk)


@organization_view
@require_POST
def restore_change(request: HttpRequest, pk: int, change_pk: int) -> HttpResponse:
    sync_run = get_object_or_404(_runs_of(request.organization), pk=pk)
    change = get_object_or_404(sync_run.changes, pk=change_pk, action=SyncChange.Action.ARCHIVED)
    if change.pk not in _restorable(request, sync_run, [change]):
        raise PermissionDenied("This item cannot be restored here.")
    category = registry.get(change.category)
    item = category.model.all_objects.get(pk=change.item_id)
    try:
        item.restore()
    except ValidationError as error:
        messages.error(request, f"“{item}” was not restored: {' '.join(error.messages)}")
    else:
        messages.success(request, f"“{item}” is back among your {category.label.lower()}.")
    return redirect("settings_sync:run", org=request.organization.slug, pk=sync_run.pk)


# Help: how will my settings sync? --------------------------------------------------------


class PredictorForm(FlagsFormMixin, forms.Form):
    event = forms.ChoiceField(
        label="Event", choices=[(e, policy.EVENT_LABELS[e]) for e in policy.EVENTS]
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.add_flag_fields()
        self.order_fields([*modes.FLAG_NAMES, "event"])


@login_required
@require_GET
def help_page(request: HttpRequest) -> HttpResponse:
    """The policy table, straight from :mod:`settings_sync.policy`, and a predictor."""
    asked = "event" in request.GET
    flags = refreshed_flags(request.GET) if asked else {"data_sync_enabled": True}
    event = request.GET.get("event", policy.LINK)
    if event not in policy.EVENTS:
        event = policy.LINK
    form = PredictorForm(initial={**flags, "event": event})
    mode = form.current_mode
    rows = OverrideRows(flags=form.shown_flags(), data=request.GET if asked else None)
    prediction = [
        (category, policy.outcome(row.effective, event, category.kind), row)
        for category, row in zip(registry.all(), rows.rows(), strict=True)
    ]
    context = {
        "form": form,
        "override_rows": rows,
        "mode": mode,
        "event": event,
        "event_description": policy.EVENT_DESCRIPTIONS[event],
        "prediction": prediction,
        "table": _policy_rows(),
        "outcomes": policy.OUTCOME_DESCRIPTIONS,
        "modes": [(m, modes.MODE_LABELS[m], modes.MODE_DESCRIPTIONS[m]) for m in modes.MODES],
        "events": [
            (e, policy.EVENT_LABELS[e], policy.EVENT_DESCRIPTIONS[e]) for e in policy.EVENTS
        ],
        "categories_by_kind": {
            kind: [c.label for c in registry.all() if c.kind == kind] for kind in policy.KINDS
        },
    }
    template = "settings_sync/help.html"
    if request.htmx:
        template += "#predictor"
    return render(request, template, context)


def _policy_rows() -> list[tuple[str, str, list[str]]]:
    kind_labels = {
        policy.COLLECTION: "Collections",
        policy.SINGLETON: "Singletons",
        policy.INVITE_ONLY: "Invite-only",
    }
    return [
        (
            kind_labels[kind],
            policy.EVENT_LABELS[event],
            [policy.outcome(mode, event, kind) for mode in policy.SYNCING_MODES],
        )
        for event in policy.EVENTS
        for kind in policy.KINDS
    ]

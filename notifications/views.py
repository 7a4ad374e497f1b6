"""A user's notifications page, email preferences, and the one-click unsubscribe link."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from organizations.models import Membership, Organization

from . import emails
from .models import EmailPreference, Notification

PAGE_SIZE = 50


@login_required
def inbox(request: HttpRequest) -> HttpResponse:
    notifications = Notification.objects.filter(user=request.user).select_related("organization")
    page = Paginator(notifications, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "notifications/inbox.html", {"page": page})


@login_required
@require_http_methods(["GET"])
def open_notification(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark it read and go to the page that explains it."""
    notification = get_object_or_404(Notification, pk=pk, user=request.user)
    if notification.read_at is None:
        Notification.objects.filter(pk=pk).update(read_at=timezone.now())
    if not url_has_allowed_host_and_scheme(notification.url, allowed_hosts=None):
        return redirect("notifications:inbox")
    return redirect(notification.url)


@login_required
@require_POST
def mark_read(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    notifications = Notification.objects.filter(user=request.user, read_at__isnull=True)
    if pk is not None:
        get_object_or_404(Notification, pk=pk, user=request.user)
        notifications = notifications.filter(pk=pk)
    count = notifications.update(read_at=timezone.now())
    if pk is None:
        messages.success(request, f"{count} notification{'s' if count != 1 else ''} marked read.")
    return redirect("notifications:inbox")


class PreferencesForm(forms.Form):
    """One choice per organization the user belongs to."""

    def __init__(self, *args, memberships, chosen: dict[int, str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for membership in memberships:
            organization = membership.organization
            self.fields[f"organization_{organization.pk}"] = forms.ChoiceField(
                label=organization.name,
                choices=EmailPreference.Frequency.choices,
                initial=chosen.get(organization.pk, EmailPreference.DEFAULT),
                widget=forms.Select(attrs={"class": "form-select"}),
                help_text="You are an admin there: you are told about its syncs and partners."
                if membership.is_admin
                else "You are a member there: admins get its notifications.",
            )


@login_required
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    memberships = list(Membership.objects.for_user(request.user))
    chosen = dict(
        EmailPreference.objects.filter(user=request.user).values_list(
            "organization_id", "frequency"
        )
    )
    form = PreferencesForm(request.POST or None, memberships=memberships, chosen=chosen)
    if request.method == "POST" and form.is_valid():
        for membership in memberships:
            EmailPreference.objects.update_or_create(
                user=request.user,
                organization=membership.organization,
                defaults={
                    "frequency": form.cleaned_data[f"organization_{membership.organization_id}"]
                },
            )
        messages.success(request, "Your email preferences are saved.")
        return redirect("notifications:preferences")
    return render(
        request,
        "notifications/preferences.html",
        {"form": form},
        status=400 if form.is_bound else 200,
    )


# The link is its own credential (signed); mail programs post to it without a CSRF token
# (RFC 8058), and it works signed out.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        user_id, organization_id = emails.read_unsubscribe_token(token)
    except (signing.BadSignature, ValueError, TypeError):
        return render(request, "notifications/unsubscribe_invalid.html", status=400)
    organization = get_object_or_404(Organization, pk=organization_id)
    if not Membership.objects.filter(user_id=user_id, organization=organization).exists():
        return render(request, "notifications/unsubscribe_invalid.html", status=400)
    EmailPreference.objects.update_or_create(
        user_id=user_id,
        organization=organization,
        defaults={"frequency": EmailPreference.Frequency.NONE},
    )
    return render(request, "notifications/unsubscribed.html", {"organization": organization})

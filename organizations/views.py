"""Pages of the Organization tab: profile (name, logo) and licenses."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.csp import CSP
from django.views.decorators.csp import csp_override
from django.views.decorators.http import require_http_methods

from .access import (
    CURRENT_ORGANIZATION_SESSION_KEY,
    can_edit_organization_settings,
    organization_view,
    require_admin,
)
from .forms import OrganizationProfileForm
from .logos import logo_format
from .models import Membership, Organization


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Open the organization the user worked in last, or their first one."""
    memberships = Membership.objects.for_user(request.user)
    last = request.session.get(CURRENT_ORGANIZATION_SESSION_KEY)
    membership = memberships.filter(organization__slug=last).first() or memberships.first()
    if membership is None:
        return render(request, "organizations/no_organization.html")
    return redirect(membership.organization)


@organization_view
def settings_index(request: HttpRequest) -> HttpResponse:
    return redirect("organizations:organization", org=request.organization.slug)


@organization_view
@require_http_methods(["GET", "POST"])
def organization_tab(request: HttpRequest) -> HttpResponse:
    organization = request.organization
    form = None
    if can_edit_organization_settings(request.membership):
        # The form edits a copy, so a refused upload never shows as the current logo.
        editable = Organization.objects.get(pk=organization.pk)
        form = OrganizationProfileForm(
            request.POST or None, request.FILES or None, instance=editable
        )
    elif request.method == "POST":
        require_admin(request)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Organization details saved.")
        return redirect("organizations:organization", org=organization.slug)
    return render(
        request,
        "organizations/organization_tab.html",
        {
            "tab": "organization",
            "form": form,
            "licenses": organization.licenses.select_related("copied_from_organization"),
            "can_edit": form is not None,
        },
        status=400 if form is not None and form.is_bound else 200,
    )


#: A logo is an image and nothing else: should a file ever be read as a document, it may load
#: nothing, run nothing, and is sandboxed away from the site's origin.
LOGO_POLICY = {"default-src": [CSP.NONE], "sandbox": True}


@csp_override(LOGO_POLICY)
def logo(request: HttpRequest, org: str) -> FileResponse:
    """An organization's logo (public, like a logo on a proposal).

    Served with the content type of the format read from the file's bytes, never one guessed
    from its name; a stored file that is not an accepted image is not served at all.
    """
    organization = get_object_or_404(Organization, slug=org)
    if not organization.logo:
        raise Http404("This organization has no logo.")
    try:
        handle = organization.logo.open("rb")
    except FileNotFoundError as error:
        raise Http404("The logo file is missing.") from error
    image_format = logo_format(handle)
    if image_format is None:
        handle.close()
        raise Http404("This organization has no logo.")
    response = FileResponse(
        handle,
        content_type=image_format.content_type,
        filename=f"{organization.slug}-logo.{image_format.extension}",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "public, max-age=300"
    return response

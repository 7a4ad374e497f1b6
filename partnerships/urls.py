from django.urls import path

from . import views

app_name = "partnerships"

urlpatterns = [
    path("", views.partnership_list, name="list"),
    path("network/", views.network, name="network"),
    path("invite/", views.invite, name="invite"),
    path("request/", views.request_partnership, name="request"),
    path("request/organizations/", views.organization_search, name="organization-search"),
    path("requests/<int:pk>/", views.request_detail, name="request-detail"),
    *[
        path(
            f"requests/<int:pk>/{decision}/",
            views.request_decide,
            {"decision": decision},
            name=f"request-{decision}",
        )
        for decision in ("accept", "decline", "withdraw")
    ],
    path(
        "invitations/<int:pk>/withdraw/",
        views.invitation_act,
        {"action": "withdraw"},
        name="invitation-revoke",
    ),
    path(
        "invitations/<int:pk>/resend/",
        views.invitation_act,
        {"action": "resend"},
        name="invitation-resend",
    ),
    path("<int:pk>/", views.partnership_detail, name="detail"),
    path("<int:pk>/edit/", views.partnership_edit, name="edit"),
    path("<int:pk>/end/", views.partnership_end, name="end"),
]

invitation_urlpatterns = [
    path("<str:token>/", views.invitation, name="accept"),
]

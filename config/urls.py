from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from organizations import views as organization_views
from partnerships.urls import invitation_urlpatterns
from settings_sync import sync_views

urlpatterns = [
    path("", organization_views.home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("o/<slug:org>/settings/", include("organizations.urls")),
    path("o/<slug:org>/settings/partnerships/", include("partnerships.urls")),
    path("o/<slug:org>/settings/", include("settings_sync.urls")),
    path("invitations/", include((invitation_urlpatterns, "invitations"))),
    path("o/<slug:org>/logo/", organization_views.logo, name="organization-logo"),
    path("help/sync/", sync_views.help_page, name="help-sync"),
    path("notifications/", include("notifications.urls")),
    path("admin/", admin.site.urls),
    # Browsers ask for /favicon.ico on pages that name no icon (the Django admin's).
    path("favicon.ico", RedirectView.as_view(url=f"{settings.STATIC_URL}favicon.svg")),
]

admin.site.site_header = "Channel Data Sync administration"
admin.site.site_title = "Channel Data Sync"
admin.site.index_title = "Organizations, partnerships and sync"
# The app list stays on the admin's home page; beside every list it left changelists too
# little room on a 1280-pixel screen.
admin.site.enable_nav_sidebar = False

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)

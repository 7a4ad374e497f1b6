from django.contrib import admin
from django.utils.text import Truncator

from .models import DigestSent, EmailPreference, Notification


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = (
        "summary",
        "user",
        "organization",
        "event",
        "created_at",
        "read_at",
        "emailed_at",
    )
    list_filter = ("event", ("read_at", admin.EmptyFieldListFilter))
    search_fields = ("message", "user__username", "user__email", "organization__name")
    list_select_related = ("user", "organization")
    raw_id_fields = ("user", "organization")
    date_hierarchy = "created_at"

    @admin.display(description="message", ordering="message")
    def summary(self, obj: Notification) -> str:
        """The message's first words: the list stays a list; the whole text is one click
        away."""
        return Truncator(obj.message).words(16)


@admin.register(EmailPreference)
class EmailPreferenceAdmin(admin.ModelAdmin):
    list_display = ("user", "organization", "frequency")
    list_filter = ("frequency",)
    search_fields = ("user__username", "user__email", "organization__name")
    list_select_related = ("user", "organization")
    raw_id_fields = ("user", "organization")


@admin.register(DigestSent)
class DigestSentAdmin(admin.ModelAdmin):
    list_display = ("user", "day", "sent_at", "notifications")
    search_fields = ("user__username", "user__email")
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    date_hierarchy = "day"

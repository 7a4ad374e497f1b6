"""What each user is told: notifications in an inbox, and how each wants them by email."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Notification(models.Model):
    class Event(models.TextChoices):
        SETTINGS_CHANGED = "settings_changed", "A sync changed your settings"
        UPDATE_AVAILABLE = "update_available", "Updates available from a channel manager"
        FLAGS_CHANGED = "flags_changed", "A partnership's flags or categories changed"
        RUN_FAILED = "run_failed", "A sync failed"
        CONFLICTS = "conflicts", "A sync found conflicts"
        PARTNER_JOINED = "partner_joined", "A partner accepted"
        PARTNER_DECLINED = "partner_declined", "A partner declined"
        PARTNERSHIP_ENDED = "partnership_ended", "A partnership ended"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="+"
    )
    event = models.CharField(max_length=20, choices=Event.choices)
    message = models.CharField(max_length=500)
    url = models.CharField("link", max_length=300, help_text="The page that explains it.")
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(
        null=True, blank=True, help_text="When it went out by email (alone or in a digest)."
    )
    email_attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["user", "read_at"])]

    def __str__(self) -> str:
        return self.message


class EmailPreference(models.Model):
    class Frequency(models.TextChoices):
        EACH = "each", "An email for each event"
        DIGEST = "digest", "One daily digest"
        NONE = "none", "No email (the notifications page only)"

    #: What a user who never chose gets.
    DEFAULT = Frequency.EACH

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="email_preferences"
    )
    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="+"
    )
    frequency = models.CharField(max_length=10, choices=Frequency.choices, default=DEFAULT)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "organization"], name="one_email_preference_per_organization"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.organization}: {self.get_frequency_display()}"


class DigestSent(models.Model):
    """A daily digest that went out: at most one per person per day."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    sent_at = models.DateTimeField(default=timezone.now)
    notifications = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = "digest sent"
        verbose_name_plural = "digests sent"
        constraints = [models.UniqueConstraint(fields=["user", "day"], name="one_digest_a_day")]

    def __str__(self) -> str:
        return f"{self.user} · {self.day:%Y-%m-%d}"

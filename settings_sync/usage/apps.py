from django.apps import AppConfig


class UsageSettingsConfig(AppConfig):
    name = "settings_sync.usage"
    label = "usage"
    verbose_name = "Usage settings"

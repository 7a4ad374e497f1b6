from django.apps import AppConfig


class UnsyncedSettingsConfig(AppConfig):
    name = "settings_sync.unsynced"
    label = "unsynced"
    verbose_name = "Settings that are never synced"

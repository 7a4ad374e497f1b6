from django.apps import AppConfig


class ProjectSettingsConfig(AppConfig):
    name = "settings_sync.project"
    label = "project"
    verbose_name = "Project settings"

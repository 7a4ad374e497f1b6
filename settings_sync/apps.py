from django.apps import AppConfig


class SettingsSyncConfig(AppConfig):
    name = "settings_sync"
    verbose_name = "Settings sync"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from organizations import tabs
        from organizations.models import Organization

        from . import receivers
        from .pages import GROUPS

        icons = {
            "project": "tools",
            "usage": "lightning-charge",
            "proposal": "file-earmark-text",
            "financing": "bank",
            "integrations": "plug",
        }
        for order, group in enumerate(
            ["project", "usage", "proposal", "financing", "integrations"]
        ):
            tabs.register(
                tabs.Tab(group, GROUPS[group], f"settings_sync:{group}", 30 + order, icons[group])
            )
        post_save.connect(
            receivers.create_singletons,
            sender=Organization,
            dispatch_uid="settings_sync.create_singletons",
        )

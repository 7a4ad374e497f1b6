from django.apps import AppConfig


class OrganizationsConfig(AppConfig):
    name = "organizations"
    verbose_name = "Organizations"

    def ready(self) -> None:
        from . import tabs

        tabs.register(
            tabs.Tab("organization", "Organization", "organizations:organization", 10, "building")
        )

from django.apps import AppConfig


class PartnershipsConfig(AppConfig):
    name = "partnerships"
    verbose_name = "Partnerships"

    def ready(self) -> None:
        from organizations import tabs

        tabs.register(
            tabs.Tab("partnerships", "Partnerships", "partnerships:list", 20, "diagram-3")
        )

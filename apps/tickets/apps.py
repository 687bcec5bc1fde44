from django.apps import AppConfig


class TicketsConfig(AppConfig):
    name = "apps.tickets"
    label = "tickets"

    def ready(self) -> None:
        from .config import connect_invalidation

        connect_invalidation()

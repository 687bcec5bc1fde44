from django.apps import AppConfig


class TicketsConfig(AppConfig):
    name = "apps.tickets"
    label = "tickets"

    def ready(self) -> None:
        from . import principals
        from .config import connect_invalidation

        connect_invalidation()
        principals.connect_invalidation()

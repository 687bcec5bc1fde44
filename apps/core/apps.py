from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        # Every app's handlers.py registers its event subscriptions.
        from django.utils.module_loading import autodiscover_modules

        autodiscover_modules("handlers")
        from . import checks  # noqa: F401  (uploaded files stay private: core.E101/E102)
        from .api import schema  # noqa: F401  (registers the OpenAPI auth extension)
        from .tenancy import connect_invalidation

        connect_invalidation()  # kept principals follow users, memberships and organizations
        from .health import connect_signals

        connect_signals()  # worker and beat heartbeats for /health/status
        from .requestid import connect_signals as connect_request_id

        connect_request_id()  # the request id travels into the tasks a request enqueues

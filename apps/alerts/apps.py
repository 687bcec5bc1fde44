from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "apps.alerts"
    label = "alerts"

    def ready(self) -> None:
        # Every process (web, worker, beat, commands) must invalidate cached ingestion
        # configuration when it saves or deletes those rows.
        from . import ingest_config  # noqa: F401

"""OpenAPI description of the ingestion token authentication."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class IngestTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apps.alerts.api.views.IngestTokenAuthentication"
    name = "alertsIngestToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "Per-tenant ingestion token `opa_…` (POST /api/v1/alerts/ingest-tokens)."}

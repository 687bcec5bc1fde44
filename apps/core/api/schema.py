"""OpenAPI: describe our JWT authentication as a bearer scheme (drf-spectacular extension)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class PortalJWTScheme(OpenApiAuthenticationExtension):
    target_class = "apps.core.api.auth.PortalJWTAuthentication"
    name = "jwtAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}

"""OpenAPI: describe our JWT authentication as a bearer scheme (drf-spectacular extension)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerFieldExtension


class PortalJWTScheme(OpenApiAuthenticationExtension):
    target_class = "apps.core.api.auth.PortalJWTAuthentication"
    name = "jwtAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}


class PortalSessionScheme(OpenApiAuthenticationExtension):
    """The admin session cookie (once its second factor is confirmed: apps/core/mfa.py)."""

    target_class = "apps.core.mfa.PortalSessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema):
        from django.conf import settings

        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}


class LocalTimeField(OpenApiSerializerFieldExtension):
    """A TimeField is a local wall-clock time ("22:00", "09:52:35"): OpenAPI's `format: time` is
    RFC 3339's full-time, which requires a UTC offset the portal neither sends nor wants."""

    target_class = "rest_framework.fields.TimeField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        return {"type": "string", "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$",
                "example": "22:00:00"}


# Every operation can answer with the portal's error body (apps.core.api.errors); documenting
# it keeps clients (and schemathesis) honest about 4xx bodies instead of leaving them undescribed.
ERROR_COMPONENT = {
    "type": "object",
    "description": "Every API error: a message a person can act on, and per-field errors for 400s.",
    "properties": {
        "detail": {"type": "string"},
        "errors": {"type": "object", "additionalProperties": True},
        "code": {"type": "string"},
    },
    "required": ["detail"],
}
_ERRORS = {
    "400": "Invalid input (see `errors`).",
    "401": "Not authenticated, or the token is invalid or expired.",
    "403": "Not allowed for the acting organization and role.",
    "404": "Not found, or not visible to the acting user.",
    "429": "Rate limited; retry after the `Retry-After` header.",
}


def document_error_responses(result, generator, request, public):
    """drf-spectacular post-processing hook: add the error responses to every operation."""
    result.setdefault("components", {}).setdefault("schemas", {})["PortalError"] = ERROR_COMPONENT
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/PortalError"}}}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            codes = dict(_ERRORS)
            if method == "delete":
                codes["409"] = "Other rows still refer to this one."
            if "multipart/form-data" in operation.get("requestBody", {}).get("content", {}):
                codes["507"] = "The portal is out of storage space; nothing was saved, try again later."
            for code, description in codes.items():
                responses.setdefault(code, {"description": description, "content": ref})
    return result


ORGANIZATION_HEADER = {
    "in": "header",
    "name": "X-Organization",
    "required": False,
    "schema": {"type": "string"},
    "description": "The organization to act within (slug or id) when the user belongs to several; "
                   "default: the user's first membership. One the user does not belong to is a 403.",
}


def document_organization_header(result, generator, request, public):
    """drf-spectacular post-processing hook: `X-Organization` on every operation (read by
    `OrganizationContextMixin` after authentication)."""
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            parameters = operation.setdefault("parameters", [])
            if not any(p.get("in") == "header" and p.get("name") == ORGANIZATION_HEADER["name"] for p in parameters):
                parameters.append(dict(ORGANIZATION_HEADER))
    return result

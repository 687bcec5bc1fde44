"""Demo monitoring for acme: an HTTP check of the portal's own /health/ (PORTAL_BASE_URL) and a
heartbeat for a nightly backup (push URL /ping/<uuid>). Idempotent."""

from urllib.parse import urlsplit

from django.conf import settings

from .choices import EndpointKind
from .models import Endpoint
from .services import endpoint_create


def seed(*, orgs, stdout) -> None:
    acme = orgs.get("acme")
    if acme is None:
        return
    created = []
    if not Endpoint.objects.filter(tenant=acme, name="Portal health").exists():
        base = urlsplit(settings.PORTAL_BASE_URL)
        https = base.scheme == "https"
        created.append(endpoint_create(
            actor=None, tenant=acme, name="Portal health", kind=EndpointKind.HTTPS if https else EndpointKind.HTTP,
            host=base.hostname or "127.0.0.1", port=base.port or (443 if https else 80), path="/health/",
            expected_status=200, expected_response_ms=1000, interval_seconds=60, labels={"service": "opsportal", "demo": "true"},
        ))
    if not Endpoint.objects.filter(tenant=acme, name="Nightly backup").exists():
        created.append(endpoint_create(
            actor=None, tenant=acme, name="Nightly backup", kind=EndpointKind.HEARTBEAT, interval_seconds=86400,
            grace_seconds=3600, labels={"job": "backup", "demo": "true"},
        ))
    for e in created:
        hint = f" — ping {settings.PORTAL_BASE_URL}/ping/{e.ping_id}" if e.kind == EndpointKind.HEARTBEAT else ""
        stdout.write(f"monitoring: acme endpoint {e.name!r} ({e.kind}){hint}\n")

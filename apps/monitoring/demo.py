"""Demo monitoring for acme: an HTTP check of the portal's own /health/ (PORTAL_BASE_URL) and a
heartbeat for a nightly backup (push URL /ping/<uuid>). Idempotent."""

from urllib.parse import urlsplit

from django.conf import settings

from .choices import EndpointKind
from .models import Endpoint
from .services import endpoint_create, endpoint_update


def seed(*, orgs, stdout) -> None:
    acme = orgs.get("acme")
    if acme is None:
        return
    created = []
    base = urlsplit(settings.PORTAL_BASE_URL)
    https = base.scheme == "https"
    where = {"kind": EndpointKind.HTTPS if https else EndpointKind.HTTP, "host": base.hostname or "127.0.0.1",
             "port": base.port or (443 if https else 80)}
    existing = Endpoint.objects.filter(tenant=acme, name="Portal health").first()
    if existing is not None and any(getattr(existing, k) != v for k, v in where.items()):
        # the portal now runs elsewhere (make run PORT=8101): the demo check follows it, so the
        # first dashboard shows the portal healthy rather than an outage of a port nobody serves
        endpoint_update(existing, actor=None, **where)
        stdout.write(f"monitoring: acme endpoint 'Portal health' now checks {settings.PORTAL_BASE_URL}/health/\n")
    if existing is None:
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

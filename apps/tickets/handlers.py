"""Events the tickets app reacts to: maintenance windows move the SLA due times of the tenant's
incident-linked tickets (the window itself is read in `sla.sla_clock`)."""

from __future__ import annotations

from apps.core.events import subscribe

from .services import tickets_recompute_sla


@subscribe("maintenance_window.*")
def maintenance_window_changed(event) -> None:
    if event.tenant_id:
        tickets_recompute_sla(tenant_id=event.tenant_id)


from .mail import handlers as _mail_handlers  # noqa: E402,F401  ticket mail subscribes here

"""The customer summary (`GET /api/v1/customers/{id}/summary`): state, timeline and services,
plus one key per registered summary contributor (`registry.register_summary_contributor`)."""

from __future__ import annotations

import logging

from .models import Customer
from .registry import summary_contributors

log = logging.getLogger(__name__)
BUILT_IN_KEYS = {"customer", "state", "timeline", "services"}


def customer_summary(customer: Customer, *, user) -> dict:
    timeline = [
        {"from_state": e.from_state, "to_state": e.to_state, "actor": e.actor.get_username() if e.actor else None,
         "reason": e.reason, "at": e.created_at.isoformat()}
        for e in customer.lifecycle_events.select_related("actor").order_by("created_at", "pk")
    ]
    services = [
        {"id": s.pk, "plan": s.plan, "status": s.status, "job_run_id": s.job_run_id, "last_error": s.last_error,
         "provisioned_at": s.provisioned_at.isoformat() if s.provisioned_at else None}
        for s in customer.services.order_by("created_at", "pk")
    ]
    data = {
        "customer": {"id": customer.pk, "account_number": customer.account_number, "name": customer.name},
        "state": customer.state,
        "timeline": timeline,
        "services": services,
    }
    for name, contributor in sorted(summary_contributors().items()):
        if name in BUILT_IN_KEYS:
            log.warning("summary contributor %s ignored: the name is built in", name)
            continue
        try:
            data[name] = contributor(customer, user=user)
        except Exception:  # one app's failure must not hide the rest of the summary
            log.exception("summary contributor %s failed for customer %s", name, customer.pk)
            data[name] = {"error": "unavailable"}
    return data

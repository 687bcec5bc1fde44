"""The alerts app's eraser (docs/customers.md, "What erasure does per table")."""

from __future__ import annotations

from apps.tenants.customers.erasure import PersonalData, scrub_tables
from apps.tenants.customers.registry import register_eraser

from .models import (
    Alert,
    AlertRecipientState,
    AlertRule,
    AlertSubscription,
    EscalationPolicy,
    InhibitRule,
    RunbookRequest,
    Silence,
)


@register_eraser("alerts")
def erase(customer, *, request, personal: PersonalData) -> dict:
    """Alerts keep their rows (counts, MTTA/MTTR, fingerprints — a hash) with the customer's
    identifiers redacted from text, labels, annotations and metadata; the same for rules,
    silences, inhibitions, escalation policies and runbook requests. The customer's logins'
    read states and subscriptions go."""
    mine = {"tenant_id": customer.tenant_id}
    report = {
        "recipient_states_deleted": AlertRecipientState.objects.filter(user_id__in=personal.user_ids).delete()[0],
        "subscriptions_deleted": AlertSubscription.objects.filter(user_id__in=personal.user_ids).delete()[0],
    }
    report["redacted"] = scrub_tables(personal, {
        "alerts": (Alert.objects.filter(**mine), ["title", "message", "labels", "annotations", "metadata", "resource_id", "generator_url"]),
        "rules": (AlertRule.objects.filter(**mine), ["name", "description", "conditions", "alert_config", "actions"]),
        "silences": (Silence.objects.filter(**mine), ["matchers", "comment"]),
        "inhibit_rules": (InhibitRule.objects.filter(**mine), ["name", "source_matchers", "target_matchers"]),
        "escalation_policies": (EscalationPolicy.objects.filter(**mine), ["name", "steps"]),
        "runbook_requests": (RunbookRequest.objects.filter(**mine), ["params", "summary"]),
    })
    return report

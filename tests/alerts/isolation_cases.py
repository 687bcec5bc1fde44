from apps.alerts.models import (
    Alert,
    AlertRule,
    AlertSubscription,
    EscalationPolicy,
    IngestToken,
    InhibitRule,
    RunbookRequest,
    Silence,
)
from apps.alerts.services import ingest_token_create
from tests.factories.alerts import (
    AlertFactory,
    AlertRuleFactory,
    AlertSubscriptionFactory,
    EscalationPolicyFactory,
    InhibitRuleFactory,
    SilenceFactory,
)
from tests.factories.targets import make_job
from tests.isolation import IsolationCase, TenantPage


def _runbook(w, key):
    tenant = w.tenant(key)
    return RunbookRequest.objects.create(tenant=tenant, alert=AlertFactory(tenant=tenant), job=make_job(tenant, name=f"rb {key}"),
                                         status="pending_approval", requires_approval=True)

_M = [{"name": "alertname", "op": "=", "value": "x"}]

CASES = [
    IsolationCase(
        name="alerts.alert",
        make=lambda w, key: AlertFactory(tenant=w.tenant(key)),
        api_list="alert-list",
        api_detail="alert-detail",
        admin_model=Alert,
        # POST /api/v1/alerts (seed 002 create/broadcast) addressed to tenant B's staff
        create_payload=lambda w, foreign: {"title": "cross-tenant", "assigned_to": w.user("b", "support_agent").pk},
        patch_payload={"title": "hijacked"},
    ),
    IsolationCase(
        name="alerts.alertrule",
        make=lambda w, key: AlertRuleFactory(tenant=w.tenant(key)),
        api_list="alertrule-list",
        api_detail="alertrule-detail",
        admin_model=AlertRule,
        create_payload=lambda w, foreign: {"tenant": foreign.tenant_id, "name": "sneaky", "rule_type": "event", "conditions": {"event": "a.b"}},
        patch_payload={"name": "hijacked"},
    ),
    IsolationCase(
        name="alerts.alertsubscription",
        make=lambda w, key: AlertSubscriptionFactory(tenant=w.tenant(key), user=w.user(key, "owner")),
        api_list="alertsubscription-list",
        api_detail="alertsubscription-detail",
        admin_model=AlertSubscription,
        create_payload=lambda w, foreign: {"tenant": foreign.tenant_id, "user": foreign.user_id, "alert_type": "job_failed"},
        patch_payload={"enabled": False},
    ),
    IsolationCase(
        name="alerts.silence",
        make=lambda w, key: SilenceFactory(tenant=w.tenant(key)),
        api_list="silence-list",
        api_detail="silence-detail",
        admin_model=Silence,
        create_payload=lambda w, foreign: {"tenant": foreign.tenant_id, "matchers": _M, "ends_at": "2099-01-01T00:00:00Z"},
        patch_payload={"comment": "hijacked"},
    ),
    IsolationCase(
        name="alerts.inhibitrule",
        make=lambda w, key: InhibitRuleFactory(tenant=w.tenant(key)),
        api_list="inhibitrule-list",
        api_detail="inhibitrule-detail",
        admin_model=InhibitRule,
        create_payload=lambda w, foreign: {"tenant": foreign.tenant_id, "name": "sneaky", "source_matchers": _M, "target_matchers": _M},
        patch_payload={"name": "hijacked"},
    ),
    IsolationCase(
        name="alerts.escalationpolicy",
        make=lambda w, key: EscalationPolicyFactory(tenant=w.tenant(key)),
        api_list="escalationpolicy-list",
        api_detail="escalationpolicy-detail",
        admin_model=EscalationPolicy,
        create_payload=lambda w, foreign: {"tenant": foreign.tenant_id, "name": "sneaky", "steps": [{"wait_minutes": 1, "roles": ["admin"]}]},
        patch_payload={"name": "hijacked"},
    ),
    IsolationCase(
        name="alerts.ingesttoken",
        make=lambda w, key: ingest_token_create(actor=None, tenant=w.tenant(key), name=f"token {key}")[0],
        api_list="ingesttoken-list",
        api_detail="ingesttoken-detail",
        admin_model=IngestToken,
        create_payload=lambda w, foreign: {"tenant": foreign.tenant_id, "name": "sneaky"},
        patch_payload={"name": "hijacked"},
    ),
    IsolationCase(
        name="alerts.runbookrequest",
        make=_runbook,
        api_list="runbookrequest-list",
        api_detail="runbookrequest-detail",
        admin_model=RunbookRequest,
    ),
]

TENANT_PAGES = [TenantPage(name="alerts.tenant_timeline", url_name="tenant-timeline")]

from apps.monitoring.models import Endpoint, TrendRule
from tests.factories.monitoring import EndpointFactory
from tests.isolation import IsolationCase


def _trend_rule(w, key):
    endpoint = EndpointFactory(tenant=w.tenant(key))
    return TrendRule.objects.create(tenant=w.tenant(key), endpoint=endpoint, name=f"p95 {key}", kind="latency_p95", threshold_ms=500)


CASES = [
    IsolationCase(
        name="monitoring.endpoint",
        make=lambda w, key: EndpointFactory(tenant=w.tenant(key)),
        api_list="endpoint-list",
        api_detail="endpoint-detail",
        admin_model=Endpoint,
        create_payload=lambda w, foreign: {"tenant": foreign.tenant_id, "name": "sneaky", "kind": "http", "host": "127.0.0.1", "port": 80},
        patch_payload={"name": "hijacked"},
    ),
    IsolationCase(
        name="monitoring.trendrule",
        make=_trend_rule,
        api_list="trendrule-list",
        api_detail="trendrule-detail",
        admin_model=TrendRule,
        # a rule on tenant B's endpoint: refused, whoever asks from A's side
        create_payload=lambda w, foreign: {"name": "sneaky", "endpoint": foreign.endpoint_id, "kind": "latency_p95", "threshold_ms": 1},
        patch_payload={"name": "hijacked", "threshold_ms": 1},
    ),
]

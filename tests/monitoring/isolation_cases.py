from apps.monitoring.models import Endpoint
from tests.factories.monitoring import EndpointFactory
from tests.isolation import IsolationCase

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
]

from apps.maintenance.models import MaintenanceWindow
from tests.factories.maintenance import MaintenanceWindowFactory
from tests.isolation import IsolationCase

CASES = [
    IsolationCase(
        name="maintenance.maintenancewindow",
        make=lambda w, key: MaintenanceWindowFactory(tenant=w.tenant(key)),
        api_list="maintenancewindow-list",
        api_detail="maintenancewindow-detail",
        admin_model=MaintenanceWindow,
        create_payload=lambda w, foreign: {"tenant": foreign.tenant_id, "name": "sneaky", "starts_at": "2030-01-01T00:00:00Z",
                                           "ends_at": "2030-01-01T01:00:00Z"},
        patch_payload={"name": "hijacked"},
    ),
]

from apps.tenants.models import Customer, CustomerService, DataExport, DeletionRequest
from tests.factories.customers import (
    CustomerServiceFactory,
    DataExportFactory,
    DeletionRequestFactory,
    customer_of,
)
from tests.isolation import IsolationCase

CASES = [
    IsolationCase(
        name="tenants.customer",
        make=lambda w, key: customer_of(w, key),
        api_list="customer-list",
        api_detail="customer-detail",
        admin_model=Customer,
        # registering a customer linked to tenant B's customer organization
        create_payload=lambda w, foreign: {"name": "Sneaky", "organization": foreign.organization.slug, "send_code": False},
        patch_payload={"name": "hijacked"},
    ),
    IsolationCase(
        name="tenants.customerservice",
        make=lambda w, key: CustomerServiceFactory(customer=customer_of(w, key)),
        api_list="customerservice-list",
        api_detail="customerservice-detail",
        admin_model=CustomerService,
        patch_payload={"plan": "hijacked"},
    ),
    IsolationCase(
        name="tenants.dataexport",
        make=lambda w, key: DataExportFactory(customer=customer_of(w, key)),
        api_list="dataexport-list",
        api_detail="dataexport-detail",
        admin_model=DataExport,
        create_payload=lambda w, foreign: {"customer": foreign.customer_id, "format": "json"},
        patch_payload={"format": "csv"},
    ),
    IsolationCase(
        name="tenants.deletionrequest",
        make=lambda w, key: DeletionRequestFactory(customer=customer_of(w, key)),
        api_list="deletionrequest-list",
        api_detail="deletionrequest-detail",
        admin_model=DeletionRequest,
        create_payload=lambda w, foreign: {"customer": foreign.customer_id, "reason": "sneaky"},
        patch_payload={"reason": "hijacked"},
    ),
]

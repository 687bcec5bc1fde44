import csv
import io
import json
import zipfile
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from apps.tenants.customers import deletion, exports
from apps.tenants.customers.choices import CustomerState, DeletionStatus, ExportStatus
from apps.tenants.models import Customer, DataExport, DeletionRequest, Membership
from tests.conftest import wait_for
from tests.factories.customers import CustomerFactory, customer_of


def _zip(response) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_customer_export_contains_only_its_own_data(world, api, django_capture_on_commit_callbacks):
    own = customer_of(world, "a")
    CustomerFactory(tenant=world.tenant("a"), name="Neighbour")
    customer_of(world, "b")
    client = api.as_user(world.user("a", "customer"))
    with django_capture_on_commit_callbacks(execute=True):  # the build task runs eagerly after commit
        r = client.post(reverse("dataexport-list"), {"format": "json"}, format="json")
    assert r.status_code == 201, r.content
    export = DataExport.objects.get(pk=r.json()["id"])
    assert export.customer == own and export.status == ExportStatus.SUCCEEDED and export.progress == 100

    listed = client.get(reverse("dataexport-list")).json()["results"]
    assert listed[0]["download_url"] == f"/api/v1/exports/{export.pk}/download"
    download = client.get(listed[0]["download_url"])
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"
    archive = _zip(download)
    customers = json.loads(archive.read("customers.json"))
    assert [c["account_number"] for c in customers] == [own.account_number]
    members = json.loads(archive.read("memberships.json"))
    assert {m["username"] for m in members} == {"a-customer"}
    assert json.loads(archive.read("manifest.json"))["row_counts"]["customers"] == 1
    export.refresh_from_db()
    assert export.download_count == 1 and export.last_downloaded_by == world.user("a", "customer")
    assert export.history.filter(history_user=world.user("a", "customer"), download_count=1).exists()  # audited


def test_customer_cannot_export_another_customer(world, api):
    neighbour = CustomerFactory(tenant=world.tenant("a"))
    customer_of(world, "a")
    r = api.as_user(world.user("a", "customer")).post(reverse("dataexport-list"), {"customer": neighbour.pk}, format="json")
    assert r.status_code in (400, 403)
    assert not DataExport.objects.exists()


def test_tenant_admin_exports_whole_tenant_as_csv_with_date_range(world, api, django_capture_on_commit_callbacks):
    old = CustomerFactory(tenant=world.tenant("a"), name="Old")
    Customer.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=400))
    recent = CustomerFactory(tenant=world.tenant("a"), name="Recent")
    CustomerFactory(tenant=world.tenant("b"), name="Foreign")
    client = api.as_user(world.user("a", "admin"))
    since = (timezone.now() - timedelta(days=30)).isoformat()
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(reverse("dataexport-list"), {"format": "csv", "data_types": ["customers"], "date_from": since}, format="json")
    assert r.status_code == 201, r.content
    archive = _zip(client.get(f"/api/v1/exports/{r.json()['id']}/download"))
    assert archive.namelist() == ["customers.csv", "manifest.json"]
    rows = list(csv.DictReader(io.StringIO(archive.read("customers.csv").decode())))
    assert [row["name"] for row in rows] == [recent.name]


def test_export_permissions_and_expiry(world, api, django_capture_on_commit_callbacks):
    customer_of(world, "a")
    r = api.as_user(world.user("a", "viewer")).post(reverse("dataexport-list"), {}, format="json")
    assert r.status_code == 403
    r = api.as_user(world.user("a", "admin")).post(reverse("dataexport-list"), {"data_types": ["nope"]}, format="json")
    assert r.status_code == 400 and "available" in r.json()["detail"]
    with django_capture_on_commit_callbacks(execute=True):
        export = exports.data_export_request(actor=world.user("a", "owner"))
    export.refresh_from_db()
    assert export.status == ExportStatus.SUCCEEDED
    # another customer of the same tenant cannot even see it; the owner can until it expires
    assert api.as_user(world.user("a", "customer")).get(f"/api/v1/exports/{export.pk}/download").status_code == 404
    DataExport.objects.filter(pk=export.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    r = api.as_user(world.user("a", "owner")).get(f"/api/v1/exports/{export.pk}/download")
    assert r.status_code == 400 and "expired" in r.json()["detail"]
    assert exports.data_exports_expire() == 1
    export.refresh_from_db()
    assert export.status == ExportStatus.EXPIRED and export.file == ""


def test_file_help_text_says_what_the_builder_stores():
    # the builder stores through the configured storage (MEDIA_ROOT or S3) and expiry/erasure blank
    # the field; the admin and the API schema show this text, so it must not say "under MEDIA_ROOT"
    text = str(DataExport._meta.get_field("file").help_text)
    assert "storage" in text and "S3" in text and "expir" in text and "eras" in text


@pytest.mark.django_db(transaction=True)
def test_export_is_built_by_a_real_worker(celery_worker):
    from tests.world import build_world

    world = build_world()
    customer_of(world, "a")
    export = exports.data_export_request(actor=world.user("a", "admin"), format="json")
    done = wait_for(lambda: DataExport.objects.filter(pk=export.pk, status=ExportStatus.SUCCEEDED).first(), timeout=30)
    assert done.progress == 100 and done.size_bytes > 0 and set(done.row_counts) >= {"customers", "memberships"}


def test_customer_requests_deletion_and_cancels_within_grace(world, api):
    own = customer_of(world, "a")
    client = api.as_user(world.user("a", "customer"))
    r = client.post(reverse("deletionrequest-list"), {"reason": "leaving"}, format="json")
    assert r.status_code == 201, r.content
    req = DeletionRequest.objects.get(pk=r.json()["id"])
    assert req.customer == own and timedelta(days=29) < req.due_at - timezone.now() <= timedelta(days=30)
    again = client.post(reverse("deletionrequest-list"), {}, format="json")
    assert again.status_code == 400 and "already pending" in again.json()["detail"]
    assert deletion.deletion_requests_execute_due() == 0  # still in its grace period
    r = client.post(f"/api/v1/deletion-requests/{req.pk}/cancel", {"reason": "stayed"}, format="json")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    DeletionRequest.objects.filter(pk=req.pk).update(due_at=timezone.now() - timedelta(days=1))
    assert deletion.deletion_requests_execute_due() == 0
    own.refresh_from_db()
    assert own.erased_at is None


def test_due_deletion_erases_personal_data_and_keeps_rows(world, django_capture_on_commit_callbacks):
    own = customer_of(world, "a")
    own.contact_email, own.contact_phone = "me@example.test", "+1 555"
    own.save()
    with django_capture_on_commit_callbacks(execute=True):
        exports.data_export_request(actor=world.user("a", "customer"))
    req = deletion.deletion_request_create(actor=world.user("a", "admin"), customer=own, reason="GDPR art. 17")
    DeletionRequest.objects.filter(pk=req.pk).update(due_at=timezone.now() - timedelta(minutes=1))
    from apps.tenants.tasks import execute_due_deletions_task

    assert execute_due_deletions_task.delay().get() == 1
    req.refresh_from_db()
    own.refresh_from_db()
    user = world.user("a", "customer")
    user.refresh_from_db()
    assert req.status == DeletionStatus.COMPLETED
    assert own.state == CustomerState.TERMINATED and own.erased_at and own.contact_email == "" and own.contact_phone == ""
    assert own.name == f"Erased customer {own.account_number}"
    assert user.username == f"erased-user-{user.pk}" and user.email == "" and not user.is_active and not user.has_usable_password()
    assert not Membership.objects.filter(organization=own.organization, is_active=True).exists()
    report = req.report["erasers"]["tenants"]
    assert report["users_anonymised"] == 1 and set(report["customer_fields"]) == {"name", "contact_email", "contact_phone"}
    assert report["export_files_deleted"] == 1
    assert own.lifecycle_events.filter(to_state=CustomerState.TERMINATED).exists()  # the audit trail stays
    assert not own.organization.history.filter(name="Customer of A").exists()


def test_immediate_erasure_is_for_platform_admins_with_reason(world):
    own = customer_of(world, "a")
    with pytest.raises(PermissionDenied):
        deletion.deletion_request_create(actor=world.user("a", "owner"), customer=own, reason="now", immediate=True)
    with pytest.raises(ValidationError):
        deletion.deletion_request_create(actor=world.user("platform", "admin"), customer=own, immediate=True)
    req = deletion.deletion_request_create(actor=world.user("platform", "admin"), customer=own, reason="court order", immediate=True)
    assert req.status == DeletionStatus.COMPLETED and req.report["customer"] == own.account_number
    with pytest.raises(ValidationError, match="already erased"):
        deletion.deletion_request_create(actor=world.user("platform", "admin"), customer=own, reason="again", immediate=True)


def test_failing_eraser_rolls_back_its_app_and_a_retry_completes(world):
    """Each eraser runs in its own transaction: a failing one leaves nothing half-written of its
    app, the customer's identifiers stay for the retry (the tenants eraser runs last), and the
    retry runs every eraser again (they are idempotent) to completion."""
    from apps.tenants.customers import registry

    own = customer_of(world, "a")
    own.contact_phone = "555-0199"
    own.save()
    req = deletion.deletion_request_create(actor=None, customer=own, reason="x")
    DeletionRequest.objects.filter(pk=req.pk).update(due_at=timezone.now())

    @registry.register_eraser("zz_broken")
    def _broken(customer, *, request, personal):
        Customer.objects.filter(pk=customer.pk).update(contact_phone="half-written")
        raise RuntimeError("disk on fire")

    try:
        result = deletion.deletion_request_execute(request_id=req.pk)
    finally:
        registry._erasers.pop("zz_broken")
    own.refresh_from_db()
    assert result.status == DeletionStatus.FAILED and "disk on fire" in result.error
    assert own.erased_at is None and own.name == "Customer of A" and own.contact_phone == "555-0199"
    assert own.state == CustomerState.TERMINATED  # terminated first: its logins stop acting before the erasure
    assert set(result.report["erasers"]) >= {"tickets", "alerts"} and "tenants" not in result.report["erasers"]
    assert deletion.deletion_request_retry(result, actor=None).status == DeletionStatus.PENDING
    done = deletion.deletion_request_execute(request_id=req.pk)
    own.refresh_from_db()
    assert done.status == DeletionStatus.COMPLETED and own.erased_at and own.contact_phone == ""


def test_a_running_erasure_is_not_claimed_twice_until_stale(world, settings):
    own = customer_of(world, "a")
    req = deletion.deletion_request_create(actor=None, customer=own, reason="x")
    DeletionRequest.objects.filter(pk=req.pk).update(due_at=timezone.now(), status=DeletionStatus.RUNNING, updated_at=timezone.now())
    assert deletion.deletion_requests_execute_due() == 0  # another runner is at it
    settings.CUSTOMER_DELETION_STALE_SECONDS = 60
    DeletionRequest.objects.filter(pk=req.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    assert deletion.deletion_requests_execute_due() == 1  # its runner died: claimed again
    assert DeletionRequest.objects.get(pk=req.pk).status == DeletionStatus.COMPLETED

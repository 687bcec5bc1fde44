"""`PersonalData`: which identifiers it takes and how it redacts text, JSON and rows (portable:
runs on SQLite too)."""

from apps.alerts.models import Alert
from apps.tenants.customers.erasure import REDACTED, PersonalData
from tests.factories.alerts import AlertFactory
from tests.factories.customers import CustomerFactory


def test_redacts_text_and_json_keys_and_values_case_insensitively(world):
    customer = CustomerFactory(tenant=world.tenant("a"), name="Zoë Ångström", contact_email="zoe@example.net", contact_phone="12")
    personal = PersonalData.of(customer)
    assert personal.terms == ("zoe@example.net", "Zoë Ångström")  # "12" is too short to search for
    assert personal.redact("Call ZOË ÅNGSTRÖM at zoe@EXAMPLE.net") == f"Call {REDACTED} at {REDACTED}"
    assert personal.redact({"Zoë Ångström": ["zoe@example.net", 3, None]}) == {REDACTED: [REDACTED, 3, None]}


def test_scrub_finds_rows_by_text_and_json_and_leaves_others(world):
    tenant = world.tenant("a")
    customer = CustomerFactory(tenant=tenant, name="Zoë Ångström", contact_email="zoe@example.net")
    named = AlertFactory(tenant=tenant, title="line down", labels={"customer": "Zoë Ångström"}, metadata={"mail": "zoe@example.net"})
    other = AlertFactory(tenant=tenant, title="disk full", labels={"host": "db-1"})
    personal = PersonalData.of(customer)
    assert set(Alert.objects.filter(personal.mentions("title", "labels", "metadata")).values_list("pk", flat=True)) == {named.pk}
    assert personal.scrub(Alert.objects.filter(tenant=tenant), ["title", "labels", "metadata"]) == 1
    named.refresh_from_db()
    other.refresh_from_db()
    assert named.labels == {"customer": REDACTED} and named.metadata == {"mail": REDACTED} and named.title == "line down"
    assert other.labels == {"host": "db-1"}
    assert personal.scrub(Alert.objects.filter(tenant=tenant), ["title", "labels", "metadata"]) == 0  # idempotent


# Tables with free text that no eraser scrubs, and why (a new model with text lands here or in an eraser).
HANDLED_DIRECTLY = {
    "tenants.Customer": "pseudonymised by the tenants eraser",
    "tenants.Organization": "the customer organization is renamed (history too)",
    "tenants.HistoricalOrganization": "renamed with the organization",
    "core.PortalUser": "the customer's own logins are pseudonymised",
    "tenants.VerificationCode": "deleted",
    "notifications.Preference": "the customer's logins' rows are deleted; others hold no text about people",
    "notifications.ChannelConfig": "the customer's logins' channels are deleted; shared ones are the tenant's",
    "alerts.AlertSubscription": "the customer's logins' rows are deleted",
    "tenants.Invitation": "the customer's invitations are deleted (apps/tenants/erasers.py)",
    "tenants.ApiToken": "the organization's and its logins' tokens are deleted (apps/tenants/erasers.py)",
    "tenants.SsoIdentity": "the customer's logins' identities are deleted (apps/tenants/erasers.py)",
}
NO_PERSONAL_DATA = {
    "tenants.DataExport": "file paths, row counts and build errors",
    "tenants.HistoricalDataExport": "as above",
    "notifications.NotificationTemplate": "placeholders, not people",
    "maintenance.MaintenanceRun": "platform housekeeping figures",
    "tickets.BusinessCalendar": "working hours",
    "tickets.SlaPolicy": "targets per priority",
    "tickets.Mailbox": "a tenant's own support address and IMAP login, not a customer's",
    "targets.JobVersion": "versioned job definitions (what ran stays as written)",
    "alerts.IngestToken": "token names and hashes",
    "tenants.SsoPolicy": "sign-in rules of an organization",
    "tenants.SsoProvider": "an organization's identity provider endpoints and client id",
    "tenants.SsoRoleMapping": "claim values mapped to roles (group names, not people)",
    "tickets.CannedResponse": "a tenant's stock replies (placeholders, not people)",
}


def test_every_table_with_free_text_is_scrubbed_or_said_why_not(world, monkeypatch):
    """Guards the erasure against a new model: every portal table with text or JSON columns is
    scrubbed by some eraser, or listed above with the reason it needs none."""
    from django.apps import apps
    from django.db import models

    from apps.tenants.customers import deletion
    from apps.tenants.models import DeletionRequest

    scrubbed = set()
    original = PersonalData.scrub

    def recording(self, queryset, fields):
        scrubbed.add(queryset.model._meta.label)
        return original(self, queryset, fields)

    monkeypatch.setattr(PersonalData, "scrub", recording)
    customer = CustomerFactory(tenant=world.tenant("a"), name="Zoë Ångström", contact_email="zoe@example.net")
    req = deletion.deletion_request_create(actor=None, customer=customer, reason="x")
    DeletionRequest.objects.filter(pk=req.pk).update(due_at=req.created_at)
    assert deletion.deletion_request_execute(request_id=req.pk).status == "completed"
    text = (models.CharField, models.TextField, models.JSONField)
    with_text = {
        m._meta.label for m in apps.get_models(include_auto_created=True)
        if m._meta.app_config.name.startswith("apps.") and not m._meta.proxy
        and any(isinstance(f, text) and not f.choices for f in m._meta.concrete_fields)
    }
    missing = with_text - scrubbed - set(HANDLED_DIRECTLY) - set(NO_PERSONAL_DATA)
    assert not missing, f"no eraser scrubs these tables; add them to an app's erasers.py (or say why not here): {sorted(missing)}"


def test_rows_redacted_to_the_same_unique_value_are_kept_apart(world):
    """Target names are unique per tenant: "router of <name>" and "router of <e-mail>" both
    become "router of [erased]"; the second keeps its id as a suffix instead of failing the
    erasure for ever."""
    from apps.targets.models import Target
    from tests.factories.targets import make_target

    tenant = world.tenant("a")
    customer = CustomerFactory(tenant=tenant, name="Zoë Ångström", contact_email="zoe@example.net")
    a = make_target(tenant, name="router of Zoë Ångström")
    b = make_target(tenant, name="router of zoe@example.net")
    assert PersonalData.of(customer).scrub(Target.objects.filter(tenant=tenant), ["name"]) == 2
    names = set(Target.objects.filter(pk__in=[a.pk, b.pk]).values_list("name", flat=True))
    assert len(names) == 2 and all(n.startswith(f"router of {REDACTED}") for n in names)

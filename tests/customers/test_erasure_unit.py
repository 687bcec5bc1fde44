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

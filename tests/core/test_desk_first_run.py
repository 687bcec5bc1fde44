"""A first run that tells the truth: the demo's health check follows the port the portal runs on,
the printed logins say who is staff and who is an API-only customer, and the admin tells a
customer why it refuses them."""

from __future__ import annotations

from io import StringIO

from django.core.management import call_command
from django.urls import reverse

from apps.monitoring.models import Endpoint
from tests.factories import PASSWORD


def test_seed_demo_points_the_demo_check_at_the_given_port_and_follows_a_new_one(db):
    out = StringIO()
    call_command("seed_demo", "--base-url", "http://127.0.0.1:8101", stdout=out)
    check = Endpoint.objects.get(name="Portal health")
    assert (check.host, check.port) == ("127.0.0.1", 8101)
    heartbeat = Endpoint.objects.get(name="Nightly backup")
    text = out.getvalue()
    assert f"http://127.0.0.1:8101/ping/{heartbeat.ping_id}" in text and ":8000" not in text
    # make run on another port later: the existing demo check moves with it
    call_command("seed_demo", "--base-url", "http://localhost:8102/", stdout=StringIO())
    check.refresh_from_db()
    assert (check.host, check.port) == ("localhost", 8102)
    assert Endpoint.objects.filter(name="Portal health").count() == 1


def test_printed_logins_separate_staff_from_api_only_customers(db):
    out = StringIO()
    call_command("seed_demo", "--base-url", "http://127.0.0.1:8101", stdout=out)
    text = out.getvalue()
    staff, customers = text.split("API-only customers")
    assert "Staff: sign in to the admin at http://127.0.0.1:8101/admin/" in staff and "acme-support-agent" in staff
    assert "acme-customer" not in staff and "acme-customer" in customers and "/api/docs/" in customers


def test_admin_tells_a_customer_it_is_for_staff(world, client):
    answer = client.post(reverse("admin:login"), {"username": "a-customer", "password": PASSWORD})
    assert answer.status_code == 200
    assert "customer account: it works with the API" in answer.content.decode()
    wrong = client.post(reverse("admin:login"), {"username": "a-customer", "password": "not it"})
    assert "customer account" not in wrong.content.decode()

"""The lean create route (apps/tickets/api/create_wsgi.py), driven through config.wsgi.application
exactly as gunicorn calls it, answers every request as the full DRF stack answers it: the same
status, JSON, content type and DRF headers for every actor kind, every refusal (token, membership,
role, throttle, routing, validation, parsing) and every created ticket; and the per-process
principals it keeps (apps/tickets/principals.py) follow changes to users, memberships and
organizations."""

from datetime import datetime, timedelta
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.core.handlers.wsgi import WSGIHandler
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from apps.core.choices import Role
from apps.core.models import Event
from apps.tickets.api import create_wsgi
from apps.tickets.models import BusinessCalendar, Ticket
from tests.factories import MembershipFactory, UserFactory
from tests.factories.tickets import SlaPolicyFactory
from tests.wsgi_call import Answer as BaseAnswer
from tests.wsgi_call import wsgi_post

from .conftest import frozen

pytestmark = pytest.mark.django_db
URL = "/api/v1/tickets/"
BERLIN = ZoneInfo("Europe/Berlin")
MON_16 = datetime(2026, 3, 2, 16, 0, tzinfo=BERLIN)
# what differs between two tickets created by the same request
VOLATILE = {"id", "ticket_number"}
DRF_HEADERS = ("content-type", "allow", "www-authenticate", "retry-after", "x-frame-options", "x-content-type-options")


class Answer(BaseAnswer):
    def shape(self):
        """Status, body and the headers DRF sets (Vary without the session's Cookie)."""
        vary = {v.strip() for v in self.headers.get("vary", "").split(",")} - {"Cookie", ""}
        return self.status_code, self.json(), {k: self.headers.get(k) for k in DRF_HEADERS}, vary


_FULL = None


def call(body, *, auth=None, lean=True, path=URL, content_type="application/json", headers=None) -> Answer:
    """POST through config.wsgi.application (lean) or Django's plain handler (the full stack).
    Like Django's test client, the request signals must not close the test's connection."""
    global _FULL
    from config.wsgi import application

    if not lean and _FULL is None:
        _FULL = WSGIHandler()
    with mock.patch.object(create_wsgi, "_create", wraps=create_wsgi._create) as lean_calls:
        got = wsgi_post(application if lean else _FULL, path, body, auth=auth, content_type=content_type, headers=headers)
    answer = Answer(f"{got.status_code} -", list(got.headers.items()), got.body)
    answer.lean = lean_calls.called
    return answer


def bearer(user) -> str:
    return f"Bearer {RefreshToken.for_user(user).access_token}"


def both(body, **kw) -> tuple[Answer, Answer]:
    lean, full = call(body, **kw), call(body, lean=False, **kw)
    assert lean.lean and not full.lean
    return lean, full


def _mask(data: dict) -> dict:
    out = {k: ("…" if k in VOLATILE else v) for k, v in data.items()}
    for key in ("messages", "timeline", "attachments"):
        if key in out:
            # (timeline rows take the database's clock, not the frozen one)
            out[key] = [{**row, "id": "…", **({"created_at": "…"} if key == "timeline" else {})} for row in out[key]]
    return out


@pytest.fixture
def sla(world):
    tenant = world.tenant("a")
    office = BusinessCalendar.objects.create(tenant=tenant, name="office", timezone="Europe/Berlin", is_default=True,
                                             working_hours={d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")})
    SlaPolicyFactory(tenant=tenant, priority="high", first_response_minutes=60, resolution_minutes=480, calendar=office)
    return tenant


CREATES = {
    # (org key, role): payload, X-Organization
    "customer": (("a", "customer"), {"subject": "Router", "message": "Blinks red", "priority": "high",
                                     "metadata": {"site": "HQ", "n": [1, 2.5, None]}, "tags": ["wifi", "hq"]}, None),
    "customer, tags as text": (("a", "customer"), {"subject": " Spaces ", "message": "m", "tags": "a, b", "metadata": '{"k": 1}'}, None),
    "tenant staff to platform": (("a", "admin"), {"subject": "Billing", "message": "Export fails", "target_type": "platform"}, None),
    "tenant staff to partner": (("a", "owner"), {"subject": "Field work", "message": "Cable cut", "target_type": "partner"}, None),
    "tenant staff by organization": (("a", "admin"), {"subject": "Chosen", "message": "m"}, "tenant-a"),
    "partner to tenant": (("partner", "admin"), {"subject": "Visit", "message": "Done", "target_type": "tenant"}, None),
    "platform to partner": (("platform", "admin"), {"subject": "Audit", "message": "Please check", "target_type": "partner",
                                                    "tenant": "tenant-a", "partner": "partner-p"}, None),
    "platform to tenant": (("platform", "admin"), {"subject": "Notice", "message": "m", "tenant": "tenant-a"}, "platform"),
    "unicode": (("a", "customer"), {"subject": "Störung ✓", "message": "Ça ne marche pas — 日本"}, None),
}


@pytest.mark.parametrize("case", CREATES, ids=list(CREATES))
def test_lean_create_answers_as_drf_does_and_as_the_detail_view_shows(case, world, sla, api):
    who, payload, org = CREATES[case]
    user = world.user(*who)
    headers = {"HTTP_X_ORGANIZATION": org} if org else None
    with frozen(MON_16):
        lean, full = both(payload, auth=bearer(user), headers=headers)
    assert lean.status_code == 201, lean.body
    status, body, head, vary = lean.shape()
    assert _mask(body) == _mask(full.json())
    assert (status, head, vary) == (full.status_code, full.shape()[2], full.shape()[3])
    # and equal to what GET /tickets/{id}/ shows the same user (TicketDetailSerializer)
    assert body == api.as_user(user, org).get(f"{URL}{body['id']}/").json()
    assert Event.objects.filter(name="ticket.created", payload__id=body["id"]).count() == 1


def test_lean_create_with_auto_assignment_equals_the_detail_view(world, sla, api):
    for i in range(2):
        MembershipFactory(user=UserFactory(username=f"agent-{i}"), organization=sla, role=Role.SUPPORT_AGENT)
    sla.settings = {"tickets": {"assignment": "least_loaded"}}
    sla.save()
    user = world.user("a", "customer")
    for _ in range(3):
        r = call({"subject": "s", "message": "m", "priority": "high"}, auth=bearer(user))
        assert r.lean and r.status_code == 201 and r.json()["assignee"], r.body
        assert r.json() == api.as_user(user).get(f"{URL}{r.json()['id']}/").json()


def _expired(user) -> str:
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=-timedelta(seconds=5))
    return f"Bearer {token}"


REFUSALS = {
    # name: (who, body, extra call arguments)
    "malformed token": (None, {"subject": "s", "message": "m"}, {"auth": "Bearer not.a.jwt"}),
    "ingestion token": (None, {"subject": "s", "message": "m"}, {"auth": "Bearer opa_abcdef"}),
    "three-part header": (None, {"subject": "s", "message": "m"}, {"auth": "Bearer a b"}),
    "not a member of the organization": (("a", "customer"), {"subject": "s", "message": "m"}, {"headers": {"HTTP_X_ORGANIZATION": "tenant-b"}}),
    "viewer may not open tickets": (("a", "viewer"), {"subject": "s", "message": "m"}, {}),
    "customer routes to partner": (("a", "customer"), {"subject": "s", "message": "m", "target_type": "partner"}, {}),
    "customer names another tenant": (("a", "customer"), {"subject": "s", "message": "m", "tenant": "tenant-b"}, {}),
    "platform names no tenant": (("platform", "admin"), {"subject": "s", "message": "m"}, {}),
    "platform names an unknown tenant": (("platform", "admin"), {"subject": "s", "message": "m", "tenant": "nope"}, {}),
    "empty body": (("a", "customer"), b"", {}),
    "empty object": (("a", "customer"), {}, {}),
    "null": (("a", "customer"), None, {}),
    "a list": (("a", "customer"), [1, 2], {}),
    "bad JSON": (("a", "customer"), b'{"subject": ', {}),
    "NaN": (("a", "customer"), b'{"subject": "s", "message": "m", "metadata": {"x": NaN}}', {}),
    "not UTF-8": (("a", "customer"), b'{"subject": "\xff"}', {}),
    "latin-1 declared": (("a", "customer"), '{"subject": "Caf\u00e9"}'.encode("latin-1"),
                         {"content_type": "application/json; charset=latin-1"}),
    "blank message": (("a", "customer"), {"subject": "s", "message": "   "}, {}),
    "long subject": (("a", "customer"), {"subject": "x" * 201, "message": "m"}, {}),
    "bad priority and type": (("a", "customer"), {"subject": "s", "message": "m", "priority": "asap", "target_type": 3}, {}),
    "attachments as strings": (("a", "customer"), {"subject": "s", "message": "m", "attachments": ["x.log"]}, {}),
    "metadata not an object": (("a", "customer"), {"subject": "s", "message": "m", "metadata": [1]}, {}),
    "tags too long": (("a", "customer"), {"subject": "s", "message": "m", "tags": ["x" * 51]}, {}),
    "NUL in subject": (("a", "customer"), {"subject": "a\u0000b", "message": "m"}, {}),
}


@pytest.mark.parametrize("case", REFUSALS, ids=list(REFUSALS))
def test_lean_refusals_equal_drf(case, world):
    who, body, kw = REFUSALS[case]
    kw = {"auth": bearer(world.user(*who)), **kw} if who else kw
    lean, full = both(body, **kw)
    assert lean.status_code >= 400, lean.body
    assert lean.shape() == full.shape()
    assert Ticket.objects.count() == 0


def test_expired_revoked_inactive_and_deleted_users_are_refused_as_drf_does(world, api):
    user = world.user("a", "customer")
    lean, full = both({"subject": "s", "message": "m"}, auth=_expired(user))
    assert lean.status_code == 401 and lean.shape() == full.shape() and "expired" in lean.json()["detail"]
    issued_before = AccessToken.for_user(user)
    issued_before.set_iat(at_time=datetime.now(BERLIN) - timedelta(seconds=10))
    assert api.as_user(user).post("/api/v1/auth/revoke-all", format="json").status_code in (200, 204)
    lean, full = both({"subject": "s", "message": "m"}, auth=f"Bearer {issued_before}")
    assert lean.status_code == 401 and lean.shape() == full.shape() and "revoked" in lean.json()["detail"]
    token = bearer(user)  # issued after the revocation
    r = call({"subject": "s", "message": "m"}, auth=token)
    assert r.status_code == 201, r.body  # now kept in this process
    user.is_active = False
    user.save()
    lean, full = both({"subject": "s", "message": "m"}, auth=token)
    assert lean.status_code == 401 and lean.shape() == full.shape()
    user.delete()
    lean, full = both({"subject": "s", "message": "m"}, auth=token)
    assert lean.status_code == 401 and lean.shape() == full.shape()


def test_throttled_as_drf_does(world, settings):
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    user = world.user("a", "customer")
    rates = {**api_settings.DEFAULT_THROTTLE_RATES, "user": "2/min"}
    with mock.patch.object(SimpleRateThrottle, "THROTTLE_RATES", rates):
        first, second = call({"subject": "s", "message": "m"}, auth=bearer(user)), call({}, lean=False, auth=bearer(user))
        assert (first.status_code, second.status_code) == (201, 400)  # the two paths share the budget
        lean, full = both({"subject": "s", "message": "m"}, auth=bearer(user))
    assert lean.status_code == 429 and lean.shape()[:2] == full.shape()[:2]
    assert lean.headers["retry-after"] and abs(int(lean.headers["retry-after"]) - int(full.headers["retry-after"])) <= 1


@pytest.mark.parametrize(
    ("kw", "body"),
    [
        ({"content_type": "multipart/form-data; boundary=x"}, b"--x--"),
        ({"content_type": "text/plain"}, b"{}"),
        ({"headers": {"HTTP_ACCEPT": "text/html"}}, {}),
        ({"headers": {"HTTP_ACCEPT": "application/json; indent=4"}}, {}),
        ({"headers": {"QUERY_STRING": "format=json"}}, {}),
        ({"auth": "Token abc"}, {}),
        ({"path": "/api/v1/tickets/1/messages/"}, {}),
    ],
)
def test_other_requests_take_the_full_stack(kw, body, world):
    kw = {"auth": bearer(world.user("a", "customer")), **kw}
    assert not call(body, **kw).lean


def test_security_headers_and_no_session_on_the_lean_route(world):
    r = call({"subject": "s", "message": "m"}, auth=bearer(world.user("a", "customer")))
    assert r.lean and r.status_code == 201
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"
    assert "content-security-policy" in r.headers or "content-security-policy-report-only" in r.headers
    assert "set-cookie" not in r.headers
    assert call({}, auth=bearer(world.user("a", "customer")), headers={"HTTP_HOST": "evil.example"}).status_code == 400


def test_kept_principals_follow_membership_and_organization_changes(world):
    customer = world.user("a", "customer")
    token = bearer(customer)
    body = {"subject": "s", "message": "m"}
    assert call(body, auth=token).json()["origin_type"] == "customer"
    membership = customer.memberships.get()
    membership.is_active = False
    membership.save()
    assert call(body, auth=token).status_code == 403  # no membership: no role to open tickets with
    membership.is_active = True
    membership.save()
    assert call(body, auth=token).status_code == 201
    org = world.tenant("a-customer")
    org.status = "suspended"
    org.save()
    assert call(body, auth=token).status_code == 403
    org.status = "active"
    org.save()
    # a membership that reaches further becomes the default: the new context is used at once
    staff_org = world.tenant("a")
    MembershipFactory(user=customer, organization=staff_org, role=Role.ADMIN)
    assert call(body, auth=token).json()["origin_type"] == "tenant"
    # a partner starting to serve another tenant
    partner_admin = world.user("partner", "admin")
    ptoken = bearer(partner_admin)
    assert call(body, auth=ptoken).status_code == 201  # serves one tenant: no need to name it
    world.tenant("partner").served_tenants.add(world.tenant("b"))
    r = call(body, auth=ptoken)
    assert r.status_code == 400 and "serve several" in r.json()["detail"]


def test_kept_principals_follow_queryset_updates_of_the_tenants_app(world):
    """Suspending a customer changes its organization's status with a queryset update (no signal
    for the organization); the kept context is not used any more. Any other update() of users,
    memberships or organizations is followed by `tenancy_changed()`, which does the same."""
    from apps.core.tenancy import tenancy_changed
    from apps.tenants.customers import services as customer_services
    from apps.tenants.models import Membership
    from tests.factories.customers import customer_of

    user = world.user("a", "customer")
    token = bearer(user)
    body = {"subject": "s", "message": "m"}
    customer = customer_of(world, "a")
    assert call(body, auth=token).status_code == 201  # kept now
    customer_services.customer_transition(customer, actor=None, to_state="suspended", reason="unpaid")
    assert call(body, auth=token).status_code == 403
    customer_services.customer_transition(customer, actor=None, to_state="active", reason="paid")
    assert call(body, auth=token).status_code == 201
    Membership.objects.filter(user=user).update(is_active=False)
    assert call(body, auth=token).status_code == 201  # still kept: nothing said it changed
    tenancy_changed()
    assert call(body, auth=token).status_code == 403


def test_kept_principals_expire_without_a_signal(world, monkeypatch):
    from apps.tenants.models import Membership
    from apps.tickets import principals

    customer = world.user("a", "customer")
    token = bearer(customer)
    assert call({"subject": "s", "message": "m"}, auth=token).status_code == 201
    Membership.objects.filter(user=customer).update(is_active=False)  # no signal
    later = principals._clock() + principals.TTL + 1
    monkeypatch.setattr(principals, "_clock", lambda: later)
    assert call({"subject": "s", "message": "m"}, auth=token).status_code == 403


def test_lean_create_works_without_redis(world, sla, settings):
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0",
                                   "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}}}
    token = bearer(world.user("a", "customer"))
    for _ in range(2):
        with frozen(MON_16):
            r = call({"subject": "s", "message": "m", "priority": "high"}, auth=token)
        assert r.lean and r.status_code == 201, r.body
        assert r.json()["resolution_due_at"] == "2026-03-03T15:00:00Z"



def test_lean_create_reads_no_user_or_membership_rows_once_kept(world, django_assert_max_num_queries):
    token = bearer(world.user("a", "customer"))
    assert call({"subject": "s", "message": "m"}, auth=token).status_code == 201  # keeps the principal and the configuration
    # savepoint (the test's transaction), ticket, message, timeline, outbox, release: no user or membership query
    with django_assert_max_num_queries(6):
        assert call({"subject": "s", "message": "m"}, auth=token).status_code == 201


class _PgCause(Exception):
    def __init__(self, sqlstate):
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(("sqlstate", "status"), [("53100", 507), ("53300", 503)])
def test_database_out_of_resources_answers_as_drf_does(sqlstate, status, world):
    from django.db import OperationalError

    error = OperationalError("out of resources")
    error.__cause__ = _PgCause(sqlstate)
    with mock.patch("apps.tickets.services.ticket_create", side_effect=error):
        lean, full = both({"subject": "s", "message": "m"}, auth=bearer(world.user("a", "customer")))
    assert lean.status_code == status and lean.shape() == full.shape() and lean.headers["retry-after"]


def test_an_unexpected_error_is_a_500_on_both_routes(world):
    with mock.patch("apps.tickets.services.ticket_create", side_effect=RuntimeError("bug")):
        lean, full = both({"subject": "s", "message": "m"}, auth=bearer(world.user("a", "customer")))
    assert lean.status_code == full.status_code == 500

from itertools import count

from apps.core.choices import Role
from apps.tickets.models import BusinessCalendar, CannedResponse, Mailbox, MailMessage, SlaPolicy, Ticket, TicketAgent
from tests.factories.tickets import SlaPolicyFactory, TicketFactory
from tests.isolation import IsolationCase

CASES = [
    IsolationCase(
        name="tickets.ticket",
        make=lambda w, key: TicketFactory(tenant=w.tenant(key)),
        api_list="ticket-list",
        api_detail="ticket-detail",
        admin_model=Ticket,
        # naming another tenant must be refused for everyone on A's side
        create_payload=lambda w, foreign: {"subject": "x", "message": "y", "tenant": foreign.tenant.slug},
        patch_payload={"subject": "hijacked"},
    ),
    IsolationCase(
        name="tickets.slapolicy",
        make=lambda w, key: SlaPolicyFactory(tenant=w.tenant(key)),
        api_list="slapolicy-list",
        api_detail="slapolicy-detail",
        admin_model=SlaPolicy,
        create_payload=lambda w, foreign: {"name": "x", "priority": "low", "first_response_minutes": 1, "resolution_minutes": 2,
                                           "tenant": foreign.tenant.slug},
        patch_payload={"name": "hijacked"},
    ),
    IsolationCase(
        name="tickets.businesscalendar",
        make=lambda w, key: BusinessCalendar.objects.create(
            tenant=w.tenant(key), name=f"cal {key}", working_hours={"mon": [["09:00", "17:00"]]}
        ),
        api_list="businesscalendar-list",
        api_detail="businesscalendar-detail",
        admin_model=BusinessCalendar,
        create_payload=lambda w, foreign: {"name": "x", "tenant": foreign.tenant.slug},
        patch_payload={"name": "hijacked"},
    ),
    IsolationCase(
        name="tickets.ticketagent",
        make=lambda w, key: TicketAgent.objects.create(tenant=w.tenant(key), user=w.user(key, Role.SUPPORT_AGENT)),
        admin_model=TicketAgent,
    ),
]



_seq = count(1)


def _mailbox(w, key):
    # addresses are unique, and the admin crawl makes every case's row in one world
    n = next(_seq)
    return Mailbox.objects.create(tenant=w.tenant(key), name=f"mail {key} {n}", address=f"support{n}@{key}.isolation.test", kind="smtp")


def _mail_message(w, key):
    box = _mailbox(w, key)
    return MailMessage.objects.create(tenant=box.tenant, mailbox=box, direction="in", outcome="refused", sender="x@y.test",
                                      message_id=f"m-{key}-{box.pk}@isolation.test", reason="isolation")


CASES += [
    IsolationCase(
        name="tickets.mailbox",
        make=_mailbox,
        api_list="mailbox-list",
        api_detail="mailbox-detail",
        admin_model=Mailbox,
        create_payload=lambda w, foreign: {"name": "x", "address": "new@isolation.test", "kind": "smtp", "tenant": foreign.tenant.slug},
        patch_payload={"name": "hijacked"},
    ),
    IsolationCase(name="tickets.mailmessage", make=_mail_message, admin_model=MailMessage),
]
CASES.append(
    IsolationCase(
        name="tickets.cannedresponse",
        make=lambda w, key: CannedResponse.objects.create(tenant=w.tenant(key), title=f"Thanks {key}", body="Hi {{ customer.name }}"),
        admin_model=CannedResponse,
    )
)

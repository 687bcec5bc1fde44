"""Send a test notification to a person (through their preferences) or a test message to one channel."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.core.choices import OrgKind

from ...choices import DeliveryStatus, NotificationType, Priority
from ...models import ChannelConfig, Delivery
from ...services import channel_test, deliveries_send, notify_team


class Command(BaseCommand):
    help = ("Send a test notification to --user (in-app and the channels their preferences choose; --send-now "
            "delivers in this process instead of through the worker), or a test message to --channel ID.")

    def add_arguments(self, parser):
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--user", help="Username of the recipient.")
        who.add_argument("--channel", type=int, help="Id of a channel config to test.")
        parser.add_argument("--tenant", help="Tenant slug (default: the user's tenant).")
        parser.add_argument("--priority", default=Priority.MEDIUM, choices=Priority.values)
        parser.add_argument("--title", default="Test notification from opsportal")
        parser.add_argument("--message", default="If you can read this, notifications reach you.")
        parser.add_argument("--send-now", action="store_true", help="Deliver now in this process (no worker needed).")

    def handle(self, *args, user=None, channel=None, tenant=None, priority, title, message, send_now, **options):
        if channel is not None:
            row = ChannelConfig.objects.filter(pk=channel).first()
            if row is None:
                raise CommandError(f"No channel config with id {channel}.")
            ok, detail = channel_test(actor=None, channel=row)
            if not ok:
                raise CommandError(f"channel {row.name!r} ({row.kind}): {detail}")
            self.stdout.write(f"channel {row.name!r} ({row.kind}): {detail}")
            return
        person = get_user_model().objects.filter(username=user).first()
        if person is None:
            raise CommandError(f"No user {user!r}.")
        memberships = person.memberships.filter(is_active=True, organization__kind=OrgKind.TENANT).select_related("organization")
        if tenant:
            memberships = memberships.filter(organization__slug=tenant)
        membership = memberships.order_by("pk").first()
        if membership is None:
            raise CommandError(f"{user} is not an active member of {'tenant ' + tenant if tenant else 'any tenant'}.")
        try:
            created = notify_team(
                tenant=membership.organization, team_members=[person.pk], notification_type=NotificationType.SYSTEM_ALERT,
                title=title, message=message, priority=priority, metadata={"test": True}, auto_send=True,
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        ids = list(Delivery.objects.filter(notification__in=created, status=DeliveryStatus.PENDING).values_list("pk", flat=True))
        if send_now and ids:
            deliveries_send(delivery_ids=ids)
        rows = Delivery.objects.filter(notification__in=created).order_by("kind")
        summary = ", ".join(f"{d.kind}: {d.status}{' (' + d.reason + ')' if d.reason else ''}"
                            f"{' — ' + d.last_error[:200] if d.last_error else ''}" for d in rows) or "in-app only"
        self.stdout.write(f"notification #{created[0].pk} to {person.username} in {membership.organization.slug}: {summary}")

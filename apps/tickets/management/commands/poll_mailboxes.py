from django.core.management.base import BaseCommand, CommandError

from apps.tickets.mail.services import mailbox_poll, mailboxes_due


class Command(BaseCommand):
    help = "Poll the IMAP ticket mailboxes now (what the beat task does every TICKETS_MAIL_POLL_SECONDS)."

    def add_arguments(self, parser):
        parser.add_argument("--mailbox", type=int, action="append", help="Only this mailbox id (repeatable).")
        parser.add_argument("--batch", type=int, default=None, help="At most this many messages per mailbox.")

    def handle(self, *args, **options):
        failed = 0
        for pk in options["mailbox"] or mailboxes_due():
            try:
                counts = mailbox_poll(mailbox_id=pk, batch=options["batch"])
            except Exception as exc:  # the service stored it on the mailbox; report and go on
                failed += 1
                self.stderr.write(f"mailbox {pk}: {type(exc).__name__}: {exc}")
                continue
            self.stdout.write(f"mailbox {pk}: " + " ".join(f"{k}={v}" for k, v in counts.items() if v))
        if failed:
            raise CommandError(f"{failed} mailbox(es) could not be polled")

import signal
import threading

from django.core.management.base import BaseCommand

from apps.tickets.mail.receiver import ReceiverController


class Command(BaseCommand):
    help = "Run the SMTP (or --lmtp LMTP) receiver that turns mail to the receiver mailboxes into tickets."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=2525)
        parser.add_argument(
            "--lmtp", action="store_true", help="Speak LMTP (for Postfix's lmtp: transport or Dovecot-style delivery)."
        )

    def handle(self, *args, **options):
        controller = ReceiverController(hostname=options["host"], port=options["port"], lmtp=options["lmtp"])
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        controller.start()
        self.stdout.write(f"{'LMTP' if options['lmtp'] else 'SMTP'} receiver on {options['host']}:{options['port']}")
        try:
            stop.wait()
        finally:
            controller.stop()

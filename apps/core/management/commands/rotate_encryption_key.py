"""Re-encrypt every stored secret under the newest key in PORTAL_ENCRYPTION_KEYS."""

from django.core.management.base import BaseCommand

from apps.core import crypto


class Command(BaseCommand):
    help = "Re-encrypt all secrets (every EncryptedTextField) under the newest key version."

    def add_arguments(self, parser):
        parser.add_argument("--generate", action="store_true", help="Only print a new random key to add to PORTAL_ENCRYPTION_KEYS.")

    def handle(self, *args, **options):
        if options["generate"]:
            self.stdout.write(f"{crypto.current_version() + 1}:{crypto.generate_key()}")
            return
        changed = crypto.rotate_all()
        for label, count in changed.items():
            self.stdout.write(f"  {label}: {count} re-encrypted")
        self.stdout.write(self.style.SUCCESS(f"current key version v{crypto.current_version()}; {sum(changed.values())} secrets re-encrypted"))

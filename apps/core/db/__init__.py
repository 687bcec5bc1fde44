"""Database backends of the portal (settings.DATABASES picks them)."""

"""A case-insensitive index on Django's `auth_user.email`, for the lookups by `email__iexact`
(inbound mail's sender, SSO account linking). Django compiles `iexact` to `UPPER(email) =
UPPER(%s)` on PostgreSQL and to `email LIKE %s ESCAPE '\\'` on SQLite, so each gets the index its
planner can use: an expression index on UPPER(email), or email COLLATE NOCASE (SQLite's LIKE
optimisation). `auth.User` is Django's model, so the index is added here, not in its Meta."""

from django.db import migrations, models
from django.db.models.functions import Collate, Upper

NAME = "core_user_email_ci_idx"


def _index(vendor: str) -> models.Index:
    if vendor == "sqlite":
        return models.Index(Collate("email", "NOCASE"), name=NAME)
    return models.Index(Upper("email"), name=NAME)


def _options(schema_editor) -> dict:
    # CONCURRENTLY on PostgreSQL: a large user table stays writable while the index builds
    return {"concurrently": True} if schema_editor.connection.vendor == "postgresql" else {}


def add(apps, schema_editor):
    User = apps.get_model("auth", "User")
    schema_editor.add_index(User, _index(schema_editor.connection.vendor), **_options(schema_editor))


def remove(apps, schema_editor):
    User = apps.get_model("auth", "User")
    schema_editor.remove_index(User, _index(schema_editor.connection.vendor), **_options(schema_editor))


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("core", "0004_event_topic_timeline_index"),
    ]

    operations = [migrations.RunPython(add, remove, elidable=False)]

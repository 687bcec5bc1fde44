"""People in the isolation matrix: the "People" admin (PortalUser) and Django's User admin as
tenant staff see it (both answer autocomplete and raw-id lookups for foreign keys to users)."""

from django.contrib.auth import get_user_model

from apps.core.users import PortalUser
from tests.isolation import AdminView, IsolationCase

CASES = [
    IsolationCase(
        name="core.portaluser",
        make=lambda w, key: PortalUser.objects.get(pk=w.user(key, "viewer").pk),
        admin_model=PortalUser,
    ),
    IsolationCase(
        name="auth.user",
        make=lambda w, key: w.user(key, "viewer"),
        admin_model=get_user_model(),
    ),
]

# The styled refusal (apps/core/refusals.py) names who one is acting as: A's name to A's people,
# never B's. Beat's admin is the page tenant staff most often reach and may not see.
ADMIN_VIEWS = [
    AdminView(name="core.refusal_page", path="/admin/django_celery_beat/periodictask/", make=lambda w, key: w.tenant(key).name,
              sees=("a", "admin"), statuses=(403,)),
]

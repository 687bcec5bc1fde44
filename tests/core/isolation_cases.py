"""People in the isolation matrix: the "People" admin (PortalUser) and Django's User admin as
tenant staff see it (both answer autocomplete and raw-id lookups for foreign keys to users)."""

from django.contrib.auth import get_user_model

from apps.core.users import PortalUser
from tests.isolation import IsolationCase

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

"""Who calls the API, kept per process for the tickets' lean create route (api/create_wsgi.py).

Each request through DRF reads the user row (JWT authentication) and the user's memberships with
their organizations (`apps.core.tenancy.acting`): two or three queries whose answer changes when a
membership, a user or an organization does. The lean route keeps, per process, the user row and
the acting context per organization choice together with a version token read from the cache on
every request (`apps.core.cache.version_token`), like the tenant configuration (config.py):

- saving or deleting a user, a membership, an organization or a customer, and changing which
  tenants a partner serves, set a new token at once and again after commit (`invalidate`,
  connected in apps.py): every process reads the rows again on its next request;
- an entry is trusted at most `TTL` seconds even under an unchanged token, which bounds a change
  made without signals (a queryset `update()`) or an invalidation lost while Redis was down;
- with Redis down every call sees a new token, so nothing is trusted and the rows are read each time.

What is kept is the same `Acting` the DRF path computes (`tenancy.acting` on a fresh user
object), or the refusal (`PermissionDenied`) for an organization the user is not a member of.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied

from apps.core.cache import version_token
from apps.core.tenancy import (
    TENANCY_VERSION_KEY,
    TENANCY_VERSION_TTL,
    Acting,
    acting,
    choose_organization,
    remember_acting,
    tenancy_changed,
)

TTL = TENANCY_VERSION_TTL
MAX_USERS = 5000  # per process; past it the memo starts again
_VERSION_KEY = TENANCY_VERSION_KEY  # bumped by apps.core.tenancy.tenancy_changed (signals below, and queryset updates)


@dataclass
class _Entry:
    token: str
    loaded_at: float
    user: object | None
    contexts: dict[str | None, Acting | str] = field(default_factory=dict)  # choice -> Acting or refusal


_memo: dict[str, _Entry] = {}  # str(user id) -> entry
_clock = time.monotonic


def _entry(user_id) -> _Entry:
    token = version_token(_VERSION_KEY, TTL)
    entry = _memo.get(str(user_id))  # the JWT claim may be a string, the row's pk an int
    now = _clock()
    if entry is None or entry.token != token or now - entry.loaded_at > TTL:
        if len(_memo) >= MAX_USERS:
            _memo.clear()
        user = get_user_model().objects.filter(pk=user_id).first()
        entry = _memo[str(user_id)] = _Entry(token, now, user)
    return entry


def user(user_id):
    """A fresh copy of the user row with this id (None when there is none): callers may set
    attributes on it (the acting context) without touching the kept one."""
    kept = _entry(user_id).user
    return copy.copy(kept) if kept is not None else None


def act_as(user_obj, choice: str | None) -> Acting:
    """Give `user_obj` (from `user()`) its acting context within organization `choice` (the
    `X-Organization` header, None for the default): what `tenancy.acting` computes, kept with the
    user row. Raises Django's PermissionDenied as `acting` does for an organization the user is
    not a member of."""
    entry = _memo.get(str(user_obj.pk))
    choose_organization(user_obj, choice)
    if entry is None or entry.user is None:
        return acting(user_obj)
    kept = entry.contexts.get(choice)
    if kept is None:
        try:
            kept = acting(user_obj)
        except PermissionDenied as exc:
            kept = str(exc)
        entry.contexts[choice] = kept
    if isinstance(kept, str):
        raise PermissionDenied(kept)
    remember_acting(user_obj, kept)
    return kept


def invalidate(*args, **kwargs) -> None:
    """A new token now and after commit (signal receiver: users, memberships, organizations)."""
    if kwargs.get("update_fields") and set(kwargs["update_fields"]) <= {"last_login"}:
        return  # a login (simplejwt's UPDATE_LAST_LOGIN) changes nothing this keeps
    tenancy_changed()


def connect_invalidation() -> None:
    """Users, memberships, organizations (status, parent, served tenants) and customers (whose
    status change suspends the organization with a queryset update)."""
    from django.apps import apps
    from django.db.models.signals import m2m_changed, post_delete, post_save

    models = [get_user_model(), apps.get_model("tenants", "Membership"), apps.get_model("tenants", "Organization"),
              apps.get_model("tenants", "Customer")]
    for model in models:
        post_save.connect(invalidate, sender=model, dispatch_uid=f"tickets-principals-save-{model._meta.label}")
        post_delete.connect(invalidate, sender=model, dispatch_uid=f"tickets-principals-delete-{model._meta.label}")
    served = apps.get_model("tenants", "Organization").served_tenants.through
    m2m_changed.connect(invalidate, sender=served, dispatch_uid="tickets-principals-served")

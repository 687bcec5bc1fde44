"""The admin's sign-in form: a customer (a valid account without staff access) is told that the
admin is for staff and where customers go, instead of Django's "enter the correct username and
password for a staff account" (which reads as a wrong password)."""

from __future__ import annotations

from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError


class PortalAdminAuthenticationForm(AdminAuthenticationForm):
    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "api_only": (
            "This is a customer account: it works with the API, not with the admin, which is for staff. "
            "Use the API (see /api/docs/) with the same username and password."
        ),
    }

    def confirm_login_allowed(self, user):
        if user.is_active and not user.is_staff:
            # the password was right (authenticate() passed): say why, the API answers the same question anyway
            raise ValidationError(self.error_messages["api_only"], code="api_only")
        super().confirm_login_allowed(user)

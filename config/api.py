"""The `/api/v1/` tree: auth endpoints plus every app's `api/urls.py`, found by app."""

import importlib
import importlib.util

from django.conf import settings
from django.urls import include, path

from apps.core.api.auth_views import RevokeAllView, TokenCheckView, TokenObtainView, TokenRefreshRotateView

# Every portal app in INSTALLED_APPS order (lowest layer first), so URL names resolve the same
# way everywhere; an app without `api/urls.py` simply adds nothing.
APPS_WITH_API = [name for name in settings.INSTALLED_APPS if name.startswith("apps.")]

urlpatterns = [
    path("auth/token", TokenObtainView.as_view(), name="auth-token"),
    path("auth/refresh", TokenRefreshRotateView.as_view(), name="auth-refresh"),
    path("auth/verify", TokenCheckView.as_view(), name="auth-verify"),
    path("auth/revoke-all", RevokeAllView.as_view(), name="auth-revoke-all"),
]
for app in APPS_WITH_API:
    if importlib.util.find_spec(f"{app}.api") is not None and importlib.util.find_spec(f"{app}.api.urls") is not None:
        urlpatterns.append(path("", include(f"{app}.api.urls")))

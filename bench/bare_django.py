"""The reference of bench_http: a bare Django project answering one JSON view — no apps, no
middleware, no database — served by gunicorn with the portal's settings (config/gunicorn.conf.py).
What Django and gunicorn themselves cost per request on this machine."""

import django
from django.conf import settings
from django.http import JsonResponse
from django.urls import path


def me(request):
    return JsonResponse({"id": 1, "username": "bare", "email": "bare@example.com", "is_staff": False})


settings.configure(DEBUG=False, SECRET_KEY="bench-only", ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__, MIDDLEWARE=[],
                   INSTALLED_APPS=[], USE_TZ=True)
django.setup()
urlpatterns = [path("me", me)]

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()

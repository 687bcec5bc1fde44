"""One HTTP stack (issue 16): WSGI and ASGI serve the same application — the URLconf's views
behind the same middleware, no wrapper in front of either."""

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client
from rest_framework_simplejwt.tokens import RefreshToken

from apps.alerts.services import ingest_token_create

pytestmark = pytest.mark.django_db


def test_config_wsgi_and_asgi_are_django_s_own_handlers():
    from django.core.handlers.asgi import ASGIHandler
    from django.core.handlers.wsgi import WSGIHandler

    from config.asgi import application as asgi
    from config.wsgi import application as wsgi

    assert type(wsgi) is WSGIHandler and type(asgi) is ASGIHandler


def test_the_same_answers_over_wsgi_and_asgi(world):
    jwt = {"HTTP_AUTHORIZATION": f"Bearer {RefreshToken.for_user(world.user('a', 'admin')).access_token}"}
    me_wsgi = Client().get("/api/v1/users/me", **jwt)
    me_asgi = async_to_sync(AsyncClient().get)("/api/v1/users/me", headers={"Authorization": jwt["HTTP_AUTHORIZATION"]})
    assert me_wsgi.status_code == me_asgi.status_code == 200 and me_wsgi.json() == me_asgi.json()
    token = ingest_token_create(actor=None, tenant=world.tenant("a"), name="am")[1]
    body = '[{"labels": {"alertname": "A", "instance": "h1"}}]'
    over_asgi = async_to_sync(AsyncClient().post)("/api/v1/alerts/ingest", body, content_type="application/json",
                                                  headers={"Authorization": f"Bearer {token}"})
    assert over_asgi.status_code == 200 and over_asgi.json()["created"] == 1
    over_wsgi = Client().post("/api/v1/alerts/ingest", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert over_wsgi.status_code == 200 and over_wsgi.json()["updated"] == 1

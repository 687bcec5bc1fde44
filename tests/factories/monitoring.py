import factory

from apps.monitoring.models import Endpoint


class EndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Endpoint

    name = factory.Sequence(lambda n: f"endpoint-{n}")
    kind = "http"
    host = "127.0.0.1"
    port = 9
    path = "/"
    interval_seconds = 60
    timeout_seconds = 2.0

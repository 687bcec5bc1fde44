"""The heartbeat ping view: no login (the UUID is the secret), GET or POST, tiny answers."""

from django.http import HttpResponse, HttpResponseNotAllowed
from django.views.decorators.csrf import csrf_exempt

from .services import heartbeat_ping


@csrf_exempt
def ping_view(request, ping_id, kind="success"):
    if request.method not in ("GET", "POST", "HEAD"):
        return HttpResponseNotAllowed(["GET", "POST", "HEAD"])
    body = request.body[:500].decode("utf-8", "replace") if request.method == "POST" else ""
    endpoint = heartbeat_ping(ping_id=ping_id, kind=kind, message=body)
    if endpoint is None:
        return HttpResponse("not found", status=404, content_type="text/plain")
    return HttpResponse("OK", content_type="text/plain")

"""Alerts API: alerts (list/retrieve + state actions), configuration CRUD, ingestion."""

from __future__ import annotations

import functools
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.db.models import Prefetch
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api.auth import PortalJWTAuthentication
from apps.core.api.errors import portal_exception_handler
from apps.core.api.pagination import KeysetPagination
from apps.core.api.parsers import check_depth, parse_json_body
from apps.core.api.renderers import dumps
from apps.core.api.viewsets import TenantScopedReadOnlyViewSet, TenantScopedViewSet
from apps.core.choices import OrgKind
from apps.core.mfa import PortalSessionAuthentication
from apps.core.policy import policy
from apps.core.tenancy import acting, choose_organization
from apps.tenants.tokens.authentication import PortalTokenAuthentication

from .. import incident, ingest_config, services
from ..ingest import IngestRateLimited, alerts_ingest, ingest_gate
from ..models import (
    Alert,
    AlertRecipientState,
    AlertRule,
    AlertSubscription,
    EscalationPolicy,
    IngestToken,
    InhibitRule,
    RunbookRequest,
    Silence,
)
from ..timeline import timeline_page
from . import filters, schema, serializers  # noqa: F401  (schema registers the auth extension)


class AlertViewSet(TenantScopedReadOnlyViewSet):
    """Alerts you may see: tenant admins every alert of the tenant, other staff their own and
    broadcast ones. Dismissed alerts are hidden unless `?dismissed=true`."""

    queryset = Alert.objects.select_related("assigned_to", "acknowledged_by")
    serializer_class = serializers.AlertSerializer
    filterset_class = filters.AlertFilter
    pagination_class = KeysetPagination  # grows without bound: by cursor (docs/tickets.md)
    search_fields = ["title", "message", "fingerprint"]
    ordering_fields = ["last_seen", "first_seen", "severity", "occurrences"]
    action_permissions = {"acknowledge": "acknowledge", "resolve": "resolve", "read": "read", "dismiss": "dismiss", "unread_count": "view",
                          "open_ticket": "open_ticket", "runbook": "run_runbook"}

    def get_queryset(self):
        qs = super().get_queryset().prefetch_related(
            Prefetch("recipient_states", queryset=AlertRecipientState.objects.filter(user_id=self.request.user.pk), to_attr="my_states")
        )
        if self.action == "list" and "dismissed" not in self.request.query_params:
            qs = qs.exclude(pk__in=AlertRecipientState.objects.filter(user_id=self.request.user.pk, dismissed_at__isnull=False).values("alert_id"))
        return qs

    def _answer(self, alert):
        return Response(self.get_serializer(self.get_queryset().get(pk=alert.pk)).data)

    @extend_schema(request=serializers.AlertCreateSerializer, responses={201: serializers.AlertSerializer})
    def create(self, request):
        """Raise an alert: assigned to a staff member, or a broadcast to the tenant's staff."""
        body = serializers.AlertCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        alert = services.alert_create(actor=request.user, **body.validated_data)
        # an alert assigned to someone else is not in the creator's list, but they see what they sent
        shown = self.get_queryset().filter(pk=alert.pk).first() or alert
        return Response(self.get_serializer(shown).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=serializers.AlertSerializer)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        return self._answer(services.alert_acknowledge(self.get_object(), actor=request.user))

    @extend_schema(request=serializers.ResolveSerializer, responses=serializers.AlertSerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        body = serializers.ResolveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return self._answer(services.alert_resolve(self.get_object(), actor=request.user, reason=body.validated_data.get("reason", "")))

    @extend_schema(request=None, responses=serializers.AlertSerializer)
    @action(detail=True, methods=["put", "post"])
    def read(self, request, pk=None):
        alert = self.get_object()
        services.alert_mark_read(alert, actor=request.user)
        return self._answer(alert)

    @extend_schema(request=None, responses=serializers.AlertSerializer)
    @action(detail=True, methods=["put", "post"])
    def dismiss(self, request, pk=None):
        alert = self.get_object()
        services.alert_dismiss(alert, actor=request.user)
        return Response(self.get_serializer(super().get_queryset().prefetch_related(
            Prefetch("recipient_states", queryset=AlertRecipientState.objects.filter(user_id=request.user.pk), to_attr="my_states")
        ).get(pk=alert.pk)).data)

    @extend_schema(
        request=serializers.AlertOpenTicketSerializer,
        responses={201: serializers.AlertTicketLinkSerializer, 200: serializers.AlertTicketLinkSerializer},
    )
    @action(detail=True, methods=["post"], url_path="open-ticket")
    def open_ticket(self, request, pk=None):
        """Open the incident ticket of this alert, or link it to the open one with the same dedup key."""
        body = serializers.AlertOpenTicketSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        ticket, opened = incident.alert_open_ticket(self.get_object(), actor=request.user, **body.validated_data)
        return Response({"ticket_id": ticket.pk, "ticket_number": ticket.number, "opened": opened},
                        status=status.HTTP_201_CREATED if opened else status.HTTP_200_OK)

    @extend_schema(request=serializers.AlertRunbookSerializer, responses=serializers.RunbookRequestSerializer)
    @action(detail=True, methods=["post"])
    def runbook(self, request, pk=None):
        """Run a runbook job for this alert (parameters and target mapped from its labels),
        optionally behind a second person's approval."""
        from apps.targets.models import Job

        body = serializers.AlertRunbookSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        alert = self.get_object()
        job = Job.objects.visible_to(request.user).filter(pk=data["job"], tenant_id=alert.tenant_id).first()
        if job is None:
            raise exceptions.ValidationError({"job": "No such job in this alert's tenant."})
        req = incident.runbook_request(alert, actor=request.user, job=job, target_ids=data.get("targets"), params=data.get("params"),
                                       parameter_labels=data.get("parameter_labels"), target_label=data.get("target_label"),
                                       require_approval=data.get("require_approval", False))
        return Response(serializers.RunbookRequestSerializer(req, context=self.get_serializer_context()).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=serializers.UnreadCountSerializer)
    @action(detail=False, methods=["get"], url_path="unread/count")
    def unread_count(self, request):
        seen = AlertRecipientState.objects.filter(user_id=request.user.pk, read_at__isnull=False).values("alert_id")
        count = Alert.objects.visible_to(request.user).exclude(pk__in=seen).count()
        return Response({"count": count})


class AlertRuleViewSet(TenantScopedViewSet):
    """Alert rules (`sla`, `threshold`, `event`, `schedule`); conditions validated per type."""

    queryset = AlertRule.objects.all()
    serializer_class = serializers.AlertRuleSerializer
    filterset_class = filters.AlertRuleFilter
    search_fields = ["name"]
    create_service = staticmethod(services.rule_create)
    update_service = staticmethod(services.rule_update)
    delete_service = staticmethod(services.rule_delete)


class AlertSubscriptionViewSet(TenantScopedViewSet):
    """Your subscriptions to alert types (tenant admins: everyone's)."""

    queryset = AlertSubscription.objects.select_related("user")
    serializer_class = serializers.AlertSubscriptionSerializer
    filterset_class = filters.AlertSubscriptionFilter
    create_service = staticmethod(services.subscription_create)
    update_service = staticmethod(services.subscription_update)
    delete_service = staticmethod(services.subscription_delete)
    action_permissions = {"replace_all": "add"}

    @extend_schema(operation_id="alerts_subscriptions_replace_all", request=serializers.AlertSubscriptionSerializer(many=True),
                   # the whole set as a plain array (a list serializer here would be documented as a page)
                   responses={200: {"type": "array", "items": {"$ref": "#/components/schemas/AlertSubscription"}}},
                   summary="Replace your whole set of subscriptions (a list; or {\"subscriptions\": [...]})")
    def replace_all(self, request):
        """`PUT /api/v1/alerts/subscriptions` (routed on the list path by the urls' router)."""
        data = request.data
        entries = data.get("subscriptions", data) if isinstance(data, dict) and "subscriptions" in data else data
        rows = services.subscriptions_replace(actor=request.user, subscriptions=entries)
        return Response(self.get_serializer(rows, many=True).data)


class SilenceViewSet(TenantScopedViewSet):
    """Silences (label matchers =, !=, =~, !~ and a time range); `POST …/expire` ends one now."""

    queryset = Silence.objects.all()
    serializer_class = serializers.SilenceSerializer
    filterset_class = filters.SilenceFilter
    create_service = staticmethod(services.silence_create)
    update_service = staticmethod(services.silence_update)
    delete_service = staticmethod(services.silence_delete)
    action_permissions = {"expire": "change"}

    @extend_schema(request=None, responses=serializers.SilenceSerializer)
    @action(detail=True, methods=["post"])
    def expire(self, request, pk=None):
        return Response(self.get_serializer(services.silence_expire(self.get_object(), actor=request.user)).data)


class InhibitRuleViewSet(TenantScopedViewSet):
    queryset = InhibitRule.objects.all()
    serializer_class = serializers.InhibitRuleSerializer
    filterset_class = filters.InhibitRuleFilter
    create_service = staticmethod(services.inhibit_rule_create)
    update_service = staticmethod(services.inhibit_rule_update)
    delete_service = staticmethod(services.inhibit_rule_delete)


class EscalationPolicyViewSet(TenantScopedViewSet):
    queryset = EscalationPolicy.objects.all()
    serializer_class = serializers.EscalationPolicySerializer
    filterset_class = filters.EscalationPolicyFilter
    create_service = staticmethod(services.escalation_policy_create)
    update_service = staticmethod(services.escalation_policy_update)
    delete_service = staticmethod(services.escalation_policy_delete)


class IngestTokenViewSet(TenantScopedViewSet):
    """Per-tenant ingestion tokens. The raw token is in the create response only."""

    queryset = IngestToken.objects.all()
    serializer_class = serializers.IngestTokenSerializer
    filterset_class = filters.IngestTokenFilter
    http_method_names = ["get", "post", "delete", "head", "options"]
    delete_service = staticmethod(services.ingest_token_delete)
    action_permissions = {"revoke": "change"}

    def perform_create(self, serializer):
        data = serializer.validated_data
        token, raw = services.ingest_token_create(actor=self.request.user, tenant=data.get("tenant"), name=data["name"])
        token.raw_token = raw
        serializer.instance = token

    @extend_schema(request=None, responses=serializers.IngestTokenSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        return Response(self.get_serializer(services.ingest_token_revoke(self.get_object(), actor=request.user)).data)


# -- ingestion -------------------------------------------------------------------------------
class TokenPrincipal:
    """The caller of an ingestion endpoint authenticated by an ingestion token."""

    is_authenticated = True
    is_anonymous = False
    pk = None

    def __init__(self, token: IngestToken):
        self.token = token


class IngestTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer opa_…` (what Alertmanager's webhook `http_config.authorization` sends)."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, raw = header.partition(" ")
        raw = raw.strip()
        if scheme.lower() not in ("bearer", "token") or not raw.startswith(services.TOKEN_PREFIX):
            return None
        token = services.ingest_token_authenticate(raw)
        if token is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked ingestion token.")
        return TokenPrincipal(token), token

    def authenticate_header(self, request):
        return "Bearer"


class _IngestView(APIView):
    # a session owing its second factor is refused; portal API tokens (opp_) act as their owner, like a JWT
    authentication_classes = [IngestTokenAuthentication, PortalTokenAuthentication, PortalJWTAuthentication, PortalSessionAuthentication]
    permission_classes = []
    throttle_classes = []
    webhook = False

    @classmethod
    def as_view(cls, **initkwargs):
        """The URLconf's view: token requests are served by `token_ingest_view`, the rest by DRF."""
        return token_ingest_view(super().as_view(**initkwargs), webhook=cls.webhook)

    def _tenant_id(self, request) -> int:
        if isinstance(request.auth, IngestToken):
            return request.auth.tenant_id
        user = request.user
        if not getattr(user, "is_authenticated", False):
            raise exceptions.NotAuthenticated("Send an ingestion token (Authorization: Bearer opa_…) or a JWT.")
        if request.headers.get("X-Organization"):
            choose_organization(user, request.headers["X-Organization"])
        try:
            ctx = acting(user)
        except DjangoPermissionDenied as exc:
            raise exceptions.PermissionDenied(str(exc)) from exc
        if not policy.allows(user, "ingest", Alert):
            raise exceptions.PermissionDenied("Your role does not allow sending alerts.")
        if ctx.kind == OrgKind.TENANT and ctx.tenant_id:
            return ctx.tenant_id
        slug = request.query_params.get("tenant")
        if ctx.is_platform and slug:
            from apps.tenants.models import Organization

            org = Organization.objects.filter(slug=slug, kind=OrgKind.TENANT).first()
            if org is None:
                raise exceptions.ValidationError({"tenant": f"No tenant {slug!r}."})
            return org.pk
        raise exceptions.PermissionDenied("Alerts are ingested into a tenant: act within one (platform staff: ?tenant=<slug>).")

    def _body(self, request):
        return parse_json_body(request.body or b"null", exact_numbers=False)  # strings only: normalise refuses numbers

    def post(self, request):
        tenant_id = self._tenant_id(request)
        alerts, default_ends_after, source_name = payload_alerts(self._body(request), webhook=self.webhook)
        now = timezone.now()
        try:
            cfg = ingest_gate(tenant_id=tenant_id, count=len(alerts) if isinstance(alerts, list) else 1, now=now)
        except IngestRateLimited as exc:
            raise exceptions.Throttled(wait=exc.retry_after, detail=str(exc)) from exc
        actor = request.user if getattr(request.user, "pk", None) else None
        result = alerts_ingest(tenant_id=tenant_id, alerts=alerts, source_name=source_name,
                               default_ends_after=default_ends_after, actor=actor, now=now, config=cfg)
        return Response(result.as_dict(), status=status.HTTP_200_OK)


def payload_alerts(body, *, webhook: bool) -> tuple[object, timedelta | None, str]:
    """(alerts, resolve timeout, source name) of an ingestion body; shared by the token view and
    the DRF views. The list itself is checked by the service."""
    if not webhook:
        return body, timedelta(minutes=settings.ALERTS_RESOLVE_TIMEOUT_MINUTES), "api"
    if not isinstance(body, dict) or not isinstance(body.get("alerts"), list):
        raise exceptions.ValidationError({"alerts": "Expected Alertmanager's webhook payload: {version, status, receiver, alerts: [...]}."})
    if str(body.get("version", "")) != "4":
        raise exceptions.ValidationError({"version": f"Webhook payload version {body.get('version')!r} is not supported; Alertmanager sends \"4\"."})
    return body["alerts"], None, "alertmanager"


class BulkIngestView(_IngestView):
    """`POST /api/v1/alerts/ingest`: a list shaped like Alertmanager's `POST /api/v2/alerts`
    body ({labels, annotations, startsAt, endsAt, generatorURL}). Alerts without endsAt resolve
    after ALERTS_RESOLVE_TIMEOUT_MINUTES unless posted again. Requests with an ingestion token
    are served by `token_ingest_view` (the URLconf's view; same service)."""

    webhook = False

    @extend_schema(request=serializers.AlertmanagerAlertSerializer(many=True), responses=serializers.IngestResultSerializer,
                   parameters=[OpenApiParameter("tenant", str, description="Tenant slug (platform staff only)")])
    def post(self, request):
        return super().post(request)


class AlertmanagerWebhookView(_IngestView):
    """`POST /api/v1/alerts/ingest/alertmanager`: Alertmanager's webhook payload (version 4).
    Firing alerts stay open until Alertmanager sends them resolved (send_resolved)."""

    webhook = True

    @extend_schema(request=serializers.AlertmanagerWebhookSerializer, responses=serializers.IngestResultSerializer,
                   parameters=[OpenApiParameter("tenant", str, description="Tenant slug (platform staff only)")])
    def post(self, request):
        return super().post(request)


class RunbookRequestViewSet(TenantScopedReadOnlyViewSet):
    """Runbook runs requested for alerts; `approve` (a second person) and `reject` pending ones."""

    queryset = RunbookRequest.objects.select_related("job", "alert")
    serializer_class = serializers.RunbookRequestSerializer
    filterset_fields = ["status", "alert", "ticket", "job"]
    action_permissions = {"approve": "approve", "reject": "reject"}

    @extend_schema(request=None, responses=serializers.RunbookRequestSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        req = incident.runbook_approve(self.get_object(), actor=request.user)
        return Response(self.get_serializer(self.get_queryset().get(pk=req.pk)).data)

    @extend_schema(request=serializers.RunbookRejectSerializer, responses=serializers.RunbookRequestSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        body = serializers.RunbookRejectSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        req = incident.runbook_reject(self.get_object(), actor=request.user, reason=body.validated_data.get("reason", ""))
        return Response(self.get_serializer(self.get_queryset().get(pk=req.pk)).data)


class TenantTimelineView(APIView):
    """One tenant's timeline, newest first: alerts, tickets, job runs, runbooks, maintenance
    windows, health changes (endpoints, trend rules), deployment operations and audited
    configuration changes, from the events outbox. Filters: `kind` (comma list: alert, ticket,
    job_run, runbook, maintenance, endpoint (alias health), operation (alias deployment),
    config), `after` (inclusive) / `before` (exclusive) as ISO time or date; paged by `cursor`
    (`next_cursor`), `limit` ≤ 200."""

    @extend_schema(
        parameters=[OpenApiParameter("kind", str, description="Comma list of kinds; all when empty."),
                    OpenApiParameter("cursor", str), OpenApiParameter("limit", int),
                    OpenApiParameter("before", str, description="ISO 8601 time or date (exclusive)."),
                    OpenApiParameter("after", str, description="ISO 8601 time or date (inclusive).")],
        responses=serializers.TimelinePageSerializer,
    )
    def get(self, request, slug: str):
        try:
            page = timeline_page(user=request.user, tenant_slug=slug, kinds=request.query_params.get("kind", ""),
                                 cursor=request.query_params.get("cursor") or "", limit=request.query_params.get("limit") or 50,
                                 before=request.query_params.get("before") or "", after=request.query_params.get("after") or "")
        except DjangoPermissionDenied as exc:
            raise exceptions.NotFound(str(exc)) from exc
        return Response(page)


# -- ingestion with a token: a plain Django view (machine traffic, like a monitoring ping) -------
UNKNOWN_TOKEN = "Unknown or revoked ingestion token."


def _carries_ingest_token(header: str) -> bool:
    scheme, _, raw = header.partition(" ")
    return scheme.lower() in ("bearer", "token") and raw.strip().startswith(services.TOKEN_PREFIX)


def _json(data, status_code: int = 200, headers: dict | None = None) -> HttpResponse:
    response = HttpResponse(dumps(data), content_type="application/json", status=status_code)
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def _ingest_error(exc: Exception) -> HttpResponse:
    answer = portal_exception_handler(exc, {})
    # the handler's unrendered Response carries Django's default text/html Content-Type: keep ours
    headers = {k: v for k, v in answer.items() if k.lower() != "content-type"}
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        headers["WWW-Authenticate"] = "Bearer"
    return _json(answer.data, answer.status_code, headers)


def _token_ingest(request, *, webhook: bool) -> HttpResponse:
    raw = request.META["HTTP_AUTHORIZATION"].partition(" ")[2].strip()
    tenant_id = ingest_config.authenticate(raw)
    if tenant_id is None:
        raise exceptions.AuthenticationFailed(UNKNOWN_TOKEN)
    raw_body = request.body or b"null"
    # strings only: normalise refuses numbers. The depth is checked with normalise's own walk:
    # its containers are all the brackets of a plain batch, so nothing deeper needs walking.
    body = parse_json_body(raw_body, exact_numbers=False, walk=False)

    def depth_check(seen: int = 0):
        check_depth(raw_body, body, seen=seen)

    try:
        return _token_ingest_body(raw, tenant_id, body, webhook=webhook, depth_check=depth_check)
    except Exception as exc:
        if not isinstance(exc, exceptions.ParseError):
            depth_check()  # a body nested too deeply is answered as such, whatever else was wrong with it
        raise


def _token_ingest_body(raw: str, tenant_id: int, body, *, webhook: bool, depth_check) -> HttpResponse:
    if webhook:
        depth_check()  # the envelope's other keys are not walked by normalise
    alerts, default_ends_after, source_name = payload_alerts(body, webhook=webhook)
    token_id = None

    def authorize(fresh):
        nonlocal token_id
        token_id = ingest_config.token_valid(fresh, raw)
        if token_id is None:  # revoked since this process last looked
            ingest_config.forget_token(raw)
            raise exceptions.AuthenticationFailed(UNKNOWN_TOKEN)

    now = timezone.now()
    try:
        cfg = ingest_gate(tenant_id=tenant_id, count=len(alerts) if isinstance(alerts, list) else 1, now=now, authorize=authorize)
    except IngestRateLimited as exc:
        raise exceptions.Throttled(wait=exc.retry_after, detail=str(exc)) from exc
    ingest_config.touch_token(token_id)
    result = alerts_ingest(tenant_id=tenant_id, alerts=alerts, source_name=source_name, default_ends_after=default_ends_after,
                           now=now, config=cfg, depth_check=None if webhook else depth_check)
    return _json(result.as_dict())



def token_ingest_view(drf_view, *, webhook: bool):
    """The URLconf's view for an ingestion URL: a POST with an ingestion token is served here
    (token check, rate limit, the service; no DRF request wrapping); anything else (a JWT, a
    session, another method) goes to `drf_view`, whose attributes it carries for the schema."""

    def view(request, *args, **kwargs):
        if request.method != "POST" or not _carries_ingest_token(request.META.get("HTTP_AUTHORIZATION", "")):
            return drf_view(request, *args, **kwargs)
        try:
            return _token_ingest(request, webhook=webhook)
        except (exceptions.APIException, DjangoValidationError, DataError) as exc:
            return _ingest_error(exc)

    functools.update_wrapper(view, drf_view)  # cls, initkwargs, csrf_exempt: the schema sees the DRF view
    return view

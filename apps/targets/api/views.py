"""API of the targets app: thin viewsets over the services."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from apps.core.api.pagination import KeysetPagination
from apps.core.api.permissions import PolicyPermission, policy_action
from apps.core.api.viewsets import TenantScopedReadOnlyViewSet, TenantScopedViewSet

from .. import services
from ..choices import FINAL_RUN_STATUSES, Trigger
from ..models import Credential, Job, JobRun, JobRunOutput, JobRunStep, JobSchedule, Target, TargetGroup
from . import filters
from .serializers import (
    CredentialRotateSerializer,
    CredentialSerializer,
    CredentialShareSerializer,
    ExecutorStatusSerializer,
    JobRunSerializer,
    JobRunStepSerializer,
    JobScheduleSerializer,
    JobSerializer,
    JobVersionSerializer,
    OutputPageSerializer,
    RunRequestSerializer,
    TargetGroupSerializer,
    TargetSerializer,
)

OUTPUT_PAGE_MAX = 500


class CredentialPermission(PolicyPermission):
    """Reads are open to every authenticated user because `visible_to` is the gate: it returns
    the role's rows plus the credentials shared with this user through django-guardian."""

    def has_permission(self, request, view):
        if policy_action(view) == "view":
            return bool(request.user and request.user.is_authenticated)
        return super().has_permission(request, view)


class CredentialViewSet(TenantScopedViewSet):
    """Credentials; `secret` and `passphrase` are write-only (a placeholder keeps the stored value)."""

    queryset = Credential.objects.select_related("tenant")
    serializer_class = CredentialSerializer
    filterset_class = filters.CredentialFilter
    search_fields = ["name", "username"]
    create_service = staticmethod(services.credential_create)
    update_service = staticmethod(services.credential_update)
    delete_service = staticmethod(services.credential_delete)
    action_permissions = {"rotate": "rotate", "share": "share"}
    permission_classes = [IsAuthenticated, CredentialPermission]

    @extend_schema(request=CredentialRotateSerializer, responses=CredentialSerializer)
    @action(detail=True, methods=["post"])
    def rotate(self, request, pk=None):
        cred = self.get_object()
        data = CredentialRotateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        cred = services.credential_rotate(cred, actor=request.user, **data.validated_data)
        return Response(CredentialSerializer(cred, context=self.get_serializer_context()).data)

    @extend_schema(request=CredentialShareSerializer, responses={204: None})
    @action(detail=True, methods=["post"])
    def share(self, request, pk=None):
        cred = self.get_object()
        data = CredentialShareSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = get_object_or_404(get_user_model(), pk=data.validated_data["user"])
        func = services.credential_unshare if data.validated_data["revoke"] else services.credential_share
        func(cred, actor=request.user, user=user, permission=data.validated_data["permission"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class TargetGroupViewSet(TenantScopedViewSet):
    queryset = TargetGroup.objects.select_related("tenant")
    serializer_class = TargetGroupSerializer
    filterset_class = filters.TargetGroupFilter
    search_fields = ["name"]
    create_service = staticmethod(services.group_create)
    update_service = staticmethod(services.group_update)
    delete_service = staticmethod(services.group_delete)


class TargetViewSet(TenantScopedViewSet):
    """Targets; `POST /targets/{id}/test` really connects and runs a trivial command."""

    queryset = Target.objects.select_related("tenant", "credential").prefetch_related("groups")
    serializer_class = TargetSerializer
    filterset_class = filters.TargetFilter
    search_fields = ["name", "hostname"]
    create_service = staticmethod(services.target_create)
    update_service = staticmethod(services.target_update)
    delete_service = staticmethod(services.target_delete)
    action_permissions = {"test": "change"}

    @extend_schema(request=None, responses=TargetSerializer)
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        target = services.target_test_connection(self.get_object(), actor=request.user)
        return Response(TargetSerializer(target, context=self.get_serializer_context()).data)


class JobViewSet(TenantScopedViewSet):
    """Jobs. Writing a definition field (steps, parameters_schema, …) creates a new version."""

    queryset = Job.objects.select_related("tenant", "current_version").prefetch_related("default_targets", "default_groups")
    serializer_class = JobSerializer
    filterset_class = filters.JobFilter
    search_fields = ["name"]
    create_service = staticmethod(services.job_create)
    update_service = staticmethod(services.job_update)
    delete_service = staticmethod(services.job_delete)
    action_permissions = {"run": "run", "versions": "view", "schedules": "view"}

    @extend_schema(responses=JobVersionSerializer(many=True))
    @action(detail=True, methods=["get"])
    def versions(self, request, pk=None):
        job = self.get_object()
        page = self.paginate_queryset(job.versions.order_by("-number"))
        return self.get_paginated_response(JobVersionSerializer(page, many=True).data)

    @extend_schema(request=RunRequestSerializer, responses={202: JobRunSerializer})
    @action(detail=True, methods=["post"])
    def run(self, request, pk=None):
        job = self.get_object()
        data = RunRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        targets = list(Target.objects.visible_to(request.user).filter(pk__in=v["targets"])) if "targets" in v else None
        groups = list(TargetGroup.objects.visible_to(request.user).filter(pk__in=v["groups"])) if "groups" in v else None
        if targets is not None and len(targets) != len(set(v["targets"])):
            raise serializers.ValidationError({"targets": "Unknown target id(s)."})
        if groups is not None and len(groups) != len(set(v["groups"])):
            raise serializers.ValidationError({"groups": "Unknown group id(s)."})
        if targets is not None and groups is None:
            groups = []
        if groups is not None and targets is None:
            targets = []
        run = services.job_run_create(job, actor=request.user, params=v["params"], targets=targets, groups=groups, trigger=Trigger.API, check_mode=v["check_mode"])
        return Response(JobRunSerializer(run, context=self.get_serializer_context()).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(methods=["GET"], responses=JobScheduleSerializer(many=True))
    @extend_schema(methods=["POST"], request=JobScheduleSerializer, responses={201: JobScheduleSerializer})
    @action(detail=True, methods=["get", "post"])
    def schedules(self, request, pk=None):
        """GET: the job's schedules, a page like every list. POST: add one."""
        job = self.get_object()
        ctx = self.get_serializer_context()
        if request.method == "GET":
            page = self.paginate_queryset(job.schedules.order_by("name", "id"))
            return self.get_paginated_response(JobScheduleSerializer(page, many=True, context=ctx).data)
        data = {**request.data, "job": job.pk}
        serializer = JobScheduleSerializer(data=data, context=ctx)
        serializer.is_valid(raise_exception=True)
        schedule = services.schedule_create(actor=request.user, **serializer.validated_data)
        return Response(JobScheduleSerializer(schedule, context=ctx).data, status=status.HTTP_201_CREATED)


class JobScheduleViewSet(TenantScopedViewSet):
    """Schedules of jobs (each its own celery-beat PeriodicTask) with the next 10 runs."""

    queryset = JobSchedule.objects.select_related("job", "tenant").prefetch_related("targets", "groups")
    serializer_class = JobScheduleSerializer
    filterset_class = filters.JobScheduleFilter
    search_fields = ["name", "job__name"]
    create_service = staticmethod(services.schedule_create)
    update_service = staticmethod(services.schedule_update)
    delete_service = staticmethod(services.schedule_delete)


class JobRunViewSet(TenantScopedReadOnlyViewSet):
    """Runs: summary counts on the row, paged per-target steps, a tail API for output."""

    queryset = JobRun.objects.select_related("job", "version", "tenant")
    serializer_class = JobRunSerializer
    filterset_class = filters.JobRunFilter
    pagination_class = KeysetPagination  # grows without bound: by cursor (docs/tickets.md)
    ordering_fields = ["created_at", "started_at", "finished_at"]
    action_permissions = {"cancel": "cancel", "retry": "retry", "steps": "view", "output": "view", "executor": "view"}

    @extend_schema(responses=JobRunStepSerializer(many=True), parameters=[
        OpenApiParameter("status", str), OpenApiParameter("target", int)])
    @action(detail=True, methods=["get"])
    def steps(self, request, pk=None):
        run = self.get_object()
        qs = filters.JobRunStepFilter(request.query_params, queryset=JobRunStep.objects.filter(run=run).order_by("target_name", "step_index")).qs
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(JobRunStepSerializer(page, many=True).data)

    @extend_schema(responses=OutputPageSerializer, parameters=[
        OpenApiParameter("after", int, description="Return chunks with id greater than this (0 to start)."),
        OpenApiParameter("limit", int, description=f"At most this many chunks (max {OUTPUT_PAGE_MAX}).")])
    @action(detail=True, methods=["get"], pagination_class=None)
    def output(self, request, pk=None):
        run = self.get_object()
        try:
            after = int(request.query_params.get("after", 0))
            limit = min(max(int(request.query_params.get("limit", 200)), 1), OUTPUT_PAGE_MAX)
        except ValueError:
            raise serializers.ValidationError({"after": "after and limit are integers."}) from None
        chunks = list(JobRunOutput.objects.filter(run=run, id__gt=after).select_related("step").order_by("id")[:limit])
        return Response({
            "chunks": OutputPageSerializer().fields["chunks"].to_representation(chunks),
            "next_after": chunks[-1].id if chunks else after,
            "finished": run.status in FINAL_RUN_STATUSES and len(chunks) < limit,
            "status": run.status,
        })

    @extend_schema(request=None, responses=JobRunSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        run = services.run_cancel(self.get_object(), actor=request.user)
        return Response(JobRunSerializer(run, context=self.get_serializer_context()).data)

    @extend_schema(request=None, responses={202: JobRunSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        run = services.run_retry_failed(self.get_object(), actor=request.user)
        return Response(JobRunSerializer(run, context=self.get_serializer_context()).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=ExecutorStatusSerializer)
    @action(detail=False, methods=["get"], url_path="executor-status", pagination_class=None)
    def executor(self, request):
        return Response(services.executor_status(actor=request.user))

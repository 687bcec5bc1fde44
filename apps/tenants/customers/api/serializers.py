from rest_framework import serializers

from apps.core.api.serializers import ScopedModelSerializer
from apps.core.choices import OrgKind

from ...models import Organization
from ..choices import ExportFormat
from ..models import Customer, CustomerService, DataExport, DeletionRequest


class CustomerSerializer(ScopedModelSerializer):
    tenant = serializers.SlugRelatedField(
        slug_field="slug", queryset=Organization.objects.filter(kind=OrgKind.TENANT), required=False,
        help_text="Platform staff name the tenant; tenant staff always register into their own.",
    )
    organization = serializers.SlugRelatedField(
        slug_field="slug", queryset=Organization.objects.filter(kind=OrgKind.CUSTOMER), required=False, allow_null=True,
        help_text="Link an existing customer organization (default: one is created).",
    )
    username = serializers.CharField(required=False, write_only=True, help_text="Create a first customer login with this username.")
    send_code = serializers.BooleanField(required=False, default=True, write_only=True)

    class Meta:
        model = Customer
        fields = [
            "id", "account_number", "tenant", "name", "contact_email", "contact_phone", "state", "organization",
            "username", "send_code", "verified_at", "activated_at", "terminated_at", "erased_at", "created_at", "updated_at",
        ]
        read_only_fields = ["id", "account_number", "state", "verified_at", "activated_at", "terminated_at", "erased_at", "created_at", "updated_at"]


class CustomerUpdateSerializer(CustomerSerializer):
    class Meta(CustomerSerializer.Meta):
        read_only_fields = [*CustomerSerializer.Meta.read_only_fields, "tenant", "organization"]


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class VerifySerializer(serializers.Serializer):
    code = serializers.CharField(max_length=12)


class CustomerServiceSerializer(ScopedModelSerializer):
    class Meta:
        model = CustomerService
        fields = ["id", "customer", "plan", "parameters", "status", "job_run_id", "last_error", "status_changed_at", "provisioned_at", "created_at"]
        read_only_fields = ["id", "customer", "status", "job_run_id", "last_error", "status_changed_at", "provisioned_at", "created_at"]


class DataExportSerializer(ScopedModelSerializer):
    tenant = serializers.SlugRelatedField(
        slug_field="slug", queryset=Organization.objects.filter(kind=OrgKind.TENANT), required=False, write_only=True,
        help_text="Platform staff: the tenant to export (when no customer is named).",
    )
    data_types = serializers.ListField(child=serializers.CharField(), required=False, help_text="Default: every registered type.")
    format = serializers.ChoiceField(choices=ExportFormat.choices, default=ExportFormat.JSON)
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = DataExport
        fields = [
            "id", "tenant", "customer", "format", "data_types", "date_from", "date_to", "status", "progress", "size_bytes",
            "row_counts", "error", "expires_at", "download_count", "download_url", "created_at", "finished_at",
        ]
        read_only_fields = ["id", "status", "progress", "size_bytes", "row_counts", "error", "expires_at", "download_count", "created_at", "finished_at"]

    def get_download_url(self, obj) -> str | None:
        return f"/api/v1/exports/{obj.pk}/download" if obj.status == "succeeded" else None


class DeletionRequestSerializer(ScopedModelSerializer):
    class Meta:
        model = DeletionRequest
        fields = ["id", "customer", "reason", "immediate", "status", "due_at", "cancelled_at", "completed_at", "report", "error", "created_at"]
        read_only_fields = ["id", "status", "due_at", "cancelled_at", "completed_at", "report", "error", "created_at"]
        extra_kwargs = {"customer": {"required": False}}
        validators = []  # one pending request per customer: deletion_request_create says so clearly

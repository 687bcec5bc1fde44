from rest_framework import serializers

from apps.core.api.serializers import ScopedModelSerializer, StrictFieldsMixin
from apps.core.choices import Role

from ...models import Organization
from ..models import ApiToken, ServiceAccount


class ServiceAccountSerializer(ScopedModelSerializer):
    """A service account; `organization` (slug) defaults to the acting organization and does not change."""

    organization = serializers.SlugRelatedField(slug_field="slug", queryset=Organization.objects.all(), required=False)
    username = serializers.CharField(source="user.username", read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None, allow_null=True)

    class Meta:
        model = ServiceAccount
        fields = [
            "id",
            "organization",
            "name",
            "description",
            "role",
            "is_active",
            "username",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "username", "created_by", "created_at", "updated_at"]
        validators = []  # a duplicate name is refused by the service with a clear message

    def validate(self, attrs):
        if self.instance is not None and "organization" in attrs and attrs["organization"] != self.instance.organization:
            raise serializers.ValidationError(
                {"organization": "A service account stays in its organization; create one in the other."}
            )
        if self.instance is None and "organization" not in attrs:
            return attrs  # the view fills in the acting organization; the service validates the role there
        return super().validate(attrs)


class ApiTokenSerializer(serializers.ModelSerializer):
    """A token as listed: never its secret, only its `prefix`."""

    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    user = serializers.CharField(source="user.username", read_only=True)
    service_account = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    kind = serializers.ChoiceField(choices=["personal", "service_account"], read_only=True)
    status = serializers.ChoiceField(choices=["active", "expired", "revoked"], read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None, allow_null=True)
    revoked_by = serializers.CharField(source="revoked_by.username", read_only=True, default=None, allow_null=True)

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "kind",
            "organization",
            "user",
            "service_account",
            "role",
            "prefix",
            "status",
            "expires_at",
            "created_by",
            "created_at",
            "revoked_at",
            "revoked_by",
            "last_used_at",
            "last_used_ip",
        ]
        read_only_fields = fields


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.CharField(read_only=True, help_text="The secret: shown this once, never again. Store it now.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class ApiTokenCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    """A new token: personal (for yourself, in the acting organization) or, with
    `service_account`, for a service account of an organization you manage."""

    name = serializers.CharField(max_length=80, help_text="What will use the token, e.g. 'grafana alerts'.")
    role = serializers.ChoiceField(
        choices=Role.choices, required=False, help_text="At most your role (or the service account's); default: that role."
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True, help_text="Empty: the token does not expire.")
    service_account = serializers.PrimaryKeyRelatedField(
        queryset=ServiceAccount.objects.all(),
        required=False,
        allow_null=True,
        help_text="Id of a service account; empty for a personal token.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:  # an id out of the caller's sight is the same 400 as an unknown one
            self.fields["service_account"].queryset = ServiceAccount.objects.visible_to(request.user, "view").select_related(
                "organization"
            )

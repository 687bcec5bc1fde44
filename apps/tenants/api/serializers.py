from django.contrib.auth import get_user_model
from rest_framework import serializers

from apps.core.api.serializers import ScopedModelSerializer
from apps.core.choices import OrgKind, Role

from ..models import Membership, Organization


class OrganizationSerializer(ScopedModelSerializer):
    parent = serializers.SlugRelatedField(
        slug_field="slug", queryset=Organization.objects.filter(kind=OrgKind.TENANT), required=False, allow_null=True
    )
    served_tenants = serializers.SlugRelatedField(
        slug_field="slug", many=True, queryset=Organization.objects.filter(kind=OrgKind.TENANT), required=False
    )

    class Meta:
        model = Organization
        fields = ["id", "kind", "name", "slug", "status", "timezone", "settings", "parent", "served_tenants", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]
        extra_kwargs = {"slug": {"required": False, "validators": []}, "kind": {"required": True}}

    def validate(self, attrs):
        # kind/parent are fixed after creation; services say so with a clear message
        return attrs


class TenantSerializer(OrganizationSerializer):
    class Meta(OrganizationSerializer.Meta):
        fields = ["id", "name", "slug", "status", "timezone", "settings", "created_at", "updated_at"]
        extra_kwargs = {"slug": {"required": False, "validators": []}}


class MembershipSerializer(ScopedModelSerializer):
    organization = serializers.SlugRelatedField(slug_field="slug", queryset=Organization.objects.all())
    username = serializers.CharField(source="user.username", read_only=True)
    user = serializers.PrimaryKeyRelatedField(queryset=get_user_model().objects.all(), required=False, write_only=True)
    new_username = serializers.CharField(required=False, write_only=True, help_text="Create this user if `user` is not given.")
    email = serializers.EmailField(required=False, write_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user", "username", "new_username", "email", "organization", "role", "is_active", "created_at"]
        read_only_fields = ["id", "created_at"]
        validators = []  # duplicates are refused by membership_create with a clear message

    def validate(self, attrs):
        if self.instance is None and not attrs.get("user") and not attrs.get("new_username"):
            raise serializers.ValidationError({"user": "Give `user` (an existing user's id) or `new_username`."})
        return attrs


class MeMembershipSerializer(serializers.ModelSerializer):
    organization = serializers.CharField(source="organization.slug")
    organization_name = serializers.CharField(source="organization.name")
    kind = serializers.CharField(source="organization.kind")

    class Meta:
        model = Membership
        fields = ["id", "organization", "organization_name", "kind", "role"]


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.EmailField()
    is_staff = serializers.BooleanField()
    acting_organization = serializers.CharField(allow_null=True)
    acting_role = serializers.ChoiceField(choices=Role.choices, allow_null=True)
    memberships = MeMembershipSerializer(many=True)


class TenantConfigSerializer(ScopedModelSerializer):
    """A tenant's configuration row (SLA policies, business calendars, KPI targets): `tenant` is
    the tenant's slug, named by platform staff on create (tenant staff always write their own),
    and neither it nor the fields in `Meta.fixed_fields` change once the row exists."""

    tenant = serializers.SlugRelatedField(slug_field="slug", queryset=Organization.objects.filter(kind=OrgKind.TENANT), required=False,
                                          help_text="Tenant slug; platform staff name it on create. It does not change later.")

    def validate(self, attrs):
        if self.instance is not None:
            for name in ("tenant", *getattr(self.Meta, "fixed_fields", ())):
                if name in attrs and attrs[name] != getattr(self.instance, name):
                    raise serializers.ValidationError({name: f"The {name} of a {self.Meta.model._meta.verbose_name} does not change; "
                                                             "create one for the other instead."})
        return super().validate(attrs)


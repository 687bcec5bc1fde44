from rest_framework import serializers

from apps.core.api.serializers import ScopedModelSerializer
from apps.core.choices import OrgKind, Role

from ..models import Invitation, Membership, Organization
from ..selectors import served_tenants_in_sight


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

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if "served_tenants" in data and data["served_tenants"]:
            # a tenant learns only about itself among a partner's tenants (issue 17.3)
            request = self.context.get("request")
            user = getattr(request, "user", None)
            data["served_tenants"] = [t.slug for t in served_tenants_in_sight(user, instance)]
        return data


class TenantSerializer(OrganizationSerializer):
    class Meta(OrganizationSerializer.Meta):
        fields = ["id", "name", "slug", "status", "timezone", "settings", "created_at", "updated_at"]
        extra_kwargs = {"slug": {"required": False, "validators": []}}


class MembershipSerializer(ScopedModelSerializer):
    """A membership; `username` is shown, never an e-mail address. `user` names a person already
    within the caller's members (any id out of reach is the same 400); new people are invited."""

    organization = serializers.SlugRelatedField(slug_field="slug", queryset=Organization.objects.all())
    username = serializers.CharField(source="user.username", read_only=True)
    # an id, not a related field: whether an id exists is not the caller's business (issue 17.2)
    user = serializers.IntegerField(required=False, write_only=True, help_text="Id of a person already in your organization.")
    new_username = serializers.CharField(required=False, write_only=True, help_text="Create a new account with this username if `user` is not given.")
    email = serializers.EmailField(required=False, write_only=True, help_text="E-mail of the new account.")

    class Meta:
        model = Membership
        fields = ["id", "user", "username", "new_username", "email", "organization", "role", "is_active", "created_at"]
        read_only_fields = ["id", "created_at"]
        validators = []  # duplicates are refused by membership_create with a clear message

    def validate(self, attrs):
        if self.instance is None and attrs.get("user") is None and not attrs.get("new_username"):
            raise serializers.ValidationError({"user": "Give `user` (the id of a person in your organization) or `new_username`; "
                                                       "invite anyone else by e-mail (/api/v1/invitations/)."})
        return attrs


class InvitationSerializer(ScopedModelSerializer):
    """An invitation as its organization's managers see it (the token is never shown)."""

    organization = serializers.SlugRelatedField(slug_field="slug", queryset=Organization.objects.all())
    status = serializers.CharField(source="current_status", read_only=True)
    invited_by = serializers.CharField(source="invited_by.username", read_only=True, default=None)
    accepted_by = serializers.CharField(source="accepted_by.username", read_only=True, default=None)

    class Meta:
        model = Invitation
        fields = ["id", "organization", "email", "role", "status", "expires_at", "invited_by", "accepted_by", "accepted_at", "created_at"]
        read_only_fields = ["id", "status", "expires_at", "accepted_at", "created_at"]
        validators = []  # a second pending invitation is refused by invitation_create with a clear message


class InvitationAcceptSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="The invitation code from the e-mail.")
    username = serializers.CharField(required=False, allow_blank=True, help_text="Without signing in: the new account's username.")
    password = serializers.CharField(required=False, allow_blank=True, write_only=True, trim_whitespace=False,
                                     style={"input_type": "password"}, help_text="Without signing in: the new account's password.")


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


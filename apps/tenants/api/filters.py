import django_filters

from ..models import Invitation, Membership, Organization


class OrganizationFilter(django_filters.FilterSet):
    class Meta:
        model = Organization
        fields = {"kind": ["exact"], "status": ["exact"], "slug": ["exact"], "parent__slug": ["exact"]}


class MembershipFilter(django_filters.FilterSet):
    organization = django_filters.CharFilter(field_name="organization__slug")

    class Meta:
        model = Membership
        fields = {"role": ["exact"], "is_active": ["exact"], "user": ["exact"]}


class InvitationFilter(django_filters.FilterSet):
    organization = django_filters.CharFilter(field_name="organization__slug")

    class Meta:
        model = Invitation
        fields = {"status": ["exact"], "role": ["exact"]}

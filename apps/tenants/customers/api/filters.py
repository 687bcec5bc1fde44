import django_filters

from ..models import Customer, CustomerService, DataExport, DeletionRequest


class CustomerFilter(django_filters.FilterSet):
    tenant = django_filters.CharFilter(field_name="tenant__slug")

    class Meta:
        model = Customer
        fields = {"state": ["exact"], "account_number": ["exact"]}


class CustomerServiceFilter(django_filters.FilterSet):
    class Meta:
        model = CustomerService
        fields = {"customer": ["exact"], "status": ["exact"], "plan": ["exact"]}


class DataExportFilter(django_filters.FilterSet):
    class Meta:
        model = DataExport
        fields = {"customer": ["exact"], "status": ["exact"]}


class DeletionRequestFilter(django_filters.FilterSet):
    class Meta:
        model = DeletionRequest
        fields = {"customer": ["exact"], "status": ["exact"]}

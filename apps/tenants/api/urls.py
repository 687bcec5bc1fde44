from django.urls import path
from rest_framework.routers import SimpleRouter

from ..customers.api.views import CustomerServiceViewSet, CustomerViewSet, DataExportViewSet, DeletionRequestViewSet
from ..tokens.api.views import ApiTokenViewSet, ServiceAccountViewSet
from .views import InvitationViewSet, MembershipViewSet, MeView, OrganizationViewSet, TenantViewSet

router = SimpleRouter()
router.register("organizations", OrganizationViewSet, basename="organization")
router.register("tenants", TenantViewSet, basename="tenant")
router.register("memberships", MembershipViewSet, basename="membership")
router.register("invitations", InvitationViewSet, basename="invitation")
router.register("tokens", ApiTokenViewSet, basename="apitoken")
router.register("service-accounts", ServiceAccountViewSet, basename="serviceaccount")

# Customers (seed 001 shapes: `/customers/{id}/verify`; both slash forms answer, config/urls.py).
customers_router = SimpleRouter()
customers_router.register("customers", CustomerViewSet, basename="customer")
customers_router.register("customer-services", CustomerServiceViewSet, basename="customerservice")
customers_router.register("exports", DataExportViewSet, basename="dataexport")
customers_router.register("deletion-requests", DeletionRequestViewSet, basename="deletionrequest")

urlpatterns = [path("users/me", MeView.as_view(), name="users-me"), *router.urls, *customers_router.urls]

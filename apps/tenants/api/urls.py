from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import MembershipViewSet, MeView, OrganizationViewSet, TenantViewSet

router = SimpleRouter()
router.register("organizations", OrganizationViewSet, basename="organization")
router.register("tenants", TenantViewSet, basename="tenant")
router.register("memberships", MembershipViewSet, basename="membership")

urlpatterns = [path("users/me", MeView.as_view(), name="users-me"), *router.urls]

"""Admin pages of the dashboard, mounted at /admin/timeline/ by config/urls.py (behind the admin
login: `admin.site.admin_view`)."""

from django.contrib import admin
from django.urls import path

from .views import tenant_timeline, timeline_index

urlpatterns = [
    path("", admin.site.admin_view(timeline_index), name="admin-timeline"),
    path("<str:slug>/", admin.site.admin_view(tenant_timeline), name="admin-tenant-timeline"),
]

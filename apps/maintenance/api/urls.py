from rest_framework.routers import SimpleRouter

from .views import MaintenanceRunViewSet, MaintenanceWindowViewSet

router = SimpleRouter()
router.register("maintenance/windows", MaintenanceWindowViewSet, basename="maintenancewindow")
router.register("maintenance/runs", MaintenanceRunViewSet, basename="maintenancerun")

urlpatterns = router.urls

from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import (
    DeploymentScheduleViewSet,
    DeploymentWindowViewSet,
    InstanceViewSet,
    OperationViewSet,
    RunbookViewSet,
    ScheduleDeploymentView,
)

router = SimpleRouter()
router.register("deployments/instances", InstanceViewSet, basename="deploymentinstance")
router.register("deployments/runbooks", RunbookViewSet, basename="deploymentrunbook")
router.register("deployments/operations", OperationViewSet, basename="deploymentoperation")
router.register("deployments/schedules", DeploymentScheduleViewSet, basename="deploymentschedule")
router.register("deployments/windows", DeploymentWindowViewSet, basename="deploymentwindow")

urlpatterns = [
    path("deployments/schedule", ScheduleDeploymentView.as_view(), name="deployment-schedule-create"),
    *router.urls,
]

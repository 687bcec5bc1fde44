from rest_framework.routers import SimpleRouter

from .views import CredentialViewSet, JobRunViewSet, JobScheduleViewSet, JobViewSet, TargetGroupViewSet, TargetViewSet

router = SimpleRouter()
router.register("credentials", CredentialViewSet, basename="credential")
router.register("targets", TargetViewSet, basename="target")
router.register("target-groups", TargetGroupViewSet, basename="targetgroup")
router.register("jobs", JobViewSet, basename="job")
router.register("schedules", JobScheduleViewSet, basename="jobschedule")
router.register("runs", JobRunViewSet, basename="jobrun")

urlpatterns = router.urls

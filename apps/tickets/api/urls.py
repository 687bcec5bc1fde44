from rest_framework.routers import SimpleRouter

from ..mail.api import MailboxViewSet
from .sla import BusinessCalendarViewSet, SlaPolicyViewSet
from .views import TicketViewSet

router = SimpleRouter()
router.register("tickets", TicketViewSet, basename="ticket")
router.register("sla-policies", SlaPolicyViewSet, basename="slapolicy")
router.register("business-calendars", BusinessCalendarViewSet, basename="businesscalendar")
router.register("mailboxes", MailboxViewSet, basename="mailbox")  # ticket mail (apps/tickets/mail/api.py)

urlpatterns = router.urls

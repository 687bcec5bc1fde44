import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# Token-authenticated alert ingestion takes a lean route (no session/CSRF/login middleware);
# everything else is the application above. See apps/alerts/api/ingest_wsgi.py.
from apps.alerts.api.ingest_wsgi import IngestFastPath  # noqa: E402

application = IngestFastPath(application)

# So do JSON ticket creates with a Bearer JWT (POST /api/v1/tickets/). See apps/tickets/api/create_wsgi.py.
from apps.tickets.api.create_wsgi import TicketCreateFastPath  # noqa: E402

application = TicketCreateFastPath(application)

# opsportal: one image for web, worker and beat (the command differs per service).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=config.settings PORTAL_VAR_DIR=/var/lib/opsportal

RUN apt-get update \
 && apt-get install -y --no-install-recommends openssh-client libpq5 tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --home-dir /app opsportal \
 && mkdir -p /var/lib/opsportal && chown opsportal /var/lib/opsportal

WORKDIR /app
COPY requirements/ requirements/
RUN pip install -r requirements/base.txt -c requirements/constraints.txt

COPY --chown=opsportal . .
# collectstatic needs settings that import; these throwaway values never reach a running container
RUN DJANGO_ENV=development SECRET_KEY=build-only PORTAL_ENCRYPTION_KEYS=1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= \
    python manage.py collectstatic --noinput -v0 && chown -R opsportal /var/lib/opsportal

USER opsportal
EXPOSE 8000
ENTRYPOINT ["/usr/bin/tini", "--"]
# Liveness of the web process (no dependencies). docker-compose.yml overrides it: web waits on
# /health/ready, workers answer a Celery ping, beat has none (its heartbeat is on /health/status).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request;urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=4)"]
# workers, worker class and timeout: config/gunicorn.conf.py (gthread, cores × 4 threads; WEB_CONCURRENCY, WEB_THREADS override)
CMD ["gunicorn", "config.wsgi:application", "-c", "config/gunicorn.conf.py", "--bind", "0.0.0.0:8000", "--access-logfile", "-"]

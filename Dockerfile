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
# workers, worker class and timeout: config/gunicorn.conf.py (gthread, cores × 4 threads; WEB_CONCURRENCY, WEB_THREADS override)
CMD ["gunicorn", "config.wsgi:application", "-c", "config/gunicorn.conf.py", "--bind", "0.0.0.0:8000", "--access-logfile", "-"]

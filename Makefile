# opsportal — the two commands: `make run` and `make test`. `make bench` runs the benchmarks.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000
# where the portal answers: the demo's health check and heartbeat URLs point here (make run PORT=8101)
PORTAL_BASE_URL ?= http://$(HOST):$(PORT)

# Test services (override from the environment): PostgreSQL and Redis on localhost.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/opsportal
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
TEST_ENV = DJANGO_ENV=test DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) \
	CELERY_BROKER_URL=$(TEST_REDIS_URL) CELERY_TASK_ALWAYS_EAGER=true API_THROTTLE_AUTH=100000/min AXES_ENABLED=false

.PHONY: run test test-peers bench lint fmt venv venv-dev migrate seed check-deploy clean

$(VENV)/.base: requirements/base.txt requirements/constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements/base.txt -c requirements/constraints.txt
	touch $@

$(VENV)/.dev: $(VENV)/.base requirements/dev.txt
	$(PIP) install -q -r requirements/dev.txt -c requirements/constraints.txt
	touch $@

venv: $(VENV)/.base
venv-dev: $(VENV)/.dev

migrate: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py setup_periodic_tasks

seed: migrate
	$(PY) manage.py seed_demo --base-url $(PORTAL_BASE_URL)

## make run: install, migrate, seed demo data, start web + worker + beat (SQLite + filesystem broker by default)
run: seed
	$(PY) manage.py collectstatic --noinput -v0
	@echo ""
	@echo "  opsportal admin:  http://$(HOST):$(PORT)/admin/"
	@echo "  API docs:         http://$(HOST):$(PORT)/api/docs/"
	@echo "  Logins above; the password for every demo user is printed with them."
	@echo ""
	HOST=$(HOST) PORT=$(PORT) PORTAL_BASE_URL=$(PORTAL_BASE_URL) $(VENV)/bin/honcho start -f Procfile

## make test: the whole suite on PostgreSQL and Redis, as TEST_SHARDS (default 2) pytest processes
## at once (tests/run_shards.py); with PYTEST_ARGS, one pytest process on what they name.
TEST_SHARDS ?= 2
test: venv-dev test-peers
	$(TEST_ENV) $(PY) manage.py makemigrations --check --dry-run >/dev/null || (echo "Missing migrations: run manage.py makemigrations" && exit 1)
ifeq ($(strip $(PYTEST_ARGS)),)
	$(TEST_ENV) TEST_SHARDS=$(TEST_SHARDS) $(PY) tests/run_shards.py
else
	$(TEST_ENV) $(VENV)/bin/pytest -q $(PYTEST_ARGS)
endif

## make test-peers: install the Debian packages of the suite's real peers (.ci/peers.txt: sshd,
## chromium, Alertmanager, redis-server, PostgreSQL) that are missing — as root with apt-get;
## otherwise it lists them and the tests that need them skip, naming the package.
test-peers:
	@.ci/install-peers

## make bench: every benchmark under bench/, one line each
bench: venv-dev
	$(TEST_ENV) $(PY) bench/run.py $(BENCH_ARGS)

lint: venv-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check . || true

fmt: venv-dev
	$(VENV)/bin/ruff check --fix .

check-deploy: venv
	DJANGO_ENV=production SECRET_KEY=check-deploy-$$(head -c 32 /dev/urandom | base64 | tr -dc A-Za-z0-9) \
	ALLOWED_HOSTS=portal.example.com PORTAL_ENCRYPTION_KEYS=1:$$($(PY) -c "import base64,os;print(base64.urlsafe_b64encode(os.urandom(32)).decode())") \
	$(PY) manage.py check --deploy --fail-level WARNING

clean:
	rm -rf var/celery var/cache

"""A real Prometheus Alertmanager (Debian's package) delivers its webhook to the live test
server: alerts arrive, deduplicate and resolve in the portal."""

import json
import socket
import subprocess
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from apps.alerts.choices import AlertStatus
from apps.alerts.models import Alert
from apps.alerts.services import ingest_token_create
from tests.conftest import wait_for
from tests.peers import program

pytestmark = [
    pytest.mark.django_db(transaction=True),
]


def _port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status


@pytest.fixture
def alertmanager(live_server, tmp_path, world):
    _, raw = ingest_token_create(actor=None, tenant=world.tenant("a"), name="alertmanager")
    config = tmp_path / "am.yml"
    config.write_text(f"""
route:
  receiver: portal
  group_by: ['alertname']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: portal
    webhook_configs:
      - url: {live_server.url}/api/v1/alerts/ingest/alertmanager
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: {raw}
""")
    port = _port()
    proc = subprocess.Popen(
        [program("prometheus-alertmanager"), f"--config.file={config}", f"--storage.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
         "--cluster.listen-address=", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ready(url), timeout=20)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _ready(url):
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def test_alertmanager_webhook_delivers_dedups_and_resolves(alertmanager, world):
    starts = datetime.now(UTC) - timedelta(minutes=1)
    alert = {"labels": {"alertname": "DiskFull", "instance": "db-1", "severity": "critical"},
             "annotations": {"summary": "Disk full on db-1"}, "startsAt": starts.isoformat()}
    assert _post(f"{alertmanager}/api/v2/alerts", [alert]) == 200
    row = wait_for(lambda: Alert.objects.filter(labels__alertname="DiskFull").first(), timeout=20)
    assert row.tenant == world.tenant("a") and row.title == "Disk full on db-1" and row.status == AlertStatus.FIRING
    assert _post(f"{alertmanager}/api/v2/alerts", [alert]) == 200  # the same alert again: Alertmanager dedups, so do we
    time.sleep(2.5)
    assert Alert.objects.filter(labels__alertname="DiskFull").count() == 1
    ended = {**alert, "endsAt": (datetime.now(UTC) - timedelta(seconds=1)).isoformat()}
    assert _post(f"{alertmanager}/api/v2/alerts", [ended]) == 200
    wait_for(lambda: Alert.objects.get(labels__alertname="DiskFull").status == AlertStatus.RESOLVED, timeout=20)
    assert Alert.objects.filter(labels__alertname="DiskFull").count() == 1

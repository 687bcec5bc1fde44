"""Admin: editing a job saves a new version (its read-only schedules inline used to make every save 500)."""

import json

from django.urls import reverse

from tests.factories.targets import make_job


def test_job_change_saves_new_version(world, client):
    job = make_job(world.tenant("a"), name="backup", steps=[{"type": "ssh.exec", "command": "true"}])
    client.force_login(world.user("a", "admin"))
    url = reverse("admin:targets_job_change", args=[job.pk])
    page = client.get(url)
    form = page.context["adminform"].form
    data = {}
    for name in form.fields:
        value = form[name].value()
        data[name] = json.dumps(value) if isinstance(value, dict | list) and name not in ("default_targets", "default_groups") else value
    data = {k: v for k, v in data.items() if v is not None and k not in ("default_targets", "default_groups")}
    data["steps"] = json.dumps([{"type": "ssh.exec", "command": "echo new"}])
    for inline in page.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data.update({f"{management.prefix}-{k}": v for k, v in management.initial.items()})
    r = client.post(url, data)
    assert r.status_code == 302, r.context["adminform"].form.errors
    job.refresh_from_db()
    assert job.current_version.number == 2 and job.current_version.steps[0]["command"] == "echo new"

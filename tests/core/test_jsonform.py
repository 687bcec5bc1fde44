"""Structured editors of the admin's JSON fields (apps/core/jsonform.py): a django-jsonform form
drawn from the field's JSON schema, the raw JSON beside it, errors on the field, and the plain
textarea whenever the form cannot show the value as it is."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.admin.sites import site

from apps.alerts import services as alert_services
from apps.alerts.models import AlertRule, EscalationPolicy, InhibitRule, Silence
from apps.alerts.schemas import ACTIONS_SCHEMA, CONDITION_SCHEMAS, STEPS_SCHEMA
from apps.core.jsonform import editor_schema, fits, prune
from apps.maintenance.models import MaintenanceWindow
from apps.targets import editor_schemas
from apps.targets.models import Job


def test_every_schema_of_the_admin_has_a_form():
    schemas = [*CONDITION_SCHEMAS.values(), ACTIONS_SCHEMA, STEPS_SCHEMA, editor_schemas.STEPS, editor_schemas.PARAMETERS_SCHEMA,
               editor_schemas.NOTIFY]
    assert all(editor_schema(s) is not None for s in schemas)
    assert editor_schema({"type": "object", "not": {"required": ["x"]}}) is None  # a keyword the form cannot draw
    assert editor_schema({"enum": ["a", 1]}) is None


def test_a_value_the_form_cannot_show_as_it_is_does_not_fit():
    event = editor_schema(CONDITION_SCHEMAS["event"])
    assert fits({"event": "ticket.created", "match": {"priority": "high"}}, event)
    assert not fits({"event": "ticket.created", "match": {"count": 3}}, event)  # a number would come back as text
    params = editor_schema(editor_schemas.PARAMETERS_SCHEMA)
    assert fits({"type": "object", "properties": {"host": {"type": "string", "pattern": "^[a-z]+$"}}, "required": ["host"]}, params)
    assert not fits({"type": "object", "$defs": {}}, params)


def test_prune_drops_what_the_form_adds_for_empty_optional_fields():
    actions = editor_schema(ACTIONS_SCHEMA)
    value = [{"type": "open_ticket", "priority": "", "subject": "Disk", "assignee_id": None}, {"type": "run_job", "job_id": None}]
    assert prune(value, actions) == [{"type": "open_ticket", "subject": "Disk"}, {"type": "run_job", "job_id": None}]


def _rule(world, **kw):
    fields = {"name": "Breaches", "rule_type": "sla", "conditions": {"on": ["breached"]}} | kw
    return alert_services.rule_create(actor=world.user("a", "admin"), tenant=world.tenant("a"), **fields)


def _unescape(text: str) -> str:
    return text.replace("&quot;", '"').replace("&#x27;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _post_data(page_html: str) -> dict:
    """The change form's fields as a browser would send them (inputs, selects, textareas)."""
    data = {}
    for tag in re.findall(r"<input[^>]*>", page_html):
        name, value = re.search(r'name="([^"]+)"', tag), re.search(r'value="([^"]*)"', tag)
        if name and ('type="checkbox"' not in tag or "checked" in tag):
            data.setdefault(name.group(1), value.group(1) if value else ("on" if "checkbox" in tag else ""))
    for tag, body in re.findall(r"(<textarea[^>]*>)(.*?)</textarea>", page_html, re.S):
        config = re.search(r'data-django-jsonform="([^"]+)"', tag)
        if config:  # django-jsonform's script fills this one from its config
            body = json.loads(_unescape(config.group(1)))["data"]
        data[re.search(r'name="([^"]+)"', tag).group(1)] = _unescape(body).strip()
    for name, options in re.findall(r'<select name="([^"]+)"[^>]*>(.*?)</select>', page_html, re.S):
        picked = re.search(r'<option value="([^"]*)"[^>]*selected', options)
        data[name] = picked.group(1) if picked else ""
    return {k: v for k, v in data.items() if not k.startswith("_") and k not in ("csrfmiddlewaretoken",)}


@pytest.mark.django_db
def test_rule_change_page_draws_the_conditions_form_with_raw_json(world, client):
    rule = _rule(world)
    client.force_login(world.user("a", "admin"))
    html = client.get(f"/admin/alerts/alertrule/{rule.pk}/change/").content.decode()
    config = re.search(r'name="conditions"[^>]*data-django-jsonform="([^"]+)"', html)
    assert config, "the conditions field is not a structured editor"
    schema = json.loads(_unescape(config.group(1)))["schema"]
    assert schema["properties"]["on"]["items"]["enum"] == ["at_risk", "breached"]
    assert 'name="conditions__raw"' in html and "Raw JSON" in html
    assert "django_jsonform/react-json-form.js" in html and "core/structured-json.js" in html
    assert "<script>" not in html.split("<body", 1)[1].split("</body>")[0] or 'nonce="' in html  # no inline script without nonce


@pytest.mark.django_db
def test_rule_saved_from_the_form_drops_empty_optional_fields(world, client):
    rule = _rule(world)
    client.force_login(world.user("a", "admin"))
    data = _post_data(client.get(f"/admin/alerts/alertrule/{rule.pk}/change/").content.decode())
    # what django-jsonform submits: every drawn field, the empty ones as "" / null
    data["conditions"] = json.dumps({"on": ["at_risk", "breached"], "priorities": ["high"], "at_risk_minutes": None})
    response = client.post(f"/admin/alerts/alertrule/{rule.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    rule.refresh_from_db()
    assert rule.conditions == {"on": ["at_risk", "breached"], "priorities": ["high"]}


@pytest.mark.django_db
def test_raw_json_wins_when_ticked_and_its_errors_show_on_the_field(world, client):
    rule = _rule(world)
    client.force_login(world.user("a", "admin"))
    url = f"/admin/alerts/alertrule/{rule.pk}/change/"
    data = _post_data(client.get(url).content.decode())
    bad = data | {"conditions__raw": '{"on": ["sometimes"]}', "conditions__use_raw": "1"}
    response = client.post(url, bad)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "conditions" in errors and "on[0]" in errors["conditions"][0], errors
    html = response.content.decode()
    assert "sometimes" in html  # what was typed comes back to be corrected
    good = data | {"conditions__raw": '{"on": ["at_risk"], "at_risk_minutes": 30}', "conditions__use_raw": "1"}
    assert client.post(url, good).status_code == 302
    rule.refresh_from_db()
    assert rule.conditions == {"on": ["at_risk"], "at_risk_minutes": 30}


@pytest.mark.django_db
def test_a_value_the_form_cannot_show_keeps_the_json_textarea(world, client):
    rule = _rule(world, name="Events", rule_type="event", conditions={"event": "ticket.created", "match": {"count": 3}})
    client.force_login(world.user("a", "admin"))
    html = client.get(f"/admin/alerts/alertrule/{rule.pk}/change/").content.decode()
    assert not re.search(r'name="conditions"[^>]*data-django-jsonform', html)
    assert re.search(r'<textarea[^>]*name="conditions"', html)
    # the add page knows no rule type yet: textarea, with links to each type's form
    add = client.get("/admin/alerts/alertrule/add/").content.decode()
    assert re.search(r'<textarea[^>]*name="conditions"', add) and "?rule_type=threshold" in add
    add_sla = client.get("/admin/alerts/alertrule/add/?rule_type=sla").content.decode()
    assert re.search(r'name="conditions"[^>]*data-django-jsonform', add_sla)


@pytest.mark.django_db
@pytest.mark.parametrize("model, fields", [
    (AlertRule, ["conditions", "alert_config", "actions"]),
    (EscalationPolicy, ["steps", "alert_types"]),
    (Silence, ["matchers"]),
    (InhibitRule, ["source_matchers", "target_matchers", "equal"]),
    (Job, ["steps", "parameters_schema", "notify"]),
    (MaintenanceWindow, ["label_matchers"]),
])
def test_every_schema_field_is_a_structured_editor_on_the_add_page(world, client, model, fields):
    assert model in site._registry
    client.force_login(world.user("a", "admin"))
    url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/add/" + ("?rule_type=alert" if model is AlertRule else "")
    html = client.get(url).content.decode()
    for field in fields:
        assert re.search(rf'name="{field}"[^>]*data-django-jsonform', html), f"{model.__name__}.{field}"

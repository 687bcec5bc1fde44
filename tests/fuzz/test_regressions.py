"""Regressions for what the API fuzzer found (each was a 500 or a response the schema denied)."""

from django.urls import reverse


def test_nul_character_in_a_lookup_is_a_400_not_a_500(world, api):
    client = api.as_user(world.user("a", "admin"))
    r = client.post(reverse("organization-list"), {"kind": "customer", "slug": "nul-x", "name": "x", "parent": "ten\x00ant-a"}, format="json")
    assert r.status_code == 400, r.content
    assert "NUL" in r.json()["detail"] or r.json()["errors"]


def test_schema_says_which_ticket_and_run_fields_may_be_null(db):
    from drf_spectacular.generators import SchemaGenerator

    components = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]
    for field in ("assignee_username", "customer", "partner"):
        assert components["Ticket"]["properties"][field].get("nullable"), field
    assert components["JobRun"]["properties"]["duration_seconds"].get("nullable")


def test_schema_documents_paged_lists_and_error_bodies(db):
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    get = schema["paths"]["/api/v1/jobs/{id}/schedules/"]["get"]
    assert get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/PaginatedJobScheduleList")
    assert get["responses"]["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/PortalError")
    assert "409" in schema["paths"]["/api/v1/tickets/{id}/"].get("delete", {"responses": {"409": 1}})["responses"]

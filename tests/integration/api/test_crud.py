"""The CRM REST API over HTTP: CRUD, validation, versions, duplicates, audit, the seeds' operations."""

from __future__ import annotations

import base64
import hashlib

from sqlalchemy import select

from crm_backend.models import AuditLog, Lead
from tests.integration.conftest import Api

LEAD = {
    "first_name": "Dana",
    "last_name": "Smith",
    "email": "dana@nimbus.example",
    "company": "Nimbus Labs",
    "source": "Website",
}


async def test_create_get_list_patch_delete_a_lead(api: Api) -> None:
    created = await api.ok("POST", "/api/v1/leads", json=LEAD, status=201)
    assert created["owner_id"] == api.demo.actor("alice").user_id
    assert (created["status"], created["version"], created["dedup_key"]) == ("New", 1, "dana@nimbus.example")
    lid = created["id"]
    got = await api.ok("GET", f"/api/v1/leads/{lid}")
    assert got == created
    page = await api.ok("GET", "/api/v1/leads?q=nimbus&status=New&sort=-created_at")
    assert [i["id"] for i in page["items"]] == [lid] and page["total"] == 1
    changed = await api.ok("PATCH", f"/api/v1/leads/{lid}", json={"status": "Contacted"}, headers={"If-Match": '"1"'})
    assert (changed["status"], changed["version"]) == ("Contacted", 2)
    await api.ok("DELETE", f"/api/v1/leads/{lid}", status=204, headers={"If-Match": '"2"'})
    assert (await api.call("GET", f"/api/v1/leads/{lid}")).status == 404
    with api.demo.store.unit_of_work() as uow:  # soft delete: the row and its history remain
        row = uow.session.get(Lead, lid)
        assert row is not None and row.deleted_at is not None


async def test_every_write_is_audited_with_user_channel_and_changes(api: Api) -> None:
    lid = (await api.ok("POST", "/api/v1/leads", json=LEAD, status=201))["id"]
    await api.ok("PATCH", f"/api/v1/leads/{lid}", json={"company": "Nimbus Labs GmbH"})
    with api.demo.store.unit_of_work() as uow:
        rows = uow.session.scalars(
            select(AuditLog).where(AuditLog.entity_type == "leads", AuditLog.entity_id == lid).order_by(AuditLog.id)
        ).all()
    assert [r.action for r in rows] == ["create", "update"]
    assert {r.user_id for r in rows} == {api.demo.actor("alice").user_id}
    assert {r.channel for r in rows} == {"api"}
    assert rows[1].changes["company"] == ["Nimbus Labs", "Nimbus Labs GmbH"]
    entries = await api.ok("GET", f"/api/v1/audit-log?entity_type=leads&entity_id={lid}", username="admin")
    assert entries["total"] == 2


async def test_stale_version_is_409_and_nothing_is_overwritten(api: Api) -> None:
    lid = (await api.ok("POST", "/api/v1/leads", json=LEAD, status=201))["id"]
    await api.ok("PATCH", f"/api/v1/leads/{lid}", json={"title": "CTO"}, headers={"If-Match": '"1"'})
    resp = await api.call("PATCH", f"/api/v1/leads/{lid}", json={"title": "CEO"}, headers={"If-Match": '"1"'})
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "conflict"
    assert (await api.ok("GET", f"/api/v1/leads/{lid}"))["title"] == "CTO"


async def test_unknown_fields_and_wrong_types_are_422_and_nothing_is_written(api: Api) -> None:
    for body in (
        {**LEAD, "password": "x"},
        {**LEAD, "score": "very"},
        {**LEAD, "email": "not-an-email"},
        {**LEAD, "score": 150},
        {"first_name": "No last name"},
    ):
        resp = await api.call("POST", "/api/v1/leads", json=body)
        assert resp.status == 422, body
        error = (await resp.json())["error"]
        assert error["code"] == "validation_failed" and error["fields"]
    assert (await api.ok("GET", "/api/v1/leads"))["total"] == 0


async def test_malformed_json_is_400_and_missing_token_is_401(api: Api) -> None:
    resp = await api.call("POST", "/api/v1/leads", data=b"{nope", headers={"Content-Type": "application/json"})
    assert (resp.status, (await resp.json())["error"]["code"]) == (400, "malformed_json")
    resp = await api.call("GET", "/api/v1/leads", username=None)
    assert resp.status == 401


async def test_a_twin_lead_is_offered_not_created(api: Api) -> None:
    await api.ok("POST", "/api/v1/leads", json=LEAD, status=201)
    twin = {**LEAD, "email": "DANA@nimbus.example ", "first_name": "Dana"}
    resp = await api.call("POST", "/api/v1/leads", json=twin)
    assert resp.status == 409
    body = await resp.json()
    assert body["error"]["code"] == "duplicate"
    assert body["error"]["candidates"][0]["reason"] == "same email"
    similar = {"first_name": "Dana", "last_name": "Smyth", "company": "Nimbus Labs Inc.", "source": "Referral"}
    resp = await api.call("POST", "/api/v1/leads", json=similar)
    assert (await resp.json())["error"]["candidates"][0]["reason"] == "similar name at the same company"
    await api.ok("POST", "/api/v1/leads?allow_duplicate=true", json=similar, status=201)
    assert (await api.ok("GET", "/api/v1/leads"))["total"] == 2


async def test_lead_conversion_creates_account_contact_and_deal_in_one_go(api: Api) -> None:
    lid = (await api.ok("POST", "/api/v1/leads", json={**LEAD, "budget": "40000"}, status=201))["id"]
    ids = await api.ok("POST", f"/api/v1/leads/{lid}/convert", json={"deal_name": "Nimbus pilot"}, status=201)
    lead = await api.ok("GET", f"/api/v1/leads/{lid}")
    assert lead["status"] == "Converted" and lead["converted_account_id"] == ids["account_id"]
    deal = await api.ok("GET", f"/api/v1/deals/{ids['deal_id']}")
    assert (deal["name"], deal["amount"], deal["lead_id"], deal["contact_id"]) == (
        "Nimbus pilot",
        "40000.00",
        lid,
        ids["contact_id"],
    )
    contact = await api.ok("GET", f"/api/v1/contacts/{ids['contact_id']}")
    assert (contact["email"], contact["account_id"]) == ("dana@nimbus.example", ids["account_id"])
    resp = await api.call("POST", f"/api/v1/leads/{lid}/convert", json={})
    assert resp.status == 409


async def test_failed_conversion_leaves_nothing_behind(api: Api) -> None:
    lid = (await api.ok("POST", "/api/v1/leads", json={**LEAD, "company": None}, status=201))["id"]
    before = (await api.ok("GET", "/api/v1/accounts"))["total"]
    resp = await api.call("POST", f"/api/v1/leads/{lid}/convert", json={"account_id": 999999})
    assert resp.status == 404
    assert (await api.ok("GET", "/api/v1/accounts"))["total"] == before
    assert (await api.ok("GET", f"/api/v1/leads/{lid}"))["status"] == "New"


async def test_qualifying_with_all_bant_answers_marks_the_lead_qualified(api: Api) -> None:
    lid = (await api.ok("POST", "/api/v1/leads", json=LEAD, status=201))["id"]
    partial = await api.ok("POST", f"/api/v1/leads/{lid}/qualify", json={"budget": "50000"})
    assert partial["status"] == "Contacted"
    done = await api.ok(
        "POST", f"/api/v1/leads/{lid}/qualify", json={"has_authority": True, "need": "fleet tracking", "timeline": "Q3"}
    )
    assert done["status"] == "Qualified"


async def test_stage_change_sets_probability_and_losing_needs_a_reason(api: Api) -> None:
    deal = (await api.ok("GET", "/api/v1/deals?stage=Proposal"))["items"][0]
    moved = await api.ok("POST", f"/api/v1/deals/{deal['id']}/stage", json={"stage": "Negotiation"})
    assert (moved["stage"], moved["probability"]) == ("Negotiation", 75)
    override = await api.ok("POST", f"/api/v1/deals/{deal['id']}/stage", json={"stage": "Proposal", "probability": 60})
    assert override["probability"] == 60
    resp = await api.call("POST", f"/api/v1/deals/{deal['id']}/stage", json={"stage": "Closed Lost"})
    assert resp.status == 422 and "lost_reason" in (await resp.json())["error"]["fields"]
    lost = await api.ok(
        "POST", f"/api/v1/deals/{deal['id']}/stage", json={"stage": "Closed Lost", "lost_reason": "budget frozen"}
    )
    assert (lost["probability"], lost["closed_at"] is not None) == (0, True)


async def test_account_hierarchy_refuses_loops_and_summary_shows_the_360_view(api: Api) -> None:
    parent = await api.ok("POST", "/api/v1/accounts", json={"name": "Acme Holdings"}, status=201)
    acme = (await api.ok("GET", "/api/v1/accounts?q=Acme Corporation"))["items"][0]
    await api.ok("PATCH", f"/api/v1/accounts/{acme['id']}", json={"parent_id": parent["id"]})
    resp = await api.call("PATCH", f"/api/v1/accounts/{parent['id']}", json={"parent_id": acme["id"]})
    assert resp.status == 422 and "loop" in (await resp.json())["error"]["fields"]["parent_id"]
    tree = await api.ok("GET", f"/api/v1/accounts/{parent['id']}/hierarchy")
    assert [c["name"] for c in tree["children"]] == ["Acme Corporation"]
    summary = await api.ok("GET", f"/api/v1/accounts/{acme['id']}/summary")
    assert [d["name"] for d in summary["open_deals"]] == ["Acme - Fleet telematics"]


async def test_currency_conversion_goes_through_the_base_currency(api: Api) -> None:
    for body in (
        {"code": "USD", "name": "US dollar", "symbol": "$", "rate_to_base": "1", "is_base": True},
        {"code": "EUR", "name": "Euro", "symbol": "€", "rate_to_base": "1.08"},
        {"code": "GBP", "name": "Pound", "symbol": "£", "rate_to_base": "1.27"},
    ):
        await api.ok("POST", "/api/v1/currencies", json=body, username="admin", status=201)
    result = await api.ok("POST", "/api/v1/currencies/convert", json={"amount": "12000", "from": "EUR", "to": "USD"})
    assert result["result"] == "12960.00"
    cross = await api.ok("POST", "/api/v1/currencies/convert", json={"amount": "100", "from": "gbp", "to": "eur"})
    assert cross["result"] == "117.59"
    second_base = {"code": "JPY", "name": "Yen", "symbol": "¥", "rate_to_base": "1", "is_base": True}
    assert (await api.call("POST", "/api/v1/currencies", json=second_base, username="admin")).status == 409
    assert (await api.call("POST", "/api/v1/currencies", json=second_base, username="alice")).status == 403


async def test_calendar_conflicts_and_attendees(api: Api) -> None:
    bob = api.demo.actor("bob").user_id
    booking = await api.ok(
        "POST",
        "/api/v1/calendar-bookings",
        status=201,
        json={
            "title": "Nimbus demo",
            "type": "Demo",
            "start_at": "2026-12-01T14:00:00Z",
            "end_at": "2026-12-01T15:00:00Z",
            "attendees": [{"user_id": bob}, {"email": "dana@nimbus.example", "required": False}],
        },
    )
    assert [a["required"] for a in booking["attendees"]] == [True, False]
    found = await api.ok(
        "GET", "/api/v1/calendar-bookings/conflicts?start=2026-12-01T14:30:00Z&end=2026-12-01T16:00:00Z"
    )
    assert [b["id"] for b in found["items"]] == [booking["id"]]
    for_bob = await api.ok(
        "GET", "/api/v1/calendar-bookings/conflicts?start=2026-12-01T14:30:00Z&end=2026-12-01T16:00:00Z", username="bob"
    )
    assert for_bob["items"][0]["title"] in ("Busy", "Nimbus demo")
    free = await api.ok(
        "GET", "/api/v1/calendar-bookings/conflicts?start=2026-12-01T15:00:00Z&end=2026-12-01T16:00:00Z"
    )
    assert free["total"] == 0
    bad = await api.call(
        "POST",
        "/api/v1/calendar-bookings",
        json={"title": "x", "start_at": "2026-12-01T15:00:00Z", "end_at": "2026-12-01T14:00:00Z"},
    )
    assert bad.status == 422


async def test_recurring_activity_stores_an_rrule_and_next_occurrence(api: Api) -> None:
    rec = await api.ok(
        "POST",
        "/api/v1/recurring-activities",
        status=201,
        json={
            "subject": "Pipeline review",
            "pattern": "Weekly",
            "weekdays": ["MO"],
            "starts_at": "2026-11-30T09:00:00Z",
        },
    )
    assert rec["rrule"] == "RRULE:FREQ=WEEKLY;INTERVAL=1;BYDAY=MO"
    assert rec["next_occurrence_at"].startswith("2026-11-30T09:00:00")
    bad = await api.call(
        "POST",
        "/api/v1/recurring-activities",
        json={"subject": "x", "pattern": "Weekly", "weekdays": ["Monday"], "starts_at": "2026-11-30T09:00:00Z"},
    )
    assert bad.status == 422


async def test_integration_secrets_are_encrypted_and_never_returned(api: Api) -> None:
    created = await api.ok(
        "POST",
        "/api/v1/social-integrations",
        status=201,
        json={"name": "Company LinkedIn", "platform": "LinkedIn", "api_key": "key-123", "api_secret": "s3cr3t"},
    )
    assert created["has_api_key"] and created["has_api_secret"] and not created["has_access_token"]
    assert "s3cr3t" not in str(created) and not any(k.endswith("_encrypted") for k in created)
    from crm_backend.models import SocialIntegration

    with api.demo.store.unit_of_work() as uow:
        row = uow.session.get(SocialIntegration, created["id"])
        assert row is not None and row.api_secret_encrypted and "s3cr3t" not in row.api_secret_encrypted
        audit = uow.session.scalars(select(AuditLog).where(AuditLog.entity_type == "social_integrations")).all()
        assert "s3cr3t" not in str([a.changes for a in audit])


async def test_documents_store_the_file_with_size_type_and_digest(api: Api) -> None:
    content = b"%PDF-1.4 proposal"
    doc = await api.ok(
        "POST",
        "/api/v1/documents",
        status=201,
        json={"name": "Nimbus proposal.pdf", "type": "Proposal", "content_base64": base64.b64encode(content).decode()},
    )
    assert (doc["size_bytes"], doc["sha256"], doc["mime_type"]) == (
        len(content),
        hashlib.sha256(content).hexdigest(),
        "application/pdf",
    )
    assert "storage_path" not in doc
    files = list((api.demo.store.files_dir or api.demo.store.files_dir).rglob(doc["sha256"]))  # type: ignore[union-attr]
    assert len(files) == 1 and files[0].read_bytes() == content


async def test_custom_fields_are_typed(api: Api) -> None:
    await api.ok(
        "POST",
        "/api/v1/custom-fields",
        username="admin",
        status=201,
        json={
            "entity_type": "leads",
            "name": "budget_cycle",
            "label": "Budget cycle",
            "field_type": "choice",
            "choices": ["Q1", "Q3"],
        },
    )
    ok = await api.ok("POST", "/api/v1/leads", status=201, json={**LEAD, "custom_fields": {"budget_cycle": "Q3"}})
    assert ok["custom_fields"] == {"budget_cycle": "Q3"}
    resp = await api.call(
        "POST", "/api/v1/leads?allow_duplicate=1", json={**LEAD, "custom_fields": {"budget_cycle": "Q2"}}
    )
    assert resp.status == 422
    resp = await api.call("POST", "/api/v1/leads?allow_duplicate=1", json={**LEAD, "custom_fields": {"nope": 1}})
    assert resp.status == 422


async def test_list_rejects_unknown_filters_and_sorts_and_paginates(api: Api) -> None:
    assert (await api.call("GET", "/api/v1/deals?colour=red")).status == 422
    assert (await api.call("GET", "/api/v1/deals?sort=colour")).status == 422
    assert (await api.call("GET", "/api/v1/deals?limit=0")).status == 422
    first = await api.ok("GET", "/api/v1/deals?limit=2&sort=amount")
    second = await api.ok("GET", "/api/v1/deals?limit=2&offset=2&sort=amount")
    assert first["total"] == 4 and len(first["items"]) == 2 and len(second["items"]) == 2
    amounts = [float(d["amount"]) for d in first["items"] + second["items"]]
    assert amounts == sorted(amounts)
    big = await api.ok("GET", "/api/v1/deals?amount__gte=50000&stage__in=Proposal,Negotiation")
    assert {d["name"] for d in big["items"]} == {"Nimbus Labs - Platform renewal"}


async def test_import_over_http_is_all_or_nothing_and_export_escapes_formulas(api: Api) -> None:
    good = (
        "First Name,Last Name,E-mail,Company\n"
        "Ana,Lopez,ana@x.example,Lopez SA\n"
        "Ben,Ode,ben@y.example,=cmd|' /C calc'!A0\n"
    )
    resp = await api.call("POST", "/api/v1/leads/import", data=good.encode(), headers={"Content-Type": "text/csv"})
    report = await resp.json()
    assert (resp.status, report["created"], report["committed"]) == (200, 2, True)
    bad = "last_name,email\nCruz,not-an-email\nDiaz,diaz@z.example\n"
    resp = await api.call("POST", "/api/v1/leads/import", data=bad.encode(), headers={"Content-Type": "text/csv"})
    report = await resp.json()
    assert (resp.status, report["committed"], report["rejected"][0]["line"]) == (422, False, 2)
    assert (await api.ok("GET", "/api/v1/leads"))["total"] == 2
    exported = await api.call("GET", "/api/v1/leads/export?format=csv")
    text = await exported.text()
    assert exported.status == 200 and "'=cmd|' /C calc'!A0" in text and "ana@x.example" in text
    as_bob = await api.call("GET", "/api/v1/leads/export?format=json", username="bob")
    assert await as_bob.json() == []


async def test_uploading_new_content_makes_a_new_document_version(api: Api) -> None:
    first = await api.ok(
        "POST",
        "/api/v1/documents",
        status=201,
        json={"name": "Contract.txt", "type": "Contract", "content_base64": base64.b64encode(b"v1").decode()},
    )
    same = await api.ok("PATCH", f"/api/v1/documents/{first['id']}", json={"category": "Legal"})
    assert same["file_version"] == 1
    second = await api.ok(
        "PATCH", f"/api/v1/documents/{first['id']}", json={"content_base64": base64.b64encode(b"v2 signed").decode()}
    )
    assert (second["file_version"], second["size_bytes"]) == (2, 9)
    assert second["sha256"] == hashlib.sha256(b"v2 signed").hexdigest()
    bad = await api.call("PATCH", f"/api/v1/documents/{first['id']}", json={"content_base64": "not base64!"})
    assert bad.status == 422


async def test_reminder_recurrence_must_be_an_rrule(api: Api) -> None:
    ok = await api.ok(
        "POST",
        "/api/v1/reminders",
        status=201,
        json={
            "message": "Weekly check-in",
            "remind_at": "2027-01-04T09:00:00Z",
            "recurrence": "RRULE:FREQ=WEEKLY;BYDAY=MO",
        },
    )
    assert ok["recurrence"] == "RRULE:FREQ=WEEKLY;BYDAY=MO"
    bad = await api.call(
        "POST",
        "/api/v1/reminders",
        json={"message": "x", "remind_at": "2027-01-04T09:00:00Z", "recurrence": "every monday"},
    )
    assert bad.status == 422 and "recurrence" in (await bad.json())["error"]["fields"]

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from crm_backend import transfer
from crm_backend.errors import ValidationFailed
from crm_backend.models import Account, Activity, AuditLog, Contact, Deal, Lead
from crm_backend.services import records
from crm_backend.store import Actor
from crm_backend.transfer import ImportReport, RejectedRow
from tests.conftest import Demo

FORMULA = "=cmd|' /C calc'!A0"
ALICE_DEALS = {
    "Acme - Fleet telematics",
    "Nimbus Labs - Platform renewal",
    "Initech - Analytics add-on",
    "Acme - Pilot",
}


def import_csv(
    demo: Demo, text: str, entity: str = "leads", user: str = "alice", **kwargs: Any
) -> tuple[ImportReport, Actor]:
    actor = demo.actor(user)
    mapping = kwargs.pop("mapping", None)
    rows = transfer.read_csv(io.StringIO(text, newline=""), entity, mapping)
    return transfer.import_rows(demo.store, actor, entity, rows, **kwargs), actor


def leads(demo: Demo) -> list[Lead]:
    with demo.store.unit_of_work() as uow:
        return list(uow.session.scalars(select(Lead).order_by(Lead.id)))


def count(demo: Demo, model: Any) -> int:
    with demo.store.unit_of_work() as uow:
        return uow.session.scalar(select(func.count()).select_from(model)) or 0


def export(demo: Demo, user: str, entity: str, fmt: str, filters: dict[str, str] | None = None) -> tuple[int, str]:
    out = io.StringIO(newline="")
    n = transfer.export_rows(demo.store, demo.actor(user), entity, out, fmt, filters)
    return n, out.getvalue()


GOOD_LEADS = (
    "first_name,last_name,email,company,score,source\n"
    "Jane,Doe,jane@example.com,Doe Industries,40,Website\n"
    "John,Roe,john@example.org,Roe GmbH,,Referral\n"
    "Ann,Lee,ann@example.net,Lee & Co,90,Trade Show\n"
)


# --- importing -------------------------------------------------------------------------------------
def test_good_csv_imports_every_row_owned_by_the_importer_and_audited_as_import(demo: Demo) -> None:
    report, alice = import_csv(demo, GOOD_LEADS)

    assert (report.total, report.created, report.rejected, report.duplicates, report.committed) == (
        3,
        3,
        [],
        [],
        True,
    )
    rows = leads(demo)
    assert [(r.first_name, r.last_name, r.email, r.company) for r in rows] == [
        ("Jane", "Doe", "jane@example.com", "Doe Industries"),
        ("John", "Roe", "john@example.org", "Roe GmbH"),
        ("Ann", "Lee", "ann@example.net", "Lee & Co"),
    ]
    assert {r.owner_id for r in rows} == {alice.user_id}
    assert [r.score for r in rows] == [40, 0, 90]  # the empty cell left the default
    with demo.store.unit_of_work() as uow:
        audit = list(uow.session.scalars(select(AuditLog).where(AuditLog.entity_type == "leads")))
    assert {(a.channel, a.action, a.user_id) for a in audit} == {("import", "create", alice.user_id)}
    assert sorted(a.entity_id or 0 for a in audit) == [r.id for r in rows]


def test_one_bad_row_writes_nothing_and_reports_every_bad_line_and_field(demo: Demo) -> None:
    text = GOOD_LEADS + "Bad,Email,not-an-email,X Corp,50,Website\nToo,High,hi@example.com,Y Corp,150,Website\n"

    report, _ = import_csv(demo, text)

    assert report.committed is False
    assert (report.total, report.created) == (5, 0)
    assert [(r.line, sorted(r.fields)) for r in report.rejected] == [(5, ["email"]), (6, ["score"])]
    assert report.rejected[0].reason.startswith("email:")
    assert "100" in report.rejected[1].reason
    assert leads(demo) == []
    with demo.store.unit_of_work() as uow:
        assert uow.session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.channel == "import")) == 0


def test_partial_import_writes_the_good_rows_and_reports_the_bad_one(demo: Demo) -> None:
    text = GOOD_LEADS + "Too,High,hi@example.com,Y Corp,150,Website\n"

    report, _ = import_csv(demo, text, partial=True)

    assert (report.total, report.created, report.committed) == (4, 3, True)
    assert [(r.line, list(r.fields)) for r in report.rejected] == [(5, ["score"])]
    assert [r.email for r in leads(demo)] == ["jane@example.com", "john@example.org", "ann@example.net"]


def test_duplicate_of_an_existing_lead_is_reported_and_never_created_twice(demo: Demo) -> None:
    import_csv(demo, GOOD_LEADS)
    again = "first_name,last_name,email\nJanet,Doherty,JANE@example.com\nNew,Person,new@example.com\n"

    report, _ = import_csv(demo, again)
    assert report.committed is False
    assert [r.line for r in report.duplicates] == [2]
    assert "same email" in report.duplicates[0].reason
    assert report.rejected == []
    assert len(leads(demo)) == 3

    report, _ = import_csv(demo, again, partial=True)
    assert (report.created, [r.line for r in report.duplicates]) == (1, [2])
    emails = [r.email for r in leads(demo)]
    assert len(emails) == 4
    assert emails.count("jane@example.com") == 1
    assert "new@example.com" in emails


def test_duplicate_rows_within_one_file_are_caught(demo: Demo) -> None:
    text = "last_name,email\nDoe,dup@example.com\nDoe,dup@example.com\n"

    report, _ = import_csv(demo, text, partial=True)

    assert (report.created, [r.line for r in report.duplicates]) == (1, [3])
    assert len(leads(demo)) == 1


def test_spreadsheet_headers_are_matched_to_fields(demo: Demo) -> None:
    text = "First Name,Last-Name,E-mail,Company,LAST NAME\n"  # two columns for last_name
    with pytest.raises(ValidationFailed) as err:
        import_csv(demo, text)
    assert "more than one column for: last_name" in err.value.fields["header"]

    text = "\ufeffFirst Name,Last-Name,E-mail,Company, Has Authority \nJane,Doe,jane@example.com,Doe Inc,yes\n"
    report, _ = import_csv(demo, text)

    assert report.created == 1
    [lead] = leads(demo)
    assert (lead.first_name, lead.last_name, lead.email, lead.company, lead.has_authority) == (
        "Jane",
        "Doe",
        "jane@example.com",
        "Doe Inc",
        True,
    )


def test_explicit_mapping_wins_and_can_skip_columns(demo: Demo) -> None:
    text = "Given,Surname,Mail,Firm,Internal notes,Company\nJane,Doe,jane@example.com,Doe Inc,ignore me,Other\n"
    mapping = {"Given": "first_name", "Surname": "last_name", "Mail": "email", "Firm": "company"}
    mapping |= {"Internal notes": "", "Company": "industry"}

    report, _ = import_csv(demo, text, mapping=mapping)

    assert report.created == 1
    [lead] = leads(demo)
    assert (lead.first_name, lead.last_name, lead.email, lead.company, lead.industry, lead.description) == (
        "Jane",
        "Doe",
        "jane@example.com",
        "Doe Inc",
        "Other",
        None,
    )


def test_mapping_to_an_unknown_field_or_column_is_refused(demo: Demo) -> None:
    with pytest.raises(ValidationFailed) as err:
        import_csv(demo, "Surname\nDoe\n", mapping={"Surname": "surname"})
    assert "surname" in err.value.fields["mapping"]
    with pytest.raises(ValidationFailed) as err:
        import_csv(demo, "last_name\nDoe\n", mapping={"Nope": "company"})
    assert "'Nope'" in err.value.fields["mapping"]
    assert leads(demo) == []


def test_missing_required_column_is_refused_before_anything_is_written(demo: Demo) -> None:
    with pytest.raises(ValidationFailed) as err:
        import_csv(demo, "first_name,email\nJane,jane@example.com\n")
    assert err.value.fields == {"header": "missing required column(s): last_name"}
    assert leads(demo) == []


def test_unknown_column_is_refused_before_anything_is_written(demo: Demo) -> None:
    with pytest.raises(ValidationFailed) as err:
        import_csv(demo, "last_name,Favourite Colour,dedup_key\nDoe,blue,x\n")
    assert err.value.fields["header"].startswith("unknown column(s): 'Favourite Colour', 'dedup_key'")
    assert leads(demo) == []


def test_empty_file_is_refused(demo: Demo) -> None:
    with pytest.raises(ValidationFailed) as err:
        import_csv(demo, "")
    assert "empty" in err.value.fields["file"]


def test_ten_megabyte_cell_rejects_its_row_and_the_others_import(demo: Demo) -> None:
    huge = "x" * (10 * 1024 * 1024)
    text = f"last_name,company\nFirst,A\nHuge,{huge}\nLast,B\n"

    report, _ = import_csv(demo, text, partial=True)

    assert (report.total, report.created) == (3, 2)
    [bad] = report.rejected
    assert bad.line == 3
    assert bad.reason == "company: 10,485,760 characters long; at most 10,000 are allowed"
    assert huge not in bad.reason
    assert [r.last_name for r in leads(demo)] == ["First", "Last"]


def test_row_with_more_values_than_columns_is_rejected(demo: Demo) -> None:
    report, _ = import_csv(demo, "last_name\nDoe,extra\nRoe,\n", partial=True)

    assert report.created == 1
    assert [(r.line, r.reason) for r in report.rejected] == [(2, "2 values but the header names 1 columns")]


def test_latin1_file_is_refused_naming_the_encoding_and_line(demo: Demo) -> None:
    raw = "first_name,last_name\nJürgen,Müller\n".encode("latin-1")
    with pytest.raises(ValidationFailed) as err:
        transfer.import_rows(
            demo.store, demo.actor("alice"), "leads", transfer.read_csv(transfer.as_text(io.BytesIO(raw)), "leads")
        )
    assert "not UTF-8" in err.value.fields["file"]
    assert "line 2" in err.value.fields["file"]
    assert leads(demo) == []


def test_bad_bytes_deep_in_a_large_file_roll_back_everything_and_name_the_line(demo: Demo) -> None:
    good = "".join(f"Name{i},Person{i},\n" for i in range(1000)).encode()  # ~18 kB: several decode chunks
    raw = b"first_name,last_name,email\n" + good + "Jürgen,Müller,j@example.com\n".encode("latin-1")

    with pytest.raises(ValidationFailed) as err:
        transfer.import_rows(
            demo.store,
            demo.actor("alice"),
            "leads",
            transfer.read_csv(transfer.as_text(io.BytesIO(raw)), "leads"),
            partial=True,
        )
    assert "line 1002" in err.value.fields["file"]
    assert leads(demo) == []


def test_formula_text_is_stored_verbatim_and_exported_defused(demo: Demo) -> None:
    text = f"last_name,company,phone\nEvil,{FORMULA},+49 30 1234\n"
    report, _ = import_csv(demo, text)
    assert report.created == 1
    [lead] = leads(demo)
    assert lead.company == FORMULA

    n, exported = export(demo, "alice", "leads", "csv")

    assert n == 1
    [row] = list(csv.DictReader(io.StringIO(exported)))
    assert row["company"] == "'" + FORMULA
    assert row["phone"] == "'+49 30 1234"
    assert row["last_name"] == "Evil"
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row.values())


def test_deals_import_needs_an_account_the_importer_can_see(demo: Demo) -> None:
    alice, bob = demo.actor("alice"), demo.actor("bob")
    with demo.store.unit_of_work() as uow:
        alices = uow.session.scalar(select(Account.id).where(Account.owner_id == alice.user_id))
        bobs = uow.session.scalar(select(Account.id).where(Account.owner_id == bob.user_id))
    before = count(demo, Deal)
    text = (
        "name,account_id,amount,currency,stage,competitors,expected_close_date\n"
        f'Imported deal,{alices},1200.50,EUR,Proposal,"[""Globex"", ""Initech""]",2031-03-31\n'
        f"Sneaky deal,{bobs},10,,,,\n"
        f"Bad list,{alices},10,,,Globex,\n"
    )

    report, _ = import_csv(demo, text, entity="deals", partial=True)

    assert report.created == 1
    assert [(r.line, r.fields) for r in report.rejected] == [
        (3, {"account_id": f"no account with id {bobs}"}),
        (4, {"competitors": 'expected a JSON array, e.g. ["Acme", "Globex"]'}),
    ]
    assert count(demo, Deal) == before + 1
    with demo.store.unit_of_work() as uow:
        deal = uow.session.scalars(select(Deal).where(Deal.name == "Imported deal")).one()
    assert (str(deal.amount), deal.currency, deal.stage.value, deal.competitors, str(deal.expected_close_date)) == (
        "1200.50",
        "EUR",
        "Proposal",
        ["Globex", "Initech"],
        "2031-03-31",
    )
    assert deal.owner_id == alice.user_id


def test_activities_and_contacts_import(demo: Demo) -> None:
    text = (
        "Type,Subject,Due At,Priority,Duration Minutes\n"
        "Call,Call Jane about renewal,2031-01-02T10:00:00+00:00,High,30\n"
        "Task,Send proposal,,,\n"
    )
    report, alice = import_csv(demo, text, entity="activities")
    assert (report.created, report.committed) == (2, True)
    with demo.store.unit_of_work() as uow:
        rows = list(uow.session.scalars(select(Activity).order_by(Activity.id)))
    assert [(a.type.value, a.subject, a.priority.value, a.duration_minutes) for a in rows] == [
        ("Call", "Call Jane about renewal", "High", 30),
        ("Task", "Send proposal", "Medium", None),
    ]
    assert rows[0].due_at is not None
    assert rows[0].due_at.isoformat().startswith("2031-01-02T10:00:00")
    assert {a.owner_id for a in rows} == {alice.user_id}

    text = "first_name,last_name,email,email_opt_out\nJane,Doe,jane.doe@example.com,YES\nJohn,Roe,,no\n"
    report, _ = import_csv(demo, text, entity="contacts")
    assert report.created == 2
    with demo.store.unit_of_work() as uow:
        opt_out = {name: flag for name, flag in uow.session.execute(select(Contact.last_name, Contact.email_opt_out))}
    assert (opt_out["Doe"], opt_out["Roe"]) == (True, False)


def test_only_importable_entities_are_accepted(demo: Demo) -> None:
    with pytest.raises(ValidationFailed) as err:
        transfer.import_rows(demo.store, demo.actor("admin"), "users", iter([]))
    assert "importable" in err.value.fields["entity"]
    with pytest.raises(ValidationFailed):
        transfer.read_csv(io.StringIO("username\nx\n"), "users")


def test_rep_cannot_import_records_for_someone_else(demo: Demo) -> None:
    bob = demo.actor("bob")
    report, _ = import_csv(demo, f"last_name,owner_id\nDoe,{bob.user_id}\n", partial=True)

    assert report.created == 0
    assert [r.line for r in report.rejected] == [2]
    assert "yourself" in report.rejected[0].reason


def test_json_import_rejects_items_that_are_not_objects(demo: Demo) -> None:
    data = [
        {"last_name": "Doe", "email": "jane@example.com", "has_authority": True},
        "just a string",
        {"last_name": "Roe", "nickname": "Rob"},
        {"last_name": "Lee", "description": "y" * 10_001},
    ]
    rows = transfer.read_json(io.StringIO(json.dumps(data)))

    report = transfer.import_rows(demo.store, demo.actor("alice"), "leads", rows, partial=True)

    assert report.created == 1
    assert [r.line for r in report.rejected] == [2, 3, 4]
    assert report.rejected[0].reason == "expected an object, got str"
    assert list(report.rejected[1].fields) == ["nickname"]
    assert list(report.rejected[2].fields) == ["description"]
    assert [lead.last_name for lead in leads(demo)] == ["Doe"]
    as_dict = report.as_dict()
    assert as_dict["rejected"][0] == {"line": 2, "reason": "expected an object, got str", "fields": {}}
    json.dumps(as_dict)


@pytest.mark.parametrize("text", ["{not json", '{"last_name": "Doe"}'])
def test_json_that_is_not_an_array_is_refused(demo: Demo, text: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        transfer.read_json(io.StringIO(text))
    assert "file" in err.value.fields


# --- exporting -------------------------------------------------------------------------------------
def test_csv_export_holds_only_the_deals_the_user_may_see(demo: Demo) -> None:
    n, text = export(demo, "alice", "deals", "csv")

    rows = list(csv.DictReader(io.StringIO(text)))
    assert n == len(rows) == 4
    assert {r["name"] for r in rows} == ALICE_DEALS
    assert "Globex" not in text and "Umbrella" not in text
    assert next(csv.reader(io.StringIO(text)))[0] == "id"
    assert set(rows[0]) == set(records.resource("deals").read_schema.model_fields)
    assert all(r["competitors"] == "[]" for r in rows)

    n, text = export(demo, "bob", "deals", "csv")
    assert n == 3
    assert "Acme" not in text


def test_export_applies_filters(demo: Demo) -> None:
    n, text = export(demo, "alice", "deals", "json", {"stage": "Closed Won"})
    assert n == 1
    assert [d["name"] for d in json.loads(text)] == ["Acme - Pilot"]
    with pytest.raises(ValidationFailed):
        export(demo, "alice", "deals", "json", {"password": "x"})
    with pytest.raises(ValidationFailed):
        export(demo, "alice", "deals", "xlsx")


def test_json_export_round_trips(demo: Demo) -> None:
    n, text = export(demo, "maria", "deals", "json")

    exported = json.loads(text)
    maria = demo.actor("maria")
    with demo.store.unit_of_work(actor=maria) as uow:
        page = records.list_records(uow, records.resource("deals"), records.ListQuery(sort="id", limit=500))
        expected = [records.serialize(records.resource("deals"), d) for d in page.items]
    assert n == page.total == len(exported)
    assert exported == expected
    assert {d["name"] for d in exported} >= ALICE_DEALS


def test_empty_exports_are_valid(demo: Demo) -> None:
    assert export(demo, "alice", "leads", "json") == (0, "[]\n")
    n, text = export(demo, "alice", "leads", "csv")
    assert n == 0
    assert next(csv.reader(io.StringIO(text)))[:2] == ["id", "first_name"]


def test_exported_csv_imports_back(demo: Demo) -> None:
    import_csv(demo, GOOD_LEADS)
    _, text = export(demo, "alice", "leads", "csv")
    read_only = ["id", "created_at", "updated_at", "version", "deleted_at", "dedup_key", "owner_id"]
    read_only += ["converted_at", "converted_account_id", "converted_contact_id"]

    report, _ = import_csv(demo, text, user="bob", mapping=dict.fromkeys(read_only, ""))

    assert (report.created, report.rejected) == (3, [])
    assert len(leads(demo)) == 6


# --- streaming -------------------------------------------------------------------------------------
def test_large_csv_is_streamed_with_progress(demo: Demo) -> None:
    produced = 0

    def lines() -> Iterator[str]:
        nonlocal produced
        # No email, phone or company: the lead duplicate check scans the table for those (see the
        # report), which would make this test about that query's speed rather than streaming.
        yield "first_name,last_name,score,source\n"
        for i in range(5000):
            produced += 1
            yield f"Person{i},Number{i},{i % 101},Website\n"

    calls: list[tuple[int, int]] = []
    rows = transfer.read_csv(lines(), "leads")  # any iterable of lines, read lazily
    report = transfer.import_rows(
        demo.store, demo.actor("carlos"), "leads", rows, progress=lambda n: calls.append((n, produced))
    )

    assert (report.total, report.created, report.committed) == (5000, 5000, True)
    done = [n for n, _ in calls]
    assert done == list(range(500, 5001, 500))
    assert calls[0][1] < 1000  # the file had not been read to the end when the first batch was done
    assert count(demo, Lead) == 5000


def test_progress_is_reported_at_the_end_of_an_odd_sized_file(demo: Demo) -> None:
    rows = ((i, {"last_name": f"N{i}"}) for i in range(1, 503))
    calls: list[int] = []

    report = transfer.import_rows(demo.store, demo.actor("alice"), "leads", rows, progress=calls.append)

    assert report.created == 502
    assert calls == [500, 502]


def test_rejected_row_from_a_reader_is_reported_as_is(demo: Demo) -> None:
    rows: list[tuple[int, transfer.Row]] = [(1, {"last_name": "Doe"}), (2, RejectedRow(2, "unreadable"))]

    report = transfer.import_rows(demo.store, demo.actor("alice"), "leads", rows)

    assert (report.committed, report.rejected) == (False, [RejectedRow(2, "unreadable")])
    assert leads(demo) == []

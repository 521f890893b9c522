"""Bulk import and export of CRM records as CSV or JSON.

Every imported row goes through `records.create_record`, so it is validated, permission-checked,
duplicate-checked and audited exactly like a record created through the API; the audit trail names
the channel "import". An import is all-or-nothing by default: one transaction, and if any row is
rejected (or looks like a duplicate) nothing is written and the report lists every bad row. With
`partial=True` the good rows are written and the bad ones reported.

Files are processed as streams: rows are read, validated and written one at a time, so a file of
tens of thousands of rows never sits in memory at once. Exports stream the same way and protect
spreadsheet users from formula injection.

Typical use::

    with open(path, encoding="utf-8", newline="") as f:
        report = import_rows(store, actor, "leads", read_csv(f, "leads"))
    with open(out_path, "w", encoding="utf-8", newline="") as out:
        export_rows(store, actor, "deals", out, "csv")
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, TextIO

from pydantic import BaseModel
from sqlalchemy.exc import DataError, IntegrityError

from crm_backend.errors import Conflict, Duplicate, NotFound, PermissionDenied, ValidationFailed
from crm_backend.services import records
from crm_backend.store import Actor, Store, UnitOfWork

IMPORTABLE = ("leads", "accounts", "contacts", "deals", "activities")
EXPORT_FORMATS = ("csv", "json")
MAX_CELL = 10_000  # characters in one cell (or one string value of a JSON object)
CSV_FIELD_LIMIT = 16 * 1024 * 1024  # so an oversized cell is read and rejected, not a reader crash
BATCH = 500  # rows between progress reports and session clean-ups
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
HEADER_ALIASES = {"e_mail": "email", "email_address": "email"}


@dataclass
class RejectedRow:
    """A row that was not imported: where it is in the file and why.

    `line` is the 1-based line of the file for CSV (the header is line 1) or the 1-based index in
    the array for JSON. `fields` maps each bad field to its problem, where the reason is per field.
    """

    line: int
    reason: str
    fields: dict[str, str] = field(default_factory=dict)


@dataclass
class ImportReport:
    """What an import did. `committed` is False when nothing was written (all-or-nothing failed)."""

    entity: str
    total: int
    created: int
    rejected: list[RejectedRow]
    duplicates: list[RejectedRow]
    committed: bool

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-safe data (for the REST API and the CLI's --json)."""
        return dataclasses.asdict(self)


Row = Mapping[str, Any] | RejectedRow
"""A row to import, or a row the reader already rejected (bad cell, not an object)."""


class _RollBack(Exception):
    """Raised inside the unit of work to undo an all-or-nothing import that had bad rows."""


# --- import ----------------------------------------------------------------------------------------
def import_rows(
    store: Store,
    actor: Actor,
    entity: str,
    rows: Iterable[tuple[int, Row]],
    *,
    partial: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Create one `entity` record per row as `actor`, on channel "import"; return what happened.

    `rows` yields `(line, data)` pairs (see `read_csv`, `read_json`) and is consumed lazily. Each
    row runs in a savepoint of one transaction, so a bad row never spoils the others. A row that
    looks like an existing record is reported in `duplicates` and never created.

    All-or-nothing (the default): if any row is rejected or a duplicate, the whole transaction is
    rolled back, `committed` is False and `created` is 0; every row is still checked so the report
    is complete. `partial=True`: good rows are committed, bad ones reported.

    `progress(rows_done)` is called every 500 rows and once at the end. A `ValidationFailed` from
    the reader itself (bad header, not UTF-8, not JSON) propagates and nothing is written.
    """
    if entity not in IMPORTABLE:
        raise ValidationFailed({"entity": f"cannot import {entity!r}; importable: {', '.join(IMPORTABLE)}"})
    res = records.resource(entity)
    report = ImportReport(entity=entity, total=0, created=0, rejected=[], duplicates=[], committed=False)
    reported = -1
    try:
        with store.unit_of_work(actor=actor, channel="import") as uow:
            for line, row in rows:
                report.total += 1
                if isinstance(row, RejectedRow):
                    report.rejected.append(row)
                else:
                    _import_one(uow, res, line, row, report)
                if report.total % BATCH == 0:
                    uow.session.flush()
                    uow.session.expunge_all()
                    if progress:
                        progress(report.total)
                    reported = report.total
            if not partial and (report.rejected or report.duplicates):
                raise _RollBack
    except _RollBack:
        report.created = 0
    else:
        report.committed = True
    if progress and reported != report.total:
        progress(report.total)
    return report


def _import_one(
    uow: UnitOfWork, res: records.Resource, line: int, row: Mapping[str, Any], report: ImportReport
) -> None:
    try:
        with uow.session.begin_nested():
            records.create_record(uow, res, dict(row))
    except Duplicate as exc:
        report.duplicates.append(RejectedRow(line, _duplicate_reason(res, exc)))
    except ValidationFailed as exc:
        report.rejected.append(RejectedRow(line, _fields_reason(exc.fields), dict(exc.fields)))
    except (PermissionDenied, NotFound, Conflict) as exc:
        report.rejected.append(RejectedRow(line, exc.message))
    except (IntegrityError, DataError):
        report.rejected.append(
            RejectedRow(line, "clashes with existing data (a unique value is taken or a linked record is missing)")
        )
    else:
        report.created += 1


def _fields_reason(fields: Mapping[str, str]) -> str:
    return "; ".join(f"{name}: {problem}" for name, problem in fields.items())


def _duplicate_reason(res: records.Resource, exc: Duplicate) -> str:
    found = []
    for c in exc.candidates[:3]:
        label = c.get("name") or c.get("email") or ""
        why = f", {c['reason']}" if c.get("reason") else ""
        found.append(f"#{c.get('id')} {label}".rstrip() + why)
    more = f" and {len(exc.candidates) - 3} more" if len(exc.candidates) > 3 else ""
    return f"looks like an existing {res.noun}: " + "; ".join(found) + more


# --- readers ---------------------------------------------------------------------------------------
def as_text(stream: IO[bytes]) -> TextIO:
    """A binary upload as the UTF-8 text stream the readers expect (undecodable bytes are reported)."""
    return io.TextIOWrapper(stream, encoding="utf-8", newline="")


def _normal(header: str) -> str:
    name = re.sub(r"[\s\-]+", "_", header.replace("\ufeff", "").strip().lower()).strip("_")
    return HEADER_ALIASES.get(name, name)


def _kind(annotation: Any) -> str:
    """'bool', 'list', 'dict' or 'text': how a CSV cell for a field of this type is converted."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _kind(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        kinds = {_kind(a) for a in typing.get_args(annotation) if a is not type(None)}
        return kinds.pop() if len(kinds) == 1 else "text"
    if annotation is bool:
        return "bool"
    if annotation is list or origin is list:
        return "list"
    if annotation is dict or origin is dict:
        return "dict"
    return "text"


def _schema(entity: str) -> type[BaseModel]:
    if entity not in IMPORTABLE:
        raise ValidationFailed({"entity": f"cannot import {entity!r}; importable: {', '.join(IMPORTABLE)}"})
    return records.resource(entity).create_schema


def _columns(entity: str, header: list[str], mapping: Mapping[str, str] | None) -> list[str | None]:
    """The field each column of `header` fills (None: ignored), or `ValidationFailed`."""
    schema = _schema(entity)
    known = schema.model_fields
    explicit = {k.strip(): v.strip() for k, v in (mapping or {}).items()}
    explicit_normal = {_normal(k): v for k, v in explicit.items()}
    problems: dict[str, str] = {}
    bad_targets = sorted({v for v in explicit.values() if v and v not in known})
    if bad_targets:
        problems["mapping"] = f"not field(s) of {entity}: {', '.join(bad_targets)}"
    stripped = [h.replace("\ufeff", "").strip() for h in header]
    unused = [k for k in explicit if k not in stripped and _normal(k) not in {_normal(h) for h in stripped}]
    if unused:
        problems.setdefault("mapping", f"no column named {', '.join(map(repr, unused))} in the file")
    columns: list[str | None] = []
    unknown: list[str] = []
    for raw in stripped:
        if raw in explicit:
            target: str | None = explicit[raw] or None
        elif _normal(raw) in explicit_normal:
            target = explicit_normal[_normal(raw)] or None
        elif not raw:
            target = None  # a nameless column (e.g. a trailing comma) carries nothing
        else:
            target = _normal(raw)
            if target not in known:
                unknown.append(raw)
        columns.append(target)
    header_problems = []
    if unknown:
        header_problems.append(
            f"unknown column(s): {', '.join(map(repr, unknown))} (fields of {entity}: {', '.join(known)})"
        )
    seen: set[str] = set()
    twice: set[str] = set()
    for name in columns:
        if name:
            (twice if name in seen else seen).add(name)
    if twice:
        header_problems.append(f"more than one column for: {', '.join(sorted(twice))}")
    missing = [name for name, info in known.items() if info.is_required() and name not in seen]
    if missing:
        header_problems.append(f"missing required column(s): {', '.join(missing)}")
    if header_problems:
        problems["header"] = "; ".join(header_problems)
    if problems:
        raise ValidationFailed(problems, "The file's columns do not match the fields of " + entity + ".")
    return columns


def _convert(kind: str, cell: str) -> Any:
    """A CSV cell as the value the schema expects; ValueError with a reason if it cannot be."""
    if kind == "bool":
        word = cell.strip().lower()
        if word in ("true", "yes", "1"):
            return True
        if word in ("false", "no", "0"):
            return False
        return cell  # the schema reports it
    if kind in ("list", "dict"):
        try:
            value = json.loads(cell)
        except json.JSONDecodeError:
            value = None
        expected = list if kind == "list" else dict
        if not isinstance(value, expected):
            example = '["Acme", "Globex"]' if kind == "list" else '{"key": "value"}'
            raise ValueError(f"expected a JSON {'array' if kind == 'list' else 'object'}, e.g. {example}")
        return value
    return cell


def _too_long(value: str) -> str:
    return f"{len(value):,} characters long; at most {MAX_CELL:,} are allowed"


def read_csv(
    stream: Iterable[str], entity: str, mapping: Mapping[str, str] | None = None
) -> Iterator[tuple[int, Mapping[str, Any] | RejectedRow]]:
    """The rows of a CSV file as `(line, data)` pairs for `import_rows(..., entity, ...)`.

    `stream` is a text file opened with `encoding="utf-8", newline=""` (or `as_text(binary)`), or
    any iterable of lines; it is read lazily, one record at a time. The header
    is checked at once: each column is matched to a field of `entity` case-insensitively, with
    spaces and dashes read as underscores ("First Name" → first_name, "E-mail" → email);
    `mapping` ({file header: field}) names fields explicitly and wins (map to "" to skip a column).
    Unknown or duplicate columns, or missing required ones, raise `ValidationFailed` before any row
    is read. Empty cells are left out (so defaults apply); "yes/no/true/false/1/0" become booleans
    and JSON text becomes lists and objects. A row with a cell over 10,000 characters, too many
    cells or an unconvertible cell is yielded as a `RejectedRow`. Bytes that are not UTF-8 raise
    `ValidationFailed` naming the line when reached.
    """
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    position = [0]  # physical lines handed to the csv reader so far
    reader = csv.reader(_counted_lines(stream, position))
    header = _next_record(reader, position)
    if header is None:
        raise ValidationFailed({"file": "the file is empty; its first line must name the columns"})
    columns = _columns(entity, header, mapping)
    fields = _schema(entity).model_fields
    kinds = {name: _kind(info.annotation) for name, info in fields.items()}
    return _csv_rows(reader, position, header, columns, kinds)


def _csv_rows(
    reader: Iterator[list[str]],
    position: list[int],
    header: list[str],
    columns: list[str | None],
    kinds: dict[str, str],
) -> Iterator[tuple[int, Mapping[str, Any] | RejectedRow]]:
    while True:
        line = position[0] + 1
        cells = _next_record(reader, position)
        if cells is None:
            return
        if not any(c.strip() for c in cells):
            continue  # a blank line
        yield line, _csv_row(line, cells, header, columns, kinds)


def _csv_row(
    line: int, cells: list[str], header: list[str], columns: list[str | None], kinds: dict[str, str]
) -> Mapping[str, Any] | RejectedRow:
    if len(cells) > len(columns) and any(c.strip() for c in cells[len(columns) :]):
        return RejectedRow(line, f"{len(cells)} values but the header names {len(columns)} columns")
    data: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for name, raw_header, cell in zip(columns, header, cells, strict=False):
        if len(cell) > MAX_CELL:
            problems[name or raw_header] = _too_long(cell)
            continue
        if name is None or not cell.strip():
            continue
        try:
            data[name] = _convert(kinds.get(name, "text"), cell)
        except ValueError as exc:
            problems[name] = str(exc)
    if problems:
        return RejectedRow(line, _fields_reason(problems), problems)
    return data


def _counted_lines(stream: Iterable[str], position: list[int]) -> Iterator[str]:
    """The stream's lines, counting them; undecodable bytes become `ValidationFailed` with the line."""
    lines = iter(stream)
    while True:
        try:
            text = next(lines)
        except StopIteration:
            return
        except UnicodeDecodeError as exc:
            # The decoder fails on a chunk; lines before it were all handed out already.
            bad = exc.object[: exc.start] if isinstance(exc.object, bytes) else b""
            at = position[0] + 1 + bad.count(b"\n")
            raise ValidationFailed(
                {"file": f'not UTF-8 text (line {at}: {exc.reason}); save the file as UTF-8 ("CSV UTF-8")'},
                "The file is not UTF-8 text.",
            ) from exc
        position[0] += 1
        yield text


def _next_record(reader: Iterator[list[str]], position: list[int]) -> list[str] | None:
    try:
        return next(reader)
    except StopIteration:
        return None
    except csv.Error as exc:
        raise ValidationFailed(
            {"file": f"line {position[0]}: malformed CSV ({exc})"}, "The file is not valid CSV."
        ) from exc


def read_json(stream: TextIO) -> Iterator[tuple[int, Mapping[str, Any] | RejectedRow]]:
    """The objects of a JSON array as `(index, data)` pairs (1-based) for `import_rows`.

    The file is parsed at once (`ValidationFailed` if it is not UTF-8 JSON holding an array);
    items that are not objects, or hold a string over 10,000 characters, are yielded as
    `RejectedRow`s. Keys must be field names of the entity (unknown keys reject the row).
    """
    try:
        data = json.load(stream)
    except UnicodeDecodeError as exc:
        raise ValidationFailed({"file": f"not UTF-8 text ({exc.reason})"}, "The file is not UTF-8 text.") from exc
    except json.JSONDecodeError as exc:
        raise ValidationFailed(
            {"file": f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"}, "The file is not JSON."
        ) from exc
    if not isinstance(data, list):
        raise ValidationFailed({"file": "expected a JSON array of objects"}, "The file is not a JSON array.")
    return _json_rows(data)


def _json_rows(items: list[Any]) -> Iterator[tuple[int, Mapping[str, Any] | RejectedRow]]:
    for index, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            yield index, RejectedRow(index, f"expected an object, got {type(item).__name__}")
            continue
        long = {k: _too_long(v) for k, v in item.items() if isinstance(v, str) and len(v) > MAX_CELL}
        yield index, (RejectedRow(index, _fields_reason(long), long) if long else item)


# --- export ----------------------------------------------------------------------------------------
def export_rows(
    store: Store,
    actor: Actor,
    entity: str,
    out: TextIO,
    fmt: str,
    filters: dict[str, str] | None = None,
) -> int:
    """Write every `entity` record `actor` may see to `out` as "csv" or "json"; return how many.

    `filters` are the collection's list filters (e.g. {"stage": "Proposal", "amount__gte": "1000"}).
    Records are read in one streamed query, oldest id first, and written one at a time. CSV has one
    column per field of the read schema (lists and objects as JSON text); a cell starting with
    = + - @ tab or carriage return is prefixed with ' so spreadsheets never run it as a formula.
    JSON is an array of objects. Open `out` with `newline=""` for CSV.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValidationFailed({"format": f"export as one of: {', '.join(EXPORT_FORMATS)}"})
    res = records.resource(entity)
    count = 0
    with store.unit_of_work(actor=actor, channel="export", read_only=True) as uow:
        stmt = records.scoped(res, actor)
        for key, raw in (filters or {}).items():
            stmt = stmt.where(records._filter_clause(res, key, raw))
        stmt = stmt.order_by(res.id_column).execution_options(yield_per=BATCH)
        items = (records.serialize(res, obj) for obj in uow.session.scalars(stmt))
        if fmt == "csv":
            columns = _export_columns(res)
            writer = csv.writer(out)
            writer.writerow(columns)
            for data in items:
                writer.writerow([_csv_cell(data.get(name)) for name in columns])
                count += 1
        else:
            out.write("[")
            for data in items:
                out.write(",\n" if count else "\n")
                out.write(json.dumps(data, ensure_ascii=False))
                count += 1
            out.write("\n]\n" if count else "]\n")
    return count


def _export_columns(res: records.Resource) -> list[str]:
    names = list(res.read_schema.model_fields)
    return ["id", *(n for n in names if n != "id")] if "id" in names else names


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, list | dict):
        text = json.dumps(value, ensure_ascii=False)
    else:
        text = str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text

"""Importing a file into a collection category: one plan, shown as the dry run and applied on
confirmation (docs/design.md §11).

:func:`plan_import` reads the organization's items once and validates every row as the
category's form would: each cell through the form field's ``clean`` (type conversion, lengths,
choices), the model's field validators and ``clean()``, and the natural-key constraint against
one read of the organization's keys (live and archived) and the file's own rows. Doing that in
bulk instead of one bound ModelForm per row keeps 10,000 rows within a second or two.
:func:`apply_import` makes the same plan again inside its transaction, refuses it if it is not
the plan the dry run showed, writes it with bulk statements, and records one upstream change,
so partners get one run for the whole file.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import connection, transaction
from django.db.models import Field
from django.utils import timezone

from organizations.models import Organization
from organizations.natural_keys import normalise_key

from . import exports, registry, spreadsheets, tasks
from .locks import is_item_locked
from .models import Import
from .registry import Category

CREATE, UPDATE, UNCHANGED, ERROR, ARCHIVE = "create", "update", "unchanged", "error", "archive"
ACTIONS = (CREATE, UPDATE, UNCHANGED, ERROR, ARCHIVE)
ARCHIVE_REASON = "Not in the imported file"
TRUE_WORDS = {"yes", "y", "true", "1", "on", "x"}
FALSE_WORDS = {"no", "n", "false", "0", "off", ""}


def importable(category: Category) -> bool:
    return category.transferable


@dataclass
class RowPlan:
    line: int
    action: str
    label: str
    #: (column, message) pairs
    errors: list[tuple[str, str]] = field(default_factory=list)
    #: the fields an update changes
    changed: list[str] = field(default_factory=list)
    #: the same fields as the file's headers name them (shown in the dry run)
    changed_headers: list[str] = field(default_factory=list)
    key: str = ""
    instance: object = None


@dataclass
class ImportPlan:
    category: Category
    organization: Organization
    columns: list[str]
    rows: list[RowPlan]
    archived: list = field(default_factory=list)
    #: columns of the file that are not fields of the category (ignored)
    unknown_columns: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        counts = Counter(row.action for row in self.rows)
        counts[ARCHIVE] = len(self.archived)
        return {action: counts.get(action, 0) for action in ACTIONS}

    @property
    def errors(self) -> list[RowPlan]:
        return [row for row in self.rows if row.action == ERROR]

    @property
    def has_changes(self) -> bool:
        counts = self.counts
        return bool(counts[CREATE] or counts[UPDATE] or counts[ARCHIVE])

    @property
    def digest(self) -> str:
        """What the plan does, as a fingerprint: equal plans, equal digests."""
        shape = [
            [[row.line, row.action, row.key, row.changed] for row in self.rows],
            sorted(item.pk for item in self.archived),
        ]
        return hashlib.sha256(json.dumps(shape).encode()).hexdigest()


def _squash(text: str) -> str:
    return "".join(ch for ch in str(text).casefold() if not ch.isspace() and ch != "_")


def _column_names(category: Category, form_fields: dict) -> dict[str, str]:
    """Every spelling of a header that stands for a field: its name, its verbose name, its
    label on the form (compared without case, spaces or underscores)."""
    names = {}
    for name in exports.field_names(category):
        model_field = category.model._meta.get_field(name)
        for spelling in (name, model_field.verbose_name, form_fields[name].label or ""):
            if spelling:
                names[_squash(spelling)] = name
    return names


def _map_columns(category: Category, header: list[str], form_fields: dict):
    spellings = _column_names(category, form_fields)
    ignored = {_squash(text) for text in exports.PROVENANCE_HEADERS}
    columns: dict[str, int] = {}
    unknown: list[str] = []
    for index, text in enumerate(header):
        squashed = _squash(text)
        if not squashed or squashed in ignored:
            continue
        name = spellings.get(squashed)
        if name is None:
            unknown.append(text)
        elif name in columns:
            raise ValidationError(
                f"Two columns stand for {exports.header(category, name)}: "
                f"“{header[columns[name]]}” and “{text}”. Keep one of them."
            )
        else:
            columns[name] = index
    missing = [
        exports.header(category, name)
        for name in exports.field_names(category)
        if form_fields[name].required and name not in columns
    ]
    if missing:
        raise ValidationError(
            "The file has no column for "
            + ", ".join(f"“{label}”" for label in missing)
            + ". Start from the template, which has every column."
        )
    return columns, unknown


def _as_text(raw) -> str:
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return exports.YES if raw else exports.NO
    if isinstance(raw, float):
        return repr(raw)
    if isinstance(raw, datetime.datetime):
        return raw.date().isoformat() if raw.time() == datetime.time() else raw.isoformat()
    if isinstance(raw, datetime.date):
        return raw.isoformat()
    return str(raw)


class _Column:
    """How one field's cells become values, as the form and the model would make them:
    the form field's ``clean`` and the model field's ``clean`` (its validators). Both are pure
    functions of the cell, so each distinct cell is converted once (a file repeats its kinds,
    manufacturers and yes/no cells thousands of times)."""

    def __init__(self, form_field: forms.Field, model_field) -> None:
        self.form_field = form_field
        self.model_field = model_field
        self.by_label = {}
        if isinstance(form_field, forms.ChoiceField):
            self.by_label = {
                _squash(label): value for value, label in form_field.choices if value != ""
            }
        self.memo: dict = {}

    def convert(self, raw):
        """(value, None) or (None, error messages)."""
        key = (type(raw), raw)  # True == 1, yet a yes/no cell is not the number 1
        try:
            return self.memo[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable cell
            return self._convert(raw)
        result = self.memo[key] = self._convert(raw)
        return result

    def _convert(self, raw):
        try:
            value = self._form_value(raw)
            if not (self.model_field.blank and value in self.model_field.empty_values):
                value = self.model_field.clean(value, None)
        except ValidationError as error:
            return None, error.messages
        return value, None

    def _form_value(self, raw):
        if isinstance(raw, spreadsheets.Formula):
            raise ValidationError(
                f"This cell holds a formula ({raw.text[:40]}); formulas are not imported. "
                "Type the value itself."
            )
        text = _as_text(raw)
        if isinstance(self.form_field, forms.BooleanField):
            word = text.strip().casefold()
            if word in TRUE_WORDS:
                return True
            if word in FALSE_WORDS:
                return False
            raise ValidationError("Type yes or no.")
        if self.by_label:
            text = self.by_label.get(_squash(text), text.strip())
        return self.form_field.clean(text)


def _validate_row(converters: dict, columns, cells, instance) -> dict[str, list[str]]:
    """Set the row's values on ``instance``; the errors by field name."""
    errors: dict[str, list[str]] = {}
    for name, index in columns.items():
        value, messages = converters[name].convert(cells[index] if index < len(cells) else None)
        if messages:
            errors[name] = messages
        else:
            setattr(instance, name, value)
    if not errors:
        try:
            instance.clean()
        except ValidationError as error:
            for name, messages in error.message_dict.items():
                errors.setdefault(name, []).extend(messages)
    return errors


def _key_label(category: Category) -> str:
    names = [
        str(category.model._meta.get_field(name).verbose_name) for name in category.natural_key
    ]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def plan_import(
    *,
    category: Category,
    organization: Organization,
    table: spreadsheets.Table,
    archive_missing: bool,
) -> ImportPlan:
    """What importing ``table`` would do; ValidationError for a file that cannot be read as
    this category (a missing required column, a column given twice)."""
    model = category.model
    form_fields = category.form_class(organization=organization).fields
    columns, unknown = _map_columns(category, table.header, form_fields)
    converters = {name: _Column(form_fields[name], model._meta.get_field(name)) for name in columns}
    items = model.objects.filter(organization=organization)
    if hasattr(model, "managed_by"):
        items = items.select_related("managed_by")
    live = {item.normalised_key: item for item in items}
    archived_keys = set(
        model.all_objects.filter(organization=organization, archived_at__isnull=False).values_list(
            "normalised_key", flat=True
        )
    )
    # A new item's defaults, copied for every row: building a model instance costs more than
    # validating its row (docs/design.md §11.2, rule X2).
    blank = model(organization=organization)
    duplicate_field = category.form_class.duplicate_error_field or category.natural_key[-1]
    key_label = _key_label(category)
    seen: dict[str, int] = {}
    rows: list[RowPlan] = []
    for line, cells in table.rows:
        if len(cells) > len(table.header) and any(
            _as_text(cell).strip() for cell in cells[len(table.header) :]
        ):
            rows.append(
                RowPlan(line, ERROR, "", [("", "This row has more cells than the header.")])
            )
            continue
        key_cells = [
            _as_text(cells[columns[name]]) if columns.get(name, 10**6) < len(cells) else ""
            for name in category.natural_key
        ]
        label = " ".join(part.strip() for part in key_cells if part.strip())
        instance = copy.copy(blank)
        errors = _validate_row(converters, columns, cells, instance)
        row = RowPlan(line, ERROR, label)
        if not set(category.natural_key) & set(errors):
            row.key = normalise_key(getattr(instance, name) for name in category.natural_key)
            if row.key in seen:
                errors.setdefault(duplicate_field, []).append(
                    f"Line {seen[row.key]} of the file has the same {key_label}."
                )
            else:
                seen[row.key] = line
            existing = live.get(row.key)
            if existing is not None:
                row.changed = [
                    name for name in columns if getattr(existing, name) != getattr(instance, name)
                ]
                if row.changed and is_item_locked(existing):
                    errors.setdefault(NON_FIELD_ERRORS, []).append(
                        f"“{existing}” is managed by {existing.managed_by}; it is read-only here."
                    )
                updated = copy.copy(existing)
                for name in columns:
                    setattr(updated, name, getattr(instance, name))
                instance = updated
            elif row.key in archived_keys:
                errors.setdefault(duplicate_field, []).append(
                    f"An archived {category.item_label} has this {key_label}. Restore it on the "
                    f"{category.label} page, or change this row."
                )
        if errors:
            row.errors = [
                (
                    "" if name == NON_FIELD_ERRORS else exports.header(category, name),
                    message,
                )
                for name, messages in errors.items()
                for message in messages
            ]
            row.changed = []
        elif row.key in live:
            row.action = UPDATE if row.changed else UNCHANGED
            row.changed_headers = [exports.header(category, name) for name in row.changed]
        else:
            row.action = CREATE
        row.instance = instance
        rows.append(row)
    archived = []
    if archive_missing:
        archived = [
            item for key, item in live.items() if key not in seen and not is_item_locked(item)
        ]
    return ImportPlan(category, organization, list(columns), rows, archived, unknown)


def _table_of(upload: Import) -> spreadsheets.Table:
    return spreadsheets.read_table(bytes(upload.content), file_name=upload.file_name)[1]


def plan_of(upload: Import) -> ImportPlan:
    """The dry run of a stored upload, against the data as it is now."""
    return plan_import(
        category=registry.get(upload.category),
        organization=upload.organization,
        table=_table_of(upload),
        archive_missing=upload.archive_missing,
    )


@transaction.atomic
def start_import(
    *,
    organization: Organization,
    category: Category,
    file_name: str,
    content: bytes,
    archive_missing: bool,
    by,
) -> Import:
    """Read an uploaded file and keep it for its dry run; ValidationError for a file that is
    not a usable table of this category (nothing is kept then)."""
    fmt, table = spreadsheets.read_table(content, file_name=file_name)
    plan = plan_import(
        category=category, organization=organization, table=table, archive_missing=archive_missing
    )
    upload = Import(
        organization=organization,
        category=category.key,
        file_name=file_name[:255],
        file_format=fmt,
        content=content,
        archive_missing=archive_missing,
        counts=plan.counts,
        plan_digest=plan.digest,
        created_by=by,
    )
    upload.full_clean(exclude=["created_by"])  # None from scripts (the benchmark)
    upload.save()
    return upload


@transaction.atomic
def apply_import(*, upload: Import, expected_digest: str, by) -> ImportPlan:
    """Apply a dry run as one change: the same plan, made again in this transaction under the
    organization's lock, or a ValidationError and nothing written."""
    Organization.objects.select_for_update().filter(pk=upload.organization_id).first()
    upload = Import.objects.select_for_update().get(pk=upload.pk)
    if upload.status != Import.Status.PLANNED:
        raise ValidationError("This file has already been imported.")
    plan = plan_of(upload)
    if plan.errors:
        raise ValidationError(
            "Some rows have errors: fix them in the file and upload it again. Nothing was changed."
        )
    if plan.digest != expected_digest:
        raise StalePlan()
    _write(plan, by=by)
    upload.status = Import.Status.APPLIED
    upload.counts = plan.counts
    upload.applied_at = timezone.now()
    upload.content = b""
    upload.save(update_fields=["status", "counts", "applied_at", "content"])
    return plan


class StalePlan(ValidationError):
    """The plan made now is not the one the dry run showed."""

    def __init__(self) -> None:
        super().__init__(
            "The data changed since this dry run, so applying it would not do what it showed. "
            "Review the dry run again below and confirm it if it is what you want."
        )


def _write(plan: ImportPlan, *, by) -> None:
    category, model, now = plan.category, plan.category.model, timezone.now()
    # Synced items carry when they changed; invite-only ones (licenses) do not.
    synced = category.is_collection
    stamp = {"archived_by_sync": False, "updated_at": now} if synced else {}
    created = [row.instance for row in plan.rows if row.action == CREATE]
    updated = [row.instance for row in plan.rows if row.action == UPDATE]
    if synced:
        for item in [*created, *updated]:
            item.updated_at = now
    if plan.archived:
        model.objects.filter(pk__in=[item.pk for item in plan.archived]).update(
            archived_at=now, archived_by=by, archive_reason=ARCHIVE_REASON, **stamp
        )
    if updated:
        fields = [*plan.columns, "updated_at"] if synced else plan.columns
        model.objects.bulk_update(updated, fields, batch_size=500)
    if created:
        for row in plan.rows:
            if row.action == CREATE:
                row.instance.normalised_key = row.key  # what bulk_create would compute (§3.3)
        _create(model, created)
    if plan.has_changes and synced:
        # Bulk writes send no post_save: the whole file is one upstream change, one run per
        # partner (docs/design.md §7.3, rule R1). Invite-only data is copied once, at the
        # invitation, and never fanned out.
        tasks.schedule_upstream_change(plan.organization.pk, category.key, category.label)


def _create(model, items: list) -> None:
    """Insert ``items`` (their ``normalised_key`` set) as ``bulk_create`` would, without
    giving them their ids: on PostgreSQL in one ``COPY`` (docs/design.md §11.2, rule X4),
    elsewhere through the ORM."""
    if connection.vendor != "postgresql":
        model.objects.bulk_create(items, batch_size=1000)
        return
    fields = [f for f in model._meta.concrete_fields if not f.primary_key and not f.generated]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    values = [_prepared(f, items) for f in fields]
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN") as copy_in,
    ):
        for row in zip(*values, strict=True):
            copy_in.write_row(row)


def _prepared(field, items: list) -> list:
    """One field's values as the ORM sends them to the database (its ``pre_save``, then
    ``get_db_prep_save``). A plan's rows share their value objects (each distinct cell is
    converted once, a new item's defaults are one item's), so each object is prepared once."""
    if type(field).pre_save is Field.pre_save:
        attname = field.attname
        raw = [item.__dict__[attname] for item in items]
    else:
        raw = [field.pre_save(item, True) for item in items]
    done: dict[int, tuple] = {}  # id → (the value, kept alive while its id is a key; prepared)
    prepared = []
    for value in raw:
        try:
            prepared.append(done[id(value)][1])
        except KeyError:
            result = field.get_db_prep_save(value, connection)
            done[id(value)] = (value, result)
            prepared.append(result)
    return prepared

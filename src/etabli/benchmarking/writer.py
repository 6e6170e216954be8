"""Fast batched inserts of model rows: COPY on PostgreSQL, executemany on SQLite.

Rows are given as field values by attname; what is not given takes the field's default, so a
field added to a model later does not break the generator (unless it is required and has none).
Ids are given by the caller (see `IdAllocator`), so rows can refer to each other before they are
written; foreign keys are checked at commit (Django creates them deferrable).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Callable

from django.db import connection, models, transaction

UTC = dt.UTC


class IdAllocator:
    """Hands out ids above what a table already holds."""

    def __init__(self) -> None:
        self._next: dict[type[models.Model], int] = {}

    def __call__(self, model: type[models.Model]) -> int:
        if model not in self._next:
            top = model.objects.aggregate(m=models.Max("pk"))["m"] or 0
            self._next[model] = top + 1
        value = self._next[model]
        self._next[model] = value + 1
        return value


def _sqlite_value(v):
    if v is None or isinstance(v, (int, str, float)):
        return int(v) if isinstance(v, bool) else v
    if isinstance(v, dt.datetime):
        return v.astimezone(UTC).replace(tzinfo=None).isoformat(" ")
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return v


def _pg_value(v):
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return v


class RowWriter:
    def __init__(self, batch_rows: int = 50_000) -> None:
        self.vendor = connection.vendor
        self.batch_rows = batch_rows
        self._specs: dict[type[models.Model], tuple[list[str], list[str], list]] = {}
        self._rows: dict[type[models.Model], list[tuple]] = {}
        self._pending = 0
        self.written: dict[str, int] = {}
        self.on_flush: Callable[[], None] | None = None

    def _spec(self, model):
        spec = self._specs.get(model)
        if spec is None:
            fields = [f for f in model._meta.concrete_fields]
            attnames = [f.attname for f in fields]
            columns = [f.column for f in fields]
            defaults = []
            for f in fields:
                if f.has_default():
                    d = f.default
                    defaults.append(d() if callable(d) else d)
                elif f.null:
                    defaults.append(None)
                elif isinstance(f, (models.CharField, models.TextField)):
                    defaults.append("")
                else:
                    defaults.append(_REQUIRED)
            spec = (attnames, columns, defaults)
            self._specs[model] = spec
            self._rows[model] = []
        return spec

    def add(self, model, **values) -> None:
        attnames, _columns, defaults = self._spec(model)
        row = []
        for name, default in zip(attnames, defaults, strict=True):
            if name in values:
                row.append(values[name])
            elif default is _REQUIRED:
                raise ValueError(f"{model.__name__}.{name} has no value and no default")
            else:
                row.append(default)
        self._rows[model].append(tuple(row))
        self._pending += 1

    def maybe_flush(self) -> None:
        """Write the batch if it is full; call it where every row added so far is complete
        (a row must not refer to one added later, or the commit's foreign-key check fails)."""
        if self._pending >= self.batch_rows:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        with transaction.atomic():
            for model, rows in self._rows.items():
                if rows:
                    self._write(model, rows)
                    name = model._meta.label
                    self.written[name] = self.written.get(name, 0) + len(rows)
                    rows.clear()
            self._reset_sequences()
        self._pending = 0
        if self.on_flush:
            self.on_flush()

    def _write(self, model, rows: list[tuple]) -> None:
        _attnames, columns, _defaults = self._spec(model)
        table = connection.ops.quote_name(model._meta.db_table)
        cols = ", ".join(connection.ops.quote_name(c) for c in columns)
        with connection.cursor() as cursor:
            if self.vendor == "postgresql":
                with cursor.cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row([_pg_value(v) for v in row])
            else:
                marks = ", ".join(["%s"] * len(columns))
                cursor.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})",
                                   [[_sqlite_value(v) for v in row] for row in rows])

    def finish(self) -> None:
        self.flush()
        if self.vendor == "postgresql" and not connection.in_atomic_block:
            # Fresh statistics, so the planner knows what was just loaded (autovacuum would
            # get there, minutes later).
            with connection.cursor() as cursor:
                for model in self._specs:
                    cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")

    def _reset_sequences(self) -> None:
        """Move PostgreSQL's id sequences past the ids written (after every batch, so an
        interrupted seed leaves a database the application can write to)."""
        if self.vendor == "postgresql":
            with connection.cursor() as cursor:
                for model in self._specs:
                    table = model._meta.db_table
                    pk = model._meta.pk.column
                    cursor.execute(
                        f"SELECT setval(pg_get_serial_sequence(%s, %s), "
                        f"(SELECT COALESCE(MAX({connection.ops.quote_name(pk)}), 1) "
                        f"FROM {connection.ops.quote_name(table)}))", [table, pk])


_REQUIRED = object()

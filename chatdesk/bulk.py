"""Inserting many new rows of one model fast: `bulk_insert`.

On PostgreSQL the rows go through COPY, with their ids taken from the table's sequence first
(COPY returns nothing), and every column whose value is the same on all rows (most of them: a
campaign batch differs only in conversation and text) is prepared for the database once
instead of once per row. That is where `bulk_create` spends its time on a 100,000-row campaign.
Elsewhere (SQLite), `bulk_create`. Either way: no signals, as with `bulk_create`, and the
objects come back with their primary keys set, saved.

`bulk_insert_like`: many rows differing in a column or two (a campaign's new conversations:
only the customer), without building an instance for each.
"""

import functools
from typing import TypeVar

from django.db import connection, models

M = TypeVar("M", bound=models.Model)


def bulk_insert(model: type[M], objs: list[M]) -> list[M]:
    """Insert `objs` (new instances of `model`, no primary key set): on PostgreSQL one query
    for their ids and one COPY."""
    if not objs:
        return objs
    if connection.vendor != "postgresql":
        return model.objects.bulk_create(objs)
    meta = model._meta
    fields = [f for f in meta.concrete_fields if f is not meta.pk]
    columns = [_column(f, objs) for f in fields]
    columns_of = [f.column for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, len(objs)],
        )
        ids = [row[0] for row in cursor.fetchall()]
        names = ", ".join(connection.ops.quote_name(c) for c in [meta.pk.column, *columns_of])
        sql = f"COPY {connection.ops.quote_name(meta.db_table)} ({names}) FROM STDIN"
        with cursor.cursor.copy(sql) as copy:
            for i, pk in enumerate(ids):
                copy.write_row([pk, *(col if shared else col[i] for shared, col in columns)])
    for obj, pk in zip(objs, ids, strict=True):
        obj.pk = pk
        obj._state.adding, obj._state.db = False, connection.alias
    return objs


def _column(field, objs) -> tuple[bool, object]:
    """(True, the prepared value) when every object has the same value for `field`, else
    (False, the prepared value of each)."""
    name = field.attname
    first = getattr(objs[0], name)
    if all(getattr(obj, name) == first for obj in objs):
        prepared = _prepared(field, objs[0])
        value = getattr(objs[0], name)  # as pre_save left it (a default filled in)
        for obj in objs[1:]:
            setattr(obj, name, value)
        return True, prepared
    return False, [_prepared(field, obj) for obj in objs]


def _prepared(field, obj):
    # What SQLInsertCompiler does for each value: pre_save (defaults, auto_now, file fields),
    # then the database's form of it.
    return field.get_db_prep_save(field.pre_save(obj, True), connection)


def bulk_insert_like(
    model: type[models.Model], base: models.Model, varying: dict[str, list]
) -> None:
    """One row per position of `varying`'s lists (attname -> values), every other field as on
    `base` (prepared for the database once: defaults, auto_now); a row that would break a
    unique constraint is skipped. PostgreSQL only: one INSERT ... SELECT FROM unnest(...),
    no model instance per row."""
    meta = model._meta
    fields = [f for f in meta.concrete_fields if f is not meta.pk]
    same = [f for f in fields if f.attname not in varying]
    changing = [meta.get_field(name) for name in varying]
    names = ", ".join(connection.ops.quote_name(f.column) for f in [*same, *changing])
    constants = ", ".join(["%s"] * len(same))
    arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in changing)
    table = connection.ops.quote_name(meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({names}) SELECT {constants}{', ' if same else ''}* "  # noqa: S608
            f"FROM unnest({arrays}) ON CONFLICT DO NOTHING",
            [*(_prepared(f, base) for f in same), *(list(varying[f.attname]) for f in changing)],
        )


def insert_select(
    obj: models.Model, *, source: str, exprs: dict[str, tuple[str, list]] | None = None
) -> tuple[str, list]:
    """`INSERT INTO <obj's table> (...) SELECT ... FROM <source> RETURNING <pk> AS id`, for a
    data-modifying CTE that stores a row with others in one statement (PostgreSQL). Every
    column but an automatic primary key, as `obj` has it (prepared as an insert would:
    defaults, auto_now) and cast to its column's type (in a SELECT a bare literal is text),
    except `exprs`: attname -> (SQL, params), e.g. a column of `source`."""
    exprs = exprs or {}
    meta = obj._meta
    quote = connection.ops.quote_name
    names, values, params = [], [], []
    for field, column, cast in _insert_columns(type(obj)):
        if field.attname in exprs:
            sql, extra = exprs[field.attname]
            values.append(sql)
            params += extra
        elif field is meta.pk:
            continue
        else:
            values.append(cast)
            params.append(_prepared(field, obj))
        names.append(column)
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(names)}) "  # noqa: S608 (names from the model)
        f"SELECT {', '.join(values)} FROM {source} RETURNING {quote(meta.pk.column)} AS id"
    )
    return sql, params


@functools.cache
def _insert_columns(model: type[models.Model]) -> list[tuple]:
    quote = connection.ops.quote_name
    return [
        (f, quote(f.column), f"CAST(%s AS {f.cast_db_type(connection)})")
        for f in model._meta.concrete_fields
    ]

"""Keeping the reports' summary tables (`StepDay`, `PieceFact`) — and rebuilding them.

The production services call `run_started`, `run_done` and `piece_delivered` inside the
transaction of the event, so the summaries change with the history or not at all. Each call is
one or two statements: an INSERT … ON CONFLICT DO UPDATE that adds to the day's row (PostgreSQL
and SQLite both have it; concurrent events add, they never overwrite each other).

`rebuild()` computes the same rows from the history in a few set-based queries: after a bulk
load (the benchmark data), when the tables are introduced (migration), or to check them.
`rebuild(piece_ids=[…])` adds the contributions of pieces not counted yet.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from django.conf import settings
from django.db import connection as default_connection
from django.utils import timezone

DAY_SECONDS = 86400.0
STEPDAY = "reports_stepday"
PIECEFACT = "reports_piecefact"
COUNTERS = ["done_runs", "first_attempt_runs", "timed_runs", "work_seconds", "planned_days",
            "over_plan_runs", "queued_runs", "queue_seconds"]
MANUFACTURING = "manufacturing"


def local_day(at: dt.datetime) -> dt.date:
    """The house's calendar day of a moment (the reports' periods are in the house's days)."""
    return timezone.localtime(at, timezone.get_default_timezone()).date()


def _seconds(end: dt.datetime | None, start: dt.datetime | None) -> float | None:
    if end is None or start is None:
        return None
    return (end - start).total_seconds()


# ---------------------------------------------------------------------------------------------
# adding facts as they happen


def _upsert_sql(connection, select: str) -> str:
    """INSERT INTO the step table FROM `select` (day, step, workshop_id, *COUNTERS,
    queue_max_seconds), adding to the row already there."""
    q = connection.ops.quote_name
    t = q(STEPDAY)
    columns = ["day", "step", "workshop_id", *COUNTERS, "queue_max_seconds"]
    adds = ", ".join(f"{q(c)} = {t}.{q(c)} + excluded.{q(c)}" for c in COUNTERS)
    qmax = q("queue_max_seconds")
    # (SQLite reads "ON CONFLICT" after a SELECT without WHERE as a join: a SELECT here has one.)
    return (f"INSERT INTO {t} ({', '.join(q(c) for c in columns)}) {select} "
            f"ON CONFLICT ({q('day')}, {q('step')}, {q('workshop_id')}) DO UPDATE SET {adds}, "
            f"{qmax} = CASE WHEN excluded.{qmax} IS NULL THEN {t}.{qmax} "
            f"WHEN {t}.{qmax} IS NULL OR excluded.{qmax} > {t}.{qmax} THEN excluded.{qmax} "
            f"ELSE {t}.{qmax} END")


def _add_step_rows(rows: Iterable[Sequence], connection=None) -> None:
    """Add (day, step, workshop_id, *COUNTERS, queue_max_seconds) to the rows already there."""
    connection = connection or default_connection
    rows = list(rows)
    if not rows:
        return
    values = f"VALUES ({', '.join(['%s'] * (len(COUNTERS) + 4))})"
    with connection.cursor() as cursor:
        cursor.executemany(_upsert_sql(connection, values),
                           [(_day_param(r[0], connection), *r[1:]) for r in rows])


def _day_param(day: dt.date | str, connection) -> dt.date | str:
    if isinstance(day, str):
        day = dt.date.fromisoformat(day[:10])
    return day.isoformat() if connection.vendor == "sqlite" else day


def _step_row(day: dt.date, run, **counts) -> tuple:
    values = {c: 0 for c in COUNTERS}
    values.update(counts)
    return (day, run.step, run.workshop_id, *(values[c] for c in COUNTERS),
            counts.get("queue_max_seconds"))


def _moment_param(at: dt.datetime, connection):
    return connection.ops.adapt_datetimefield_value(at)


def run_started(run, at: dt.datetime) -> None:
    """A run started for the first time: how long the piece waited for it — since the step
    before it finished or, when it was sent, since it was received, whichever came last.

    One statement: the wait is computed where the moments are, as `rebuild` computes it.
    """
    if run.position <= 1 or run.workshop_id is None:
        return
    connection = default_connection
    greatest = "GREATEST" if connection.vendor == "postgresql" else "MAX"
    wait = _secs_sql("%s", f"{greatest}(COALESCE(m.prev, m.rcv), COALESCE(m.rcv, m.prev))",
                     connection)
    zeros = ", ".join(["0"] * (len(COUNTERS) - 2))
    select = f"""
        SELECT %s, %s, %s, {zeros}, 1, w.secs, w.secs
        FROM (SELECT {wait} AS secs
              FROM (SELECT (SELECT r.actual_finish FROM production_steprun r
                            WHERE r.piece_id = %s AND r.position < %s
                                  AND r.status <> 'skipped'
                            ORDER BY r.position DESC LIMIT 1) AS prev,
                           (SELECT MAX(e.occurred_at) FROM production_trackingevent e
                            WHERE e.step_run_id = %s AND e.kind = 'received') AS rcv) m) w
        WHERE w.secs IS NOT NULL"""
    with connection.cursor() as cursor:
        cursor.execute(_upsert_sql(connection, select), [
            _day_param(local_day(at), connection), run.step, run.workshop_id,
            _moment_param(at, connection), run.piece_id, run.position, run.pk])


def run_done(run) -> None:
    """A run finished done (`actual_finish` set): the day's counts, and for manufacturing the
    piece's launch → manufactured lead time. A run ended by a rework decision is not counted
    (docs/reports.md)."""
    if run.workshop_id is None or run.actual_finish is None or run.reworked:
        return
    counts = {"done_runs": 1, "first_attempt_runs": int(run.attempt == 1)}
    work = _seconds(run.actual_finish, run.actual_start)
    if work is not None:
        planned = float(run.planned_days or 0)
        counts.update(timed_runs=1, work_seconds=work, planned_days=planned,
                      over_plan_runs=int(work > planned * DAY_SECONDS))
    _add_step_rows([_step_row(local_day(run.actual_finish), run, **counts)])
    if run.step == MANUFACTURING:
        connection = default_connection
        _upsert_fact(run.piece_id, {
            "manufactured_on": ("%s", [_day_param(local_day(run.actual_finish), connection)]),
            "manufacturing_seconds": (_secs_sql("%s", "o.launched_at", connection),
                                      [_moment_param(run.actual_finish, connection)])})


def piece_delivered(piece) -> None:
    """The piece left the last step: its order → delivery lead time, on time, right first."""
    if piece.delivered_at is None:
        return
    connection = default_connection
    day = _day_param(local_day(piece.delivered_at), connection)
    yes, no = ("TRUE", "FALSE") if connection.vendor == "postgresql" else ("1", "0")
    _upsert_fact(piece.pk, {
        "delivered_on": ("%s", [day]),
        "lead_seconds": (_secs_sql("%s", "o.created_at", connection),
                         [_moment_param(piece.delivered_at, connection)]),
        "on_time": (f"CASE WHEN o.promised_date IS NULL THEN NULL "
                    f"WHEN %s <= o.promised_date THEN {yes} ELSE {no} END", [day]),
        "right_first_time": (yes if piece.rework_count == 0 else no, [])})


def _upsert_fact(piece_id: int, values: dict[str, tuple[str, list]]) -> None:
    """Write `values` (column: (SQL over the piece's order `o`, params)) into the piece's fact
    row, with what the piece is (client, channel, model, alloy) — one statement."""
    connection = default_connection
    q = connection.ops.quote_name
    base = ["piece_id", "client_id", "channel", "model_reference", "alloy_id"]
    columns = [*base, *values]
    sets = ", ".join(f"{q(c)} = excluded.{q(c)}" for c in values)
    exprs = ", ".join(sql for sql, _params in values.values())
    sql = (f"INSERT INTO {q(PIECEFACT)} ({', '.join(q(c) for c in columns)}) "
           f"SELECT p.id, o.client_id, o.channel, COALESCE(l.model_reference, ''), l.alloy_id, "
           f"{exprs} FROM production_piece p "
           f"JOIN orders_order o ON o.id = p.order_id "
           f"JOIN orders_orderline l ON l.id = p.line_id WHERE p.id = %s "
           f"ON CONFLICT ({q('piece_id')}) DO UPDATE SET {sets}")
    params = [p for _sql, ps in values.values() for p in ps]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, piece_id])


# ---------------------------------------------------------------------------------------------
# rebuilding from the history


def _in_pieces(column: str, piece_ids: Sequence[int] | None) -> tuple[str, list]:
    if piece_ids is None:
        return "", []
    return f" AND {column} IN ({', '.join(['%s'] * len(piece_ids))})", list(piece_ids)


def _day_sql(column: str, connection) -> tuple[str, list]:
    tzname = settings.TIME_ZONE if settings.USE_TZ else None
    sql, params = connection.ops.datetime_cast_date_sql(column, (), tzname)
    return sql, list(params)


def _secs_sql(end: str, start: str, connection) -> str:
    if connection.vendor == "postgresql":
        return f"EXTRACT(EPOCH FROM ({end} - {start}))"
    return f"((julianday({end}) - julianday({start})) * 86400.0)"


def _step_rows(connection, piece_ids: Sequence[int] | None) -> list[tuple]:
    """The StepDay rows the history gives (for all pieces, or for these)."""
    day_f, day_f_params = _day_sql("r.actual_finish", connection)
    work = _secs_sql("r.actual_finish", "r.actual_start", connection)
    where, where_params = _in_pieces("r.piece_id", piece_ids)
    done_sql = f"""
        SELECT {day_f}, r.step, r.workshop_id, COUNT(*),
               SUM(CASE WHEN r.attempt = 1 THEN 1 ELSE 0 END),
               SUM(CASE WHEN r.actual_start IS NOT NULL THEN 1 ELSE 0 END),
               SUM(CASE WHEN r.actual_start IS NOT NULL THEN {work} ELSE 0 END),
               SUM(CASE WHEN r.actual_start IS NOT NULL THEN r.planned_days ELSE 0 END),
               SUM(CASE WHEN r.actual_start IS NOT NULL AND {work} > r.planned_days * 86400.0
                        THEN 1 ELSE 0 END)
        FROM production_steprun r
        WHERE r.status = 'done' AND NOT r.reworked AND r.actual_finish IS NOT NULL{where}
        GROUP BY 1, r.step, r.workshop_id"""
    day_s, day_s_params = _day_sql("p.actual_start", connection)
    greatest = "GREATEST" if connection.vendor == "postgresql" else "MAX"
    wait = _secs_sql("p.actual_start", f"{greatest}(COALESCE(p.prev_finish, rcv.at), "
                     "COALESCE(rcv.at, p.prev_finish))", connection)
    where_e, where_e_params = _in_pieces("e.piece_id", piece_ids)
    queue_sql = f"""
        WITH prev AS (
            SELECT r.id, r.step, r.workshop_id, r.actual_start, r.position,
                   LAG(r.actual_finish) OVER (PARTITION BY r.piece_id ORDER BY r.position)
                       AS prev_finish
            FROM production_steprun r
            WHERE r.status <> 'skipped'{where}
        ), rcv AS (
            SELECT e.step_run_id, MAX(e.occurred_at) AS at FROM production_trackingevent e
            WHERE e.kind = 'received'{where_e} GROUP BY e.step_run_id
        ), waits AS (
            SELECT {day_s} AS day, p.step, p.workshop_id, {wait} AS secs
            FROM prev p LEFT JOIN rcv ON rcv.step_run_id = p.id
            WHERE p.actual_start IS NOT NULL AND p.position > 1
        )
        SELECT day, step, workshop_id, COUNT(*), SUM(secs), MAX(secs) FROM waits
        WHERE secs IS NOT NULL GROUP BY day, step, workshop_id"""
    merged: dict[tuple, list] = {}

    def row(day, step, workshop_id) -> list:
        key = (str(day)[:10], step, workshop_id)
        return merged.setdefault(key, [0] * len(COUNTERS) + [None])

    with connection.cursor() as cursor:
        cursor.execute(done_sql, [*day_f_params, *where_params])
        for day, step, ws, n, first, timed, work_s, planned, over in cursor.fetchall():
            acc = row(day, step, ws)
            acc[0:6] = [n, first or 0, timed or 0, float(work_s or 0), float(planned or 0),
                        over or 0]
        cursor.execute(queue_sql, [*where_params, *where_e_params, *day_s_params])
        for day, step, ws, n, total, mx in cursor.fetchall():
            acc = row(day, step, ws)
            acc[6], acc[7], acc[8] = n, float(total or 0), (None if mx is None else float(mx))
    return [(day, step, ws, *values) for (day, step, ws), values in sorted(merged.items())]


def _insert_facts(connection, piece_ids: Sequence[int] | None) -> None:
    q = connection.ops.quote_name
    where, where_params = _in_pieces("p.id", piece_ids)
    where_m, where_m_params = _in_pieces("r.piece_id", piece_ids)
    made_on, made_on_params = _day_sql("m.fin", connection)
    delivered_on, delivered_on_params = _day_sql("p.delivered_at", connection)
    delivered_on2, delivered_on2_params = _day_sql("p.delivered_at", connection)
    bool_true, bool_false = ("TRUE", "FALSE") if connection.vendor == "postgresql" else ("1", "0")
    columns = ["piece_id", "client_id", "channel", "model_reference", "alloy_id",
               "manufactured_on", "manufacturing_seconds", "delivered_on", "lead_seconds",
               "on_time", "right_first_time"]
    sql = f"""
        INSERT INTO {q(PIECEFACT)} ({', '.join(q(c) for c in columns)})
        SELECT p.id, o.client_id, o.channel, l.model_reference, l.alloy_id,
               CASE WHEN m.fin IS NULL THEN NULL ELSE {made_on} END,
               {_secs_sql("m.fin", "o.launched_at", connection)},
               CASE WHEN p.delivered_at IS NULL THEN NULL ELSE {delivered_on} END,
               {_secs_sql("p.delivered_at", "o.created_at", connection)},
               CASE WHEN p.delivered_at IS NULL OR o.promised_date IS NULL THEN NULL
                    WHEN {delivered_on2} <= o.promised_date THEN {bool_true}
                    ELSE {bool_false} END,
               CASE WHEN p.delivered_at IS NULL THEN NULL
                    WHEN p.rework_count = 0 THEN {bool_true} ELSE {bool_false} END
        FROM production_piece p
        JOIN orders_order o ON o.id = p.order_id
        JOIN orders_orderline l ON l.id = p.line_id
        LEFT JOIN (SELECT r.piece_id, MAX(r.actual_finish) AS fin FROM production_steprun r
                   WHERE r.step = 'manufacturing' AND r.status = 'done' AND NOT r.reworked
                         AND r.actual_finish IS NOT NULL{where_m}
                   GROUP BY r.piece_id) m ON m.piece_id = p.id
        WHERE (p.delivered_at IS NOT NULL OR m.fin IS NOT NULL){where}"""
    with connection.cursor() as cursor:
        cursor.execute(sql, [*made_on_params, *delivered_on_params, *delivered_on2_params,
                             *where_m_params, *where_params])


def rebuild(piece_ids: Sequence[int] | None = None, *, connection=None,
            chunk: int = 2000) -> dict:
    """Recompute the summaries from the history: all of them (`piece_ids=None`: the tables
    are emptied first), or add the pieces given (which must not have been counted yet)."""
    connection = connection or default_connection
    if piece_ids is None:
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {connection.ops.quote_name(STEPDAY)}")
            cursor.execute(f"DELETE FROM {connection.ops.quote_name(PIECEFACT)}")
        rows = _step_rows(connection, None)
        _add_step_rows(rows, connection)
        _insert_facts(connection, None)
        return {"step_days": len(rows)}
    ids = sorted(set(piece_ids))
    total = 0
    for i in range(0, len(ids), chunk):
        part = ids[i:i + chunk]
        rows = _step_rows(connection, part)
        _add_step_rows(rows, connection)
        _insert_facts(connection, part)
        total += len(rows)
    return {"step_days": total}

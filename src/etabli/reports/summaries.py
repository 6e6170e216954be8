"""Keeping the reports' summary tables (`StepDay`, `StepDayDetail`, `PieceFact`) — and
rebuilding them.

The production services call `run_started`, `run_done` and `piece_delivered` inside the
transaction of the event, so the summaries change with the history or not at all. Each call
writes with INSERT … SELECT … ON CONFLICT DO UPDATE, which adds to the day's rows (PostgreSQL
and SQLite both have it; concurrent events add, they never overwrite each other): one round
trip on PostgreSQL, one statement per table on SQLite.

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
STEPDAY_DETAIL = "reports_stepdaydetail"
PIECEFACT = "reports_piecefact"
COUNTERS = ["done_runs", "first_attempt_runs", "timed_runs", "work_seconds", "planned_days",
            "over_plan_runs", "queued_runs", "queue_seconds"]
KEY = ["day", "step", "workshop_id"]
DETAIL_KEY = [*KEY, "client_id", "channel", "model_reference", "alloy_key"]
# What a piece `p` is, from its order `o` and line `l` (they do not change once launched).
PIECE_JOINS_SQL = ("JOIN orders_order o ON o.id = p.order_id "
                   "JOIN orders_orderline l ON l.id = p.line_id")
PIECE_SOURCE_SQL = f"production_piece p {PIECE_JOINS_SQL}"
PIECE_DIMENSIONS_SQL = ("o.client_id, o.channel, COALESCE(l.model_reference, ''), "
                        "COALESCE(l.alloy_id, 0)")
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


def _upsert_sql(connection, select: str, *, detail: bool = False) -> str:
    """INSERT INTO the step table (`StepDay`; `StepDayDetail` with `detail`) FROM `select`
    (its key columns, *COUNTERS, queue_max_seconds), adding to the row already there."""
    q = connection.ops.quote_name
    t = q(STEPDAY_DETAIL if detail else STEPDAY)
    key = DETAIL_KEY if detail else KEY
    columns = [*key, *COUNTERS, "queue_max_seconds"]
    adds = ", ".join(f"{q(c)} = {t}.{q(c)} + excluded.{q(c)}" for c in COUNTERS)
    qmax = q("queue_max_seconds")
    # (SQLite reads "ON CONFLICT" after a SELECT without WHERE as a join: a SELECT here has one.)
    return (f"INSERT INTO {t} ({', '.join(q(c) for c in columns)}) {select} "
            f"ON CONFLICT ({', '.join(q(c) for c in key)}) DO UPDATE SET {adds}, "
            f"{qmax} = CASE WHEN excluded.{qmax} IS NULL THEN {t}.{qmax} "
            f"WHEN {t}.{qmax} IS NULL OR excluded.{qmax} > {t}.{qmax} THEN excluded.{qmax} "
            f"ELSE {t}.{qmax} END")


def _add_step_rows(rows: Iterable[Sequence], connection=None, *, detail: bool = False) -> None:
    """Add (*key, *COUNTERS, queue_max_seconds) rows to the rows already there."""
    connection = connection or default_connection
    rows = list(rows)
    if not rows:
        return
    key = DETAIL_KEY if detail else KEY
    values = f"VALUES ({', '.join(['%s'] * (len(key) + len(COUNTERS) + 1))})"
    with connection.cursor() as cursor:
        cursor.executemany(_upsert_sql(connection, values, detail=detail),
                           [(_day_param(r[0], connection), *r[1:]) for r in rows])


def _write(connection, statements: list[tuple[str, list]]) -> None:
    """Run these INSERT statements in one round trip on PostgreSQL (as data-modifying WITH
    clauses of the last one), one after the other on SQLite."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and len(statements) > 1:
            head = ", ".join(f"w{i} AS ({sql} RETURNING 1)"
                             for i, (sql, _params) in enumerate(statements[:-1]))
            cursor.execute(f"WITH {head} {statements[-1][0]}",
                           [p for _sql, params in statements for p in params])
            return
        for sql, params in statements:
            cursor.execute(sql, params)


def _day_param(day: dt.date | str, connection) -> dt.date | str:
    if isinstance(day, str):
        day = dt.date.fromisoformat(day[:10])
    return day.isoformat() if connection.vendor == "sqlite" else day


def _moment_param(at: dt.datetime, connection):
    return connection.ops.adapt_datetimefield_value(at)


def _step_statements(connection, run, day: dt.date, source: str, params: list,
                     counters: list[str]) -> list[tuple[str, list]]:
    """The two upserts of one run's counts on `day`: the day's row and the detailed row (what
    the piece is, read from its order and line). `counters` are SQL over `source`: a FROM
    clause over PIECE_SOURCE_SQL and its WHERE, which picks the run's piece (with `params`)."""
    day_p = _day_param(day, connection)
    totals = ", ".join(counters)
    return [
        (_upsert_sql(connection, f"SELECT %s, %s, %s, {totals} FROM {source}"),
         [day_p, run.step, run.workshop_id, *params]),
        (_upsert_sql(connection, f"SELECT %s, %s, %s, {PIECE_DIMENSIONS_SQL}, {totals} "
                                 f"FROM {source}", detail=True),
         [day_p, run.step, run.workshop_id, *params]),
    ]


def run_started(run, at: dt.datetime) -> None:
    """A run started for the first time: how long the piece waited for it — since the step
    before it finished or, when it was sent, since it was received, whichever came last.

    The wait is computed where the moments are, as `rebuild` computes it, by the statement
    that adds it (one round trip on PostgreSQL for both rows).
    """
    if run.position <= 1 or run.workshop_id is None:
        return
    connection = default_connection
    greatest = "GREATEST" if connection.vendor == "postgresql" else "MAX"
    wait = _secs_sql("%s", f"{greatest}(COALESCE(m.prev, m.rcv), COALESCE(m.rcv, m.prev))",
                     connection)
    source = f"""
        (SELECT {wait} AS secs
         FROM (SELECT (SELECT r.actual_finish FROM production_steprun r
                       WHERE r.piece_id = %s AND r.position < %s AND r.status <> 'skipped'
                       ORDER BY r.position DESC LIMIT 1) AS prev,
                      (SELECT MAX(e.occurred_at) FROM production_trackingevent e
                       WHERE e.step_run_id = %s AND e.kind = 'received') AS rcv) m) w
        CROSS JOIN {PIECE_SOURCE_SQL}
        WHERE w.secs IS NOT NULL AND p.id = %s"""
    counters = ["0"] * (len(COUNTERS) - 2) + ["1", "w.secs", "w.secs"]
    _write(connection, _step_statements(
        connection, run, local_day(at), source,
        [_moment_param(at, connection), run.piece_id, run.position, run.pk, run.piece_id],
        counters))


def run_done(run) -> None:
    """A run finished done (`actual_finish` set): the day's counts, and for manufacturing the
    piece's launch → manufactured lead time. A run ended by a rework decision is not counted
    (docs/reports.md)."""
    if run.workshop_id is None or run.actual_finish is None or run.reworked:
        return
    connection = default_connection
    counts = {"done_runs": 1, "first_attempt_runs": int(run.attempt == 1)}
    work = _seconds(run.actual_finish, run.actual_start)
    if work is not None:
        planned = float(run.planned_days or 0)
        counts.update(timed_runs=1, work_seconds=work, planned_days=planned,
                      over_plan_runs=int(work > planned * DAY_SECONDS))
    values = [counts.get(c, 0) for c in COUNTERS] + [None]
    statements = _step_statements(
        connection, run, local_day(run.actual_finish), f"{PIECE_SOURCE_SQL} WHERE p.id = %s",
        [*values, run.piece_id], ["%s"] * len(values))
    if run.step == MANUFACTURING:
        statements.append(_fact_statement(connection, run.piece_id, {
            "manufactured_on": ("%s", [_day_param(local_day(run.actual_finish), connection)]),
            "manufacturing_seconds": (_secs_sql("%s", "o.launched_at", connection),
                                      [_moment_param(run.actual_finish, connection)])}))
    _write(connection, statements)


def piece_delivered(piece) -> None:
    """The piece left the last step: its order → delivery lead time, on time, right first."""
    if piece.delivered_at is None:
        return
    connection = default_connection
    day = _day_param(local_day(piece.delivered_at), connection)
    yes, no = ("TRUE", "FALSE") if connection.vendor == "postgresql" else ("1", "0")
    _write(connection, [_fact_statement(connection, piece.pk, {
        "delivered_on": ("%s", [day]),
        "lead_seconds": (_secs_sql("%s", "o.created_at", connection),
                         [_moment_param(piece.delivered_at, connection)]),
        "on_time": (f"CASE WHEN o.promised_date IS NULL THEN NULL "
                    f"WHEN %s <= o.promised_date THEN {yes} ELSE {no} END", [day]),
        "right_first_time": (yes if piece.rework_count == 0 else no, [])})])


def _fact_statement(connection, piece_id: int,
                    values: dict[str, tuple[str, list]]) -> tuple[str, list]:
    """The upsert of `values` (column: (SQL over the piece's order `o`, params)) into the
    piece's fact row, with what the piece is (client, channel, model, alloy)."""
    q = connection.ops.quote_name
    base = ["piece_id", "client_id", "channel", "model_reference", "alloy_id"]
    columns = [*base, *values]
    sets = ", ".join(f"{q(c)} = excluded.{q(c)}" for c in values)
    exprs = ", ".join(sql for sql, _params in values.values())
    sql = (f"INSERT INTO {q(PIECEFACT)} ({', '.join(q(c) for c in columns)}) "
           f"SELECT p.id, o.client_id, o.channel, COALESCE(l.model_reference, ''), l.alloy_id, "
           f"{exprs} FROM {PIECE_SOURCE_SQL} WHERE p.id = %s "
           f"ON CONFLICT ({q('piece_id')}) DO UPDATE SET {sets}")
    return sql, [*(p for _sql, ps in values.values() for p in ps), piece_id]


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


def _step_rows(connection, piece_ids: Sequence[int] | None, *,
               detail: bool = False) -> list[tuple]:
    """The StepDay rows the history gives (for all pieces, or for these); with `detail`, the
    StepDayDetail rows (also per client, channel, model and alloy)."""
    day_f, day_f_params = _day_sql("r.actual_finish", connection)
    work = _secs_sql("r.actual_finish", "r.actual_start", connection)
    where, where_params = _in_pieces("r.piece_id", piece_ids)
    dims = f", {PIECE_DIMENSIONS_SQL}" if detail else ""
    keys = ", ".join(str(i) for i in range(1, len(DETAIL_KEY if detail else KEY) + 1))
    done_sql = f"""
        SELECT {day_f}, r.step, r.workshop_id{dims}, COUNT(*),
               SUM(CASE WHEN r.attempt = 1 THEN 1 ELSE 0 END),
               SUM(CASE WHEN r.actual_start IS NOT NULL THEN 1 ELSE 0 END),
               SUM(CASE WHEN r.actual_start IS NOT NULL THEN {work} ELSE 0 END),
               SUM(CASE WHEN r.actual_start IS NOT NULL THEN r.planned_days ELSE 0 END),
               SUM(CASE WHEN r.actual_start IS NOT NULL AND {work} > r.planned_days * 86400.0
                        THEN 1 ELSE 0 END)
        FROM production_steprun r
        {f"JOIN production_piece p ON p.id = r.piece_id {PIECE_JOINS_SQL}" if detail else ""}
        WHERE r.status = 'done' AND NOT r.reworked AND r.actual_finish IS NOT NULL{where}
        GROUP BY {keys}"""
    day_s, day_s_params = _day_sql("pv.actual_start", connection)
    greatest = "GREATEST" if connection.vendor == "postgresql" else "MAX"
    wait = _secs_sql("pv.actual_start", f"{greatest}(COALESCE(pv.prev_finish, rcv.at), "
                     "COALESCE(rcv.at, pv.prev_finish))", connection)
    where_e, where_e_params = _in_pieces("e.piece_id", piece_ids)
    queue_sql = f"""
        WITH prev AS (
            SELECT r.id, r.piece_id, r.step, r.workshop_id, r.actual_start, r.position,
                   LAG(r.actual_finish) OVER (PARTITION BY r.piece_id ORDER BY r.position)
                       AS prev_finish
            FROM production_steprun r
            WHERE r.status <> 'skipped'{where}
        ), rcv AS (
            SELECT e.step_run_id, MAX(e.occurred_at) AS at FROM production_trackingevent e
            WHERE e.kind = 'received'{where_e} GROUP BY e.step_run_id
        )
        SELECT {day_s}, pv.step, pv.workshop_id{dims}, COUNT(*), SUM({wait}), MAX({wait})
        FROM prev pv LEFT JOIN rcv ON rcv.step_run_id = pv.id
        {f"JOIN production_piece p ON p.id = pv.piece_id {PIECE_JOINS_SQL}" if detail else ""}
        WHERE pv.actual_start IS NOT NULL AND pv.position > 1 AND {wait} IS NOT NULL
        GROUP BY {keys}"""
    width = len(DETAIL_KEY if detail else KEY)
    merged: dict[tuple, list] = {}

    def row(key: tuple) -> list:
        key = (str(key[0])[:10], *key[1:])
        return merged.setdefault(key, [0] * len(COUNTERS) + [None])

    with connection.cursor() as cursor:
        cursor.execute(done_sql, [*day_f_params, *where_params])
        for found in cursor.fetchall():
            n, first, timed, work_s, planned, over = found[width:]
            row(found[:width])[0:6] = [n, first or 0, timed or 0, float(work_s or 0),
                                       float(planned or 0), over or 0]
        cursor.execute(queue_sql, [*where_params, *where_e_params, *day_s_params])
        for found in cursor.fetchall():
            n, total, mx = found[width:]
            acc = row(found[:width])
            acc[6], acc[7], acc[8] = n, float(total or 0), (None if mx is None else float(mx))
    return [(*key, *values) for key, values in sorted(merged.items())]


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


def rebuild(piece_ids: Sequence[int] | None = None, *, connection=None, chunk: int = 2000,
            detail: bool = True) -> dict:
    """Recompute the summaries from the history: all of them (`piece_ids=None`: the tables
    are emptied first), or add the pieces given (which must not have been counted yet).
    `detail=False` leaves `StepDayDetail` alone (the migration that filled the others ran
    before it existed)."""
    connection = connection or default_connection
    q = connection.ops.quote_name
    if piece_ids is None:
        with connection.cursor() as cursor:
            for table in (STEPDAY, PIECEFACT, *([STEPDAY_DETAIL] if detail else [])):
                cursor.execute(f"DELETE FROM {q(table)}")
        parts: list[Sequence[int] | None] = [None]
    else:
        ids = sorted(set(piece_ids))
        parts = [ids[i:i + chunk] for i in range(0, len(ids), chunk)]
    total = detailed = 0
    for part in parts:
        rows = _step_rows(connection, part)
        _add_step_rows(rows, connection)
        total += len(rows)
        if detail:
            rows = _step_rows(connection, part, detail=True)
            _add_step_rows(rows, connection, detail=True)
            detailed += len(rows)
        _insert_facts(connection, part)
    return {"step_days": total, "step_day_details": detailed}

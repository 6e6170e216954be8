"""`etabli bench run`: each figure, its target, and the same aggregate in hand-written SQL.

Targets are those of issue 6, for PostgreSQL at 1M pieces on a 2-core machine; the figures are
printed for whatever database `ETABLI_DATABASE_URL` points at, whatever its size.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone

FIGURES = ["dashboard", "board", "late", "kpis", "kpis_filtered", "event_api", "detection"]
TARGET_MS = {"dashboard": 300, "board": 300, "late": 300, "kpis": 2000, "kpis_filtered": 2000,
             "event_api": 20, "detection": 5000}


class BenchError(Exception):
    pass


@dataclass
class Figure:
    name: str
    label: str
    ms: float | None
    target_ms: float | None = None
    sql_ms: float | None = None
    extra: str = ""
    skipped: str = ""

    def line(self) -> str:
        if self.skipped:
            return f"{self.label:<34} not available: {self.skipped}"
        parts = [f"{self.label:<34} {self.ms:9.1f} ms"]
        if self.target_ms is not None:
            verdict = "meets" if self.ms < self.target_ms else "MISSES"
            parts.append(f"target < {self.target_ms:g} ms [{verdict}]")
        if self.sql_ms is not None:
            ratio = self.ms / self.sql_ms if self.sql_ms > 0 else float("inf")
            parts.append(f"SQL {self.sql_ms:.1f} ms, app/SQL {ratio:.1f}x")
        if self.extra:
            parts.append(self.extra)
        return "  ".join(parts)


def _median_ms(fn: Callable[[], object], repeat: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def _sql(query: str, params=()) -> list:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def _manager():
    from etabli.accounts.models import Role, User

    from .seed import MANAGER_USERNAME

    user = User.objects.filter(username=MANAGER_USERNAME).first() or \
        User.objects.filter(role=Role.PRODUCTION_MANAGER, is_active=True).order_by("pk").first()
    if user is None:
        raise BenchError("No production manager: run 'etabli bench seed --pieces N' first.")
    return user


def _client(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


def _get(client, path: str, **headers) -> None:
    response = client.get(path, **headers)
    if response.status_code != 200:
        raise BenchError(f"GET {path} answered {response.status_code}")


def _today_sql() -> dict:
    today = timezone.localdate()
    return {"today": today.isoformat(), "risk": (today + dt.timedelta(days=3)).isoformat(),
            "week": (today + dt.timedelta(days=6)).isoformat()}


ACTIVE = "('ready', 'in_transit', 'received', 'in_progress', 'on_hold')"


def dashboard_sql() -> None:
    """What the dashboard shows, by hand: counts per step × workshop, first pieces per cell,
    holds, due this week, latest events."""
    d = _today_sql()
    _sql(f"""SELECT current_step, current_workshop_id, COUNT(*),
               SUM(CASE WHEN current_due < %s THEN 1 ELSE 0 END),
               SUM(CASE WHEN current_due BETWEEN %s AND %s THEN 1 ELSE 0 END),
               SUM(CASE WHEN status = 'on_hold' THEN 1 ELSE 0 END),
               SUM(CASE WHEN current_due BETWEEN %s AND %s THEN 1 ELSE 0 END)
             FROM production_piece WHERE status IN {ACTIVE}
             GROUP BY current_step, current_workshop_id""",
         [d["today"], d["today"], d["risk"], d["today"], d["week"]])
    if connection.vendor == "postgresql":  # each cell's first pieces: a short index scan
        _sql(f"""SELECT x.id, x.serial, c.current_step, c.current_workshop_id, x.current_due
                 FROM (SELECT DISTINCT current_step, current_workshop_id FROM production_piece
                       WHERE status IN {ACTIVE}) c
                 CROSS JOIN LATERAL (
                   SELECT p.id, p.serial, p.current_due FROM production_piece p
                   WHERE p.status IN {ACTIVE} AND p.current_step = c.current_step
                     AND p.current_workshop_id IS NOT DISTINCT FROM c.current_workshop_id
                   ORDER BY p.current_due, p.serial LIMIT 8) x""")
    else:
        _sql(f"""SELECT id, serial, current_step, current_workshop_id, current_due FROM (
                   SELECT p.*, ROW_NUMBER() OVER (PARTITION BY current_step, current_workshop_id
                                                  ORDER BY current_due, serial) AS rk
                   FROM production_piece p WHERE status IN {ACTIVE}) x
                 WHERE rk <= 8 ORDER BY current_due, serial LIMIT 300""")
    _sql("""SELECT id, serial FROM production_piece WHERE status = 'on_hold'
            ORDER BY current_due LIMIT 15""")
    _sql(f"""SELECT id, serial FROM production_piece WHERE status IN {ACTIVE}
             AND current_due BETWEEN %s AND %s ORDER BY current_due, serial LIMIT 15""",
         [d["today"], d["week"]])
    _sql("""SELECT e.id, e.kind, e.occurred_at, p.serial FROM production_trackingevent e
            JOIN production_piece p ON p.id = e.piece_id
            ORDER BY e.occurred_at DESC, e.id DESC LIMIT 20""")


def late_sql() -> None:
    d = _today_sql()
    _sql(f"""SELECT COUNT(*) FROM production_piece
             WHERE current_due < %s AND status IN {ACTIVE}""", [d["today"]])
    _sql(f"""SELECT p.id, p.serial, p.current_due, o.reference, c.name, w.name
             FROM production_piece p JOIN orders_order o ON o.id = p.order_id
             JOIN clients_client c ON c.id = o.client_id
             LEFT JOIN workshops_workshop w ON w.id = p.current_workshop_id
             WHERE p.current_due < %s AND p.status IN {ACTIVE}
             ORDER BY p.current_due, p.serial, p.id LIMIT 50""", [d["today"]])


def kpis_history_sql(start: dt.date, end: dt.date) -> None:
    """The year's main KPIs by hand from the raw history (what the report would cost without
    its summary tables): lead times, on time, right first time, time per step and workshop,
    work in progress."""
    pg = connection.vendor == "postgresql"
    days = ("EXTRACT(EPOCH FROM ({a} - {b})) / 86400" if pg
            else "(julianday({a}) - julianday({b}))")
    lo = start.isoformat()
    hi = (end + dt.timedelta(days=1)).isoformat()
    _sql(f"""SELECT COUNT(*), AVG({days.format(a='p.delivered_at', b='o.created_at')}),
               SUM(CASE WHEN p.rework_count = 0 THEN 1 ELSE 0 END),
               SUM(CASE WHEN {'CAST(p.delivered_at AS date)' if pg else 'date(p.delivered_at)'}
                        <= o.promised_date THEN 1 ELSE 0 END)
             FROM production_piece p JOIN orders_order o ON o.id = p.order_id
             WHERE p.delivered_at >= %s AND p.delivered_at < %s""", [lo, hi])
    _sql(f"""SELECT r.step, r.workshop_id, COUNT(*),
               AVG({days.format(a='r.actual_finish', b='r.actual_start')}),
               SUM(CASE WHEN r.actual_finish > r.planned_due THEN 1 ELSE 0 END)
             FROM production_steprun r
             WHERE r.actual_finish >= %s AND r.actual_finish < %s
             GROUP BY r.step, r.workshop_id""", [lo, hi])
    _sql(f"""SELECT current_step, current_workshop_id, COUNT(*) FROM production_piece
             WHERE status IN {ACTIVE} GROUP BY current_step, current_workshop_id""")


def kpis_sql(start: dt.date, end: dt.date) -> None:
    """The same aggregates as the report, by hand, over the same tables: the summaries (per
    day × step × workshop; per piece) for the period, and the open runs for the work in
    progress."""
    pg = connection.vendor == "postgresql"
    lo, hi = start.isoformat(), end.isoformat()
    _sql("""SELECT s.step, s.workshop_id, w.name, SUM(s.done_runs), SUM(s.first_attempt_runs),
               SUM(s.timed_runs), SUM(s.work_seconds), SUM(s.planned_days),
               SUM(s.over_plan_runs), SUM(s.queued_runs), SUM(s.queue_seconds),
               MAX(s.queue_max_seconds)
             FROM reports_stepday s JOIN workshops_workshop w ON w.id = s.workshop_id
             WHERE s.day >= %s AND s.day <= %s GROUP BY s.step, s.workshop_id, w.name""",
         [lo, hi])
    _sql("""SELECT day, SUM(done_runs) FROM reports_stepday
             WHERE day >= %s AND day <= %s AND done_runs > 0 GROUP BY day""", [lo, hi])
    if pg:
        _sql("""SELECT COUNT(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY lead_seconds),
                   percentile_cont(0.9) WITHIN GROUP (ORDER BY lead_seconds), AVG(lead_seconds),
                   COUNT(*) FILTER (WHERE right_first_time),
                   COUNT(*) FILTER (WHERE on_time IS NOT NULL), COUNT(*) FILTER (WHERE on_time)
                 FROM reports_piecefact WHERE delivered_on >= %s AND delivered_on <= %s""",
             [lo, hi])
        _sql("""SELECT DATE_TRUNC('week', delivered_on), COUNT(*),
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY lead_seconds)
                 FROM reports_piecefact WHERE delivered_on >= %s AND delivered_on <= %s
                 GROUP BY 1 ORDER BY 1""", [lo, hi])
        _sql("""SELECT COUNT(*),
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY manufacturing_seconds),
                   percentile_cont(0.9) WITHIN GROUP (ORDER BY manufacturing_seconds),
                   AVG(manufacturing_seconds)
                 FROM reports_piecefact WHERE manufactured_on >= %s AND manufactured_on <= %s
                   AND manufacturing_seconds IS NOT NULL""", [lo, hi])
    else:
        _sql("""SELECT lead_seconds, right_first_time, on_time, delivered_on
                 FROM reports_piecefact WHERE delivered_on >= %s AND delivered_on <= %s""",
             [lo, hi])
        _sql("""SELECT manufacturing_seconds FROM reports_piecefact
                 WHERE manufactured_on >= %s AND manufactured_on <= %s
                   AND manufacturing_seconds IS NOT NULL""", [lo, hi])
    _sql(f"""SELECT current_step, status, COUNT(*) FROM production_piece
             WHERE status IN {ACTIVE} GROUP BY current_step, status""")


def detection_sql() -> None:
    """The rules' questions by hand: steps overdue, orders at risk, slips not received."""
    d = _today_sql()
    _sql(f"""SELECT id, current_run_id, current_workshop_id FROM production_piece
             WHERE status IN {ACTIVE} AND current_due < %s""", [d["today"]])
    _sql(f"""SELECT o.id, MAX(p.current_due) FROM orders_order o
             JOIN production_piece p ON p.order_id = o.id
             WHERE o.status = 'launched' AND p.status IN {ACTIVE}
             GROUP BY o.id, o.promised_date HAVING MAX(p.current_due) > o.promised_date""")
    two_days = (timezone.now() - dt.timedelta(days=2)).isoformat()
    _sql("""SELECT id FROM production_transfer WHERE status IN ('sent', 'partial')
            AND sent_at < %s""", [two_days])


# ---------------------------------------------------------------------------------------------
# the figures


def fig_dashboard(repeat: int) -> Figure:
    client = _client(_manager())
    ms = _median_ms(lambda: _get(client, "/dashboard/"), repeat)
    sql = _median_ms(dashboard_sql, repeat)
    return Figure("dashboard", "dashboard page (/dashboard/)", ms, TARGET_MS["dashboard"], sql)


def fig_board(repeat: int) -> Figure:
    client = _client(_manager())
    ms = _median_ms(lambda: _get(client, "/dashboard/board/", HTTP_HX_REQUEST="true"), repeat)
    sql = _median_ms(dashboard_sql, repeat)
    return Figure("board", "dashboard board (htmx poll)", ms, TARGET_MS["board"], sql)


def fig_late(repeat: int) -> Figure:
    client = _client(_manager())
    ms = _median_ms(lambda: _get(client, "/pieces/?late=true"), repeat)
    sql = _median_ms(late_sql, repeat)
    return Figure("late", "late list (/pieces/?late=true)", ms, TARGET_MS["late"], sql)


def fig_kpis(repeat: int) -> Figure:
    try:
        from etabli.reports.selectors import ReportFilters, kpis
    except ImportError as exc:
        return Figure("kpis", "KPI report, one year", None, skipped=f"reports ({exc})")
    user = _manager()
    end = timezone.localdate()
    start = end - dt.timedelta(days=364)
    filters = ReportFilters(start=start, end=end)
    ms = _median_ms(lambda: kpis(user, filters), max(1, min(repeat, 3)))
    sql = _median_ms(lambda: kpis_sql(start, end), max(1, min(repeat, 3)))
    history = _median_ms(lambda: kpis_history_sql(start, end), 1, warmup=0)
    return Figure("kpis", "KPI report, one year", ms, TARGET_MS["kpis"], sql,
                  extra=f"(the main aggregates from the raw history: {history:.0f} ms)")


def _busiest_filters() -> dict[str, dict]:
    """One filter of each kind a report offers, on the value with the most pieces (the
    slowest to answer): the busiest outside workshop, setting, the biggest client, the
    biggest channel, the commonest model and alloy."""
    from django.db.models import Count

    from etabli.orders.models import Order, OrderLine
    from etabli.production.models import StepRun
    from etabli.workshops.models import StepKind, WorkshopKind

    def top(qs, field):
        row = (qs.exclude(**{f"{field}__isnull": True}).values(field)
               .annotate(n=Count("pk")).order_by("-n").first())
        return None if row is None else row[field]

    found = {
        "workshop": {"workshop_id": top(StepRun.objects.exclude(
            workshop__kind=WorkshopKind.HOUSE), "workshop_id")},
        "step": {"step": StepKind.SETTING},
        "client": {"client_id": top(Order.objects.all(), "client_id")},
        "channel": {"channel": top(Order.objects.all(), "channel")},
        "model": {"model": top(OrderLine.objects.exclude(model_reference=""),
                               "model_reference")},
        "alloy": {"alloy_id": top(OrderLine.objects.all(), "alloy_id")},
    }
    return {k: v for k, v in found.items() if all(x is not None for x in v.values())}


def fig_kpis_filtered(repeat: int) -> Figure:
    """The one-year KPI report filtered on each dimension in turn; the figure is the
    slowest (each filter's time is listed)."""
    try:
        from etabli.reports.selectors import ReportFilters, kpis
    except ImportError as exc:
        return Figure("kpis_filtered", "KPI report, one year, filtered", None,
                      skipped=f"reports ({exc})")
    user = _manager()
    end = timezone.localdate()
    start = end - dt.timedelta(days=364)
    times = {}
    for name, kw in _busiest_filters().items():
        filters = ReportFilters(start=start, end=end, **kw)
        times[name] = _median_ms(lambda f=filters: kpis(user, f), max(1, min(repeat, 3)))
    if not times:
        return Figure("kpis_filtered", "KPI report, one year, filtered", None,
                      skipped="no data to filter on")
    slowest = max(times, key=times.get)
    listed = ", ".join(f"{k} {v:.0f} ms" for k, v in times.items())
    return Figure("kpis_filtered", "KPI report, one year, filtered (slowest)", times[slowest],
                  TARGET_MS["kpis_filtered"], extra=f"(by {listed})")


def fig_detection(repeat: int) -> Figure:
    try:
        from etabli.alerts.detection import run_detection
    except ImportError as exc:
        return Figure("detection", "alert detection pass", None, skipped=f"alerts ({exc})")
    t = time.perf_counter()
    first = run_detection()
    first_ms = (time.perf_counter() - t) * 1000
    ms = _median_ms(run_detection, max(1, min(repeat, 3)), warmup=0)
    sql = _median_ms(detection_sql, max(1, min(repeat, 3)))
    summary = ", ".join(f"{k}={v}" for k, v in (first or {}).items()
                        if isinstance(v, (int, float, str)))[:120]
    return Figure("detection", "alert detection pass (steady)", ms, TARGET_MS["detection"], sql,
                  extra=f"first pass {first_ms:.0f} ms ({summary})")


# ---------------------------------------------------------------------------------------------
# the event API under a real server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVER_CODE = """
import os, sys, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "etabli.settings")
django.setup()
from etabli.core.server import serve
serve(host="127.0.0.1", port=int(sys.argv[1]), workers=int(sys.argv[2]),
      threads=int(sys.argv[3]))
"""


def database_url() -> str:
    """The database this process uses, as a URL (the server must use the same one)."""
    from urllib.parse import quote

    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = quote(db.get("USER") or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgresql://{auth}@{host}:{port}/{db['NAME']}"


class Server:
    """A gunicorn server running Établi on a free port, for as long as the `with` lasts."""

    def __init__(self, workers: int = 2, threads: int = 8) -> None:
        self.port = _free_port()
        self.workers, self.threads = workers, threads
        self.log = tempfile.NamedTemporaryFile(prefix="etabli-bench-", suffix=".log",
                                               delete=False)
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        try:
            return self._start()
        except BaseException:
            self.__exit__()
            raise

    def _start(self) -> Server:
        # The web server alone: the periodic work (alert detection, e-mails) is measured by
        # its own figure, and a worker's pass would land at random in this one.
        env = dict(os.environ, ETABLI_SECURE_COOKIES="false", ETABLI_SERVE_WORKER="0",
                   ETABLI_DATABASE_URL=database_url())
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER_CODE, str(self.port), str(self.workers),
             str(self.threads)], stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"The server stopped at start; see {self.log.name}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/api/v1/pieces?limit=1")
                conn.getresponse().read()
                conn.close()
                return self
            except OSError:
                time.sleep(0.3)
        raise BenchError(f"The server did not answer within 180 s; see {self.log.name}")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def _event_round(port: int, raw: str, pieces: list[int], clients: int,
                 think_s: float) -> dict:
    """Each of `clients` threads takes its share of `pieces` and records receive, start and
    complete on each, one request at a time; between two requests it waits a random time
    (exponential, mean `think_s`; 0: none — the server is saturated)."""
    import random

    shares = [pieces[i::clients] for i in range(clients)]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    errors: list[str] = []

    def client_thread(index: int, mine: list[int]) -> None:
        rng = random.Random(index)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Authorization": f"Bearer {raw}", "Content-Type": "application/json"}
        local, codes = [], {}
        if think_s:
            time.sleep(rng.uniform(0, think_s))  # the clients do not all start at once
        for piece_id in mine:
            for action in ("receive", "start", "complete"):
                body = json.dumps({"comment": ""})
                # A connection left idle longer than the server's keep-alive is closed by the
                # server; like a phone's HTTP client, send again on a new one (the request was
                # not read, so it is not recorded twice).
                for attempt in (1, 2):
                    t = time.perf_counter()
                    try:
                        conn.request("POST", f"/api/v1/pieces/{piece_id}/{action}", body,
                                     headers)
                        response = conn.getresponse()
                        payload = response.read()
                        break
                    except (OSError, http.client.HTTPException) as exc:
                        conn.close()
                        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                        if attempt == 2 or not isinstance(exc, (
                                BrokenPipeError, ConnectionResetError,
                                http.client.RemoteDisconnected)):
                            errors.append(str(exc))
                            response = None
                            break
                if response is None:
                    continue
                local.append((time.perf_counter() - t) * 1000)
                codes[response.status] = codes.get(response.status, 0) + 1
                if response.status >= 400 and len(errors) < 3:
                    errors.append(f"{action} {response.status} {payload[:200]!r}")
                if think_s:
                    time.sleep(rng.expovariate(1 / think_s))
        conn.close()
        with lock:
            latencies.extend(local)
            for k, v in codes.items():
                statuses[k] = statuses.get(k, 0) + v

    started = time.perf_counter()
    threads = [threading.Thread(target=client_thread, args=(i, share))
               for i, share in enumerate(shares)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    if not latencies:
        raise BenchError("No API request succeeded: " + "; ".join(errors[:3]))
    latencies.sort()
    p95 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))]
    extra = (f"p95 {p95:.1f} ms, {len(latencies)} requests, {len(latencies) / wall:.0f} req/s, "
             f"status {dict(sorted(statuses.items()))}")
    if errors:
        extra += f", e.g. {errors[0]}"
    return {"median": statistics.median(latencies), "extra": extra}


def fig_event_api(requests: int, clients: int, think_s: float = 1.0) -> list[Figure]:
    """Recording tracking events through the API, against a real server: first as 16 people
    scanning at their benches would (each client pauses between scans: `think_s` on average —
    far busier than a real bench), then with every client sending as fast as the server
    answers (the server's capacity; the latency is then mostly queueing)."""
    from django.db import transaction

    from etabli.accounts.services import token_create

    from .seed import api_pieces

    user = _manager()
    with transaction.atomic():
        _token, raw = token_create(actor=user, user=user, name="bench")
    n_pieces = max(clients, -(-requests // 3))
    pieces = api_pieces(2 * n_pieces)
    paced_pieces, saturated_pieces = pieces[:n_pieces], pieces[n_pieces:]
    connection.close()  # the server's workers open their own
    with Server() as server:
        # Warm the workers up (imports, first connections) before measuring.
        warm = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        for _ in range(8):
            warm.request("GET", "/api/v1/pieces?limit=1",
                         headers={"Authorization": f"Bearer {raw}"})
            warm.getresponse().read()
        warm.close()
        paced = _event_round(server.port, raw, paced_pieces, clients, think_s)
        saturated = _event_round(server.port, raw, saturated_pieces, clients, 0.0)
    return [
        Figure("event_api", f"tracking event via API, {clients} clients scanning", paced["median"],
               TARGET_MS["event_api"],
               extra=f"(each pauses {think_s:g} s on average between scans) {paced['extra']}"),
        Figure("event_api", f"  same, {clients} clients at full speed", saturated["median"],
               extra=f"(the server's capacity; median is queueing) {saturated['extra']}"),
    ]


# ---------------------------------------------------------------------------------------------


def header_lines() -> list[str]:
    from etabli.production.models import Piece, TrackingEvent

    settings_db = connection.settings_dict
    name = settings_db.get("NAME")
    pieces = Piece.objects.count()
    events = TrackingEvent.objects.count()
    active = Piece.objects.exclude(status="delivered").count()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return [f"Database: {connection.vendor} {name}",
            f"Machine: {os.cpu_count()} cores, load average {load} (1, 5, 15 min)",
            f"Data: {pieces} pieces ({active} active), {events} tracking events",
            "Targets are for PostgreSQL at 1M pieces on 2 cores; figures are medians."]


def run(*, only: list[str] | None = None, repeat: int = 5, requests: int = 400,
        clients: int = 16, think_s: float = 1.0,
        write: Callable[[str], None] = print) -> list[Figure]:
    wanted = only or FIGURES
    for line in header_lines():
        write(line)
    out = []
    for name in FIGURES:
        if name not in wanted:
            continue
        if name == "event_api":
            figs = fig_event_api(requests, clients, think_s)
        else:
            figs = [{"dashboard": fig_dashboard, "board": fig_board, "late": fig_late,
                     "kpis": fig_kpis, "kpis_filtered": fig_kpis_filtered,
                     "detection": fig_detection}[name](repeat)]
        for fig in figs:
            write(fig.line())
            out.append(fig)
    return out

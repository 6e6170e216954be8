"""The `etabli` management commands: demo, createuser, token, serve, start."""

from __future__ import annotations

import io
from collections import Counter

import pytest
from django.contrib.auth.hashers import check_password
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from etabli.accounts.models import ApiToken, Role, User
from etabli.accounts.services import token_authenticate, user_create
from etabli.clients.models import Client
from etabli.core import server
from etabli.core.demo import DEMO_PASSWORD, DEMO_USERS, reset_domain_data
from etabli.core.management.commands import demo as demo_command
from etabli.core.models import AuditEntry
from etabli.materials.models import Alloy
from etabli.orders.models import ChangeRequest, Order, OrderStatus
from etabli.production.models import (
    EventKind,
    Piece,
    PieceStatus,
    RouteTemplate,
    TrackingEvent,
)
from etabli.production.state import derive_piece_state
from etabli.workshops.models import Operation, StepKind, Workshop, WorkshopKind
from tests.factories import make_client, make_user, make_workshop

pytestmark = pytest.mark.django_db


def run(*args, **kwargs) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **kwargs)
    return out.getvalue()


# ---------------------------------------------------------------------------------------------
# demo


class _Summary:
    def lines(self) -> list[str]:
        return ["Demo house built (stub)"]


def test_demo_builds_a_believable_house_once_and_empties_it_on_reset(monkeypatch):
    out = run("demo", "--seed", "7")
    assert "Demo house built" in out
    assert "client.lemaire" in out and DEMO_PASSWORD in out

    assert Workshop.objects.count() >= 8
    assert Workshop.objects.filter(kind=WorkshopKind.HOUSE).count() == 1
    skills = set(Workshop.objects.values_list("skills__code", flat=True))
    assert {"prototype_casting", "casting", "assembly", "setting", "polishing", "plating",
            "engraving_hallmarking"} <= skills
    assert 15 <= Client.objects.count() <= 20
    assert set(Client.objects.values_list("channel", flat=True)) == {
        "direct", "wholesale", "retail", "ecommerce"}
    assert set(Client.objects.values_list("kind", flat=True)) == {"b2b", "b2c"}
    assert 70 <= Order.objects.count() <= 90
    assert RouteTemplate.objects.count() >= 3

    for demo_user in DEMO_USERS:
        user = User.objects.get(username=demo_user.username)
        assert user.role == demo_user.role
        assert check_password(DEMO_PASSWORD, user.password)
    assert set(User.objects.values_list("role", flat=True)) == set(Role.values)

    # Every step has work: drafts being qualified (order receipt), pieces at each later step,
    # and delivered pieces; some held, reworked, late, and changes asked for.
    statuses = Counter(Order.objects.values_list("status", flat=True))
    assert statuses[OrderStatus.DRAFT] > 0 and statuses[OrderStatus.DELIVERED] > 0
    assert statuses[OrderStatus.LAUNCHED] > statuses[OrderStatus.DRAFT]
    active = Piece.objects.exclude(status=PieceStatus.DELIVERED)
    assert set(active.values_list("current_step", flat=True)) == set(StepKind.values) - {
        StepKind.ORDER_RECEIPT}
    assert Piece.objects.filter(status=PieceStatus.DELIVERED).exists()
    assert active.filter(status=PieceStatus.ON_HOLD).exists()
    assert TrackingEvent.objects.filter(kind=EventKind.REWORK).exists()
    assert Piece.objects.filter(rework_count__gt=0).exists()
    assert active.filter(current_due__lt=timezone.localdate()).exists()
    assert {"open", "assessed", "approved"} <= set(
        ChangeRequest.objects.values_list("status", flat=True))
    # Delivered orders went out on shipments with tracking numbers and were invoiced; most
    # receptions closed their order, one reservation was resolved and one is still open.
    from etabli.shipping.models import FollowUp, Invoice, Shipment

    assert Shipment.objects.filter(status="delivered").exclude(tracking_number="").exists()
    assert Invoice.objects.filter(status="issued").exists()
    assert statuses[OrderStatus.CLOSED] > statuses[OrderStatus.DELIVERED] > 0
    assert sorted(FollowUp.objects.values_list("status", flat=True)) == ["open", "resolved"]

    # Written through the services: the cached piece state is what the events say, and
    # nothing happened in the future.
    for piece in Piece.objects.all():
        derived = derive_piece_state(piece)
        assert (derived.status, derived.location_id, derived.transit_to_id,
                derived.current_run_id) == (piece.status, piece.location_id,
                                            piece.transit_to_id, piece.current_run_id)
    assert not TrackingEvent.objects.filter(occurred_at__gt=timezone.now()).exists()

    # Loaded once: a second run changes nothing.
    orders = Order.objects.count()
    assert run("demo").strip() == "Demo data already loaded"
    assert Order.objects.count() == orders

    # --reset empties the domain data before building again (stubbed: one build is enough).
    operations, alloys = Operation.objects.count(), Alloy.objects.count()

    def build_after_reset(seed, *, reset=False):
        assert reset
        reset_domain_data()
        return _Summary()

    monkeypatch.setattr(demo_command, "build_demo", build_after_reset)
    assert "stub" in run("demo", "--reset")
    assert not User.objects.exists() and not Client.objects.exists()
    assert not Order.objects.exists() and not Piece.objects.exists()
    assert not AuditEntry.objects.exists()
    assert list(Workshop.objects.values_list("kind", flat=True)) == [WorkshopKind.HOUSE]
    assert list(RouteTemplate.objects.values_list("code", flat=True)) == ["standard"]
    assert (Operation.objects.count(), Alloy.objects.count()) == (operations, alloys)


def test_demo_refuses_to_mix_with_existing_data():
    make_client("bijouterie-roux")
    with pytest.raises(CommandError, match="--reset"):
        run("demo")
    assert Order.objects.count() == 0


# ---------------------------------------------------------------------------------------------
# createuser


def test_createuser_creates_a_workshop_member_bound_to_workshops():
    make_workshop("caster", skills=["casting"])
    make_workshop("setter", skills=["setting"])
    out = run("createuser", "marco", "--role", "workshop", "--password", "long-enough-2026",
              "--email", "marco@example.com", "--workshop", "caster", "--workshop", "setter")
    assert "Created user 'marco'" in out
    user = User.objects.get(username="marco")
    assert user.role == Role.WORKSHOP and user.email == "marco@example.com"
    assert set(user.workshops.values_list("code", flat=True)) == {"caster", "setter"}
    assert user.check_password("long-enough-2026")


def test_createuser_binds_a_client_contact_and_makes_admins_staff():
    make_client("bijouterie-roux")
    run("createuser", "anne", "--role", "client", "--password", "long-enough-2026",
        "--client", "bijouterie-roux")
    assert User.objects.get(username="anne").client.code == "bijouterie-roux"
    run("createuser", "boss", "--role", "admin", "--password", "long-enough-2026")
    boss = User.objects.get(username="boss")
    assert boss.is_staff and boss.is_superuser


@pytest.mark.parametrize(("args", "message"), [
    (["--role", "jeweller", "--password", "long-enough-2026"], "Unknown role 'jeweller'"),
    (["--role", "workshop", "--password", "long-enough-2026", "--workshop", "nowhere"],
     "No workshop with code 'nowhere'"),
    (["--role", "workshop", "--password", "long-enough-2026"], "at least one workshop"),
    (["--role", "client", "--password", "long-enough-2026"], "needs a client"),
    (["--role", "sales", "--password", "short"], "too short"),
])
def test_createuser_refuses_bad_input_with_the_services_message(args, message):
    with pytest.raises(CommandError, match=message):
        run("createuser", "someone", *args)
    assert not User.objects.filter(username="someone").exists()


def test_createuser_refuses_a_taken_username():
    make_user(Role.SALES, username="ines")
    with pytest.raises(CommandError, match="already exists"):
        run("createuser", "INES", "--role", "sales", "--password", "long-enough-2026")


def test_createuser_needs_a_password_when_not_on_a_terminal(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(CommandError, match="--password is required when not on a terminal"):
        run("createuser", "someone", "--role", "sales")


def test_createuser_asks_twice_for_the_password_on_a_terminal(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Terminal())
    answers = iter(["long-enough-2026", "long-enough-2026", "long-enough-2026", "other-one"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    run("createuser", "someone", "--role", "sales")
    assert User.objects.get(username="someone").check_password("long-enough-2026")
    with pytest.raises(CommandError, match="differ"):
        run("createuser", "another", "--role", "sales")


def test_createuser_fails_with_a_one_line_reason_and_non_zero_exit(capsys, monkeypatch):
    from django.db import connections

    from etabli.cli import main

    # run_from_argv closes the connections when it ends: keep the test's transaction alive.
    monkeypatch.setattr(connections, "close_all", lambda: None)
    with pytest.raises(SystemExit) as exit_info:
        main(["etabli", "createuser", "someone", "--role", "jeweller", "--password", "x" * 12])
    assert exit_info.value.code != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("CommandError: Unknown role 'jeweller'") and "\n" not in err


# ---------------------------------------------------------------------------------------------
# token


def test_token_prints_a_key_that_authenticates_its_user():
    user = make_user(Role.WORKSHOP, username="bench1",
                     workshops=[make_workshop("bench", skills=["assembly"])])
    out = run("token", "bench1", "--name", "bench tablet")
    assert out.count("\n") == 1
    key = out.strip()
    assert token_authenticate(key) == user
    assert ApiToken.objects.get(user=user).name == "bench tablet"


def test_token_refuses_an_unknown_user():
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        run("token", "ghost")


# ---------------------------------------------------------------------------------------------
# serve and start


def test_gunicorn_is_configured_from_the_options():
    app = server.EtabliServer(server.gunicorn_options(host="::1", port=8123, workers=3,
                                                      threads=4))
    assert app.cfg.bind == ["[::1]:8123"]
    assert app.cfg.workers == 3 and app.cfg.threads == 4
    assert app.cfg.worker_class_str == "gthread"
    assert server.public_url("0.0.0.0", 80) == "http://localhost:80/"


def test_serve_prints_the_url_and_runs_gunicorn(monkeypatch):
    calls = []
    monkeypatch.setattr(server, "serve", lambda **kwargs: calls.append(kwargs))
    out = run("serve", "--host", "127.0.0.1", "--port", "8123", "--workers", "1",
              "--threads", "2", "--no-collectstatic")
    assert "http://127.0.0.1:8123/" in out
    assert calls == [{"host": "127.0.0.1", "port": 8123, "workers": 1, "threads": 2,
                      "timeout": 60}]
    with pytest.raises(CommandError, match="--port"):
        run("serve", "--port", "70000", "--no-collectstatic")


@pytest.fixture
def static_root(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path / "static"
    return settings.STATIC_ROOT


def test_start_loads_the_demo_only_on_the_first_run(monkeypatch, static_root):
    built = []

    def fake_build(seed, *, reset=False):
        built.append(seed)
        user_create(actor=None, username="admin", password=DEMO_PASSWORD, role=Role.ADMIN)
        return _Summary()

    monkeypatch.setattr(demo_command, "build_demo", fake_build)
    monkeypatch.setattr(server, "serve", lambda **kwargs: pytest.fail("must not serve"))
    out = run("start", "--no-serve", "--port", "8123", "--seed", "5")
    assert built == [5]
    assert "http://127.0.0.1:8123/" in out and "http://127.0.0.1:8123/api/v1/docs" in out
    assert f"admin            {DEMO_PASSWORD}  Administrator" in out
    assert (static_root / "admin").is_dir()

    out = run("start", "--no-serve")
    assert built == [5]  # users exist: no second demo
    assert "Demo log-ins" in out


def test_start_does_not_print_demo_log_ins_for_a_real_installation(monkeypatch, static_root):
    make_user(Role.ADMIN, username="admin")  # not the demo password
    out = run("start", "--no-serve")
    assert DEMO_PASSWORD not in out
    assert "createuser" in out

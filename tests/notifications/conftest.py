"""Real servers for the notification tests: an SMTP server (aiosmtpd) and an HTTP receiver
that checks webhook signatures, both on free ports of 127.0.0.1 and started per test."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from etabli.accounts.models import User
from etabli.production.models import Piece


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Collect:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.envelopes.append(envelope)
        self.messages.append(email.message_from_bytes(envelope.content,
                                                      policy=email.policy.default))
        return "250 Message accepted for delivery"


@dataclass
class Smtp:
    host: str
    port: int
    handler: _Collect

    @property
    def messages(self):
        return self.handler.messages

    def to(self, address: str) -> list:
        return [m for m in self.messages if address in m["To"]]


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server; Django's SMTP backend is pointed at it."""
    handler = _Collect()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    try:
        yield Smtp("127.0.0.1", port, handler)
    finally:
        controller.stop()


@pytest.fixture
def no_smtp_server(settings):
    """Django's SMTP backend pointed at a port where nothing listens."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 2


SECRET = "s3cret-for-the-test-receiver-0123456789"


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes
    signature_ok: bool

    @property
    def json(self):
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str
    secret: str
    statuses: list[int] = field(default_factory=list)  # answers to give, then 200
    received: list[Received] = field(default_factory=list)


def verify(secret: str, headers, body: bytes) -> bool:
    """What a receiver does (the example of docs/notifications.md)."""
    timestamp = headers.get("X-Etabli-Timestamp", "")
    expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body,
                                    hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers.get("X-Etabli-Signature", ""))


@pytest.fixture
def receiver():
    """A real HTTP server in a thread that records each POST and checks its signature."""
    state = Receiver(url="", secret=SECRET)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.received.append(Received(self.path, dict(self.headers), body,
                                           verify(state.secret, self.headers, body)))
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if status < 300 else b"receiver is down")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/etabli"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def with_email(user: User, language: str = "en") -> User:
    User.objects.filter(pk=user.pk).update(email=f"{user.username}@example.test",
                                           language=language)
    user.refresh_from_db()
    return user


def piece_sent_to_setter(h) -> Piece:
    """A piece walked through manufacturing and sent from the caster to the setter."""
    piece = h.launched_piece()
    h.walk(piece, to="setting")
    h.advance(piece)  # the caster sends it: pieces_send
    piece.refresh_from_db()
    return piece


def make_alert(h, *, kind="step_overdue", workshop=None, piece=None, role="",
               assignee=None, severity="warning", **params):
    """An open alert, created directly (as detection would), then announced."""
    from django.utils import timezone

    from etabli.alerts.models import Alert
    from etabli.notifications import services

    now = timezone.now()
    alert = Alert.objects.create(
        kind=kind, severity=severity, cause_key=f"{kind}:{Alert.objects.count() + 1}",
        piece=piece, order=piece.order if piece else None, workshop=workshop,
        assignee=assignee, assigned_role=role, opened_at=now, updated_at=now,
        params={"serial": piece.serial if piece else "", "step": "setting",
                "workshop": workshop.name if workshop else "", "due": "2026-01-01",
                "days": 3} | params)
    services.alert_opened(alert=alert)
    return alert

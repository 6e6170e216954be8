from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from etabli.core import audit
from etabli.core.errors import Conflict, PermissionDenied, ValidationFailed

from .models import Channel, Client, ClientContact, ClientKind

FIELDS = ["code", "name", "kind", "channel", "email", "phone", "address", "language"]


@transaction.atomic
def client_create(*, actor, code: str, name: str, kind: str = ClientKind.B2B,
                  channel: str = Channel.DIRECT, email: str = "", phone: str = "",
                  address: str = "", language: str = "en",
                  contacts: list[dict] | None = None) -> Client:
    if actor is not None and not actor.takes_orders:
        raise PermissionDenied(
            _("Only sales, production managers and administrators add clients."))
    code = (code or "").strip().lower()
    if not code or not (name or "").strip():
        raise ValidationFailed(_("A client needs a code and a name."))
    if kind not in ClientKind.values:
        raise ValidationFailed(_("Unknown client kind '%(kind)s'.") % {"kind": kind},
                               details={"field": "kind"})
    if channel not in Channel.values:
        raise ValidationFailed(
            _("Unknown channel '%(channel)s'. Choose one of: %(choices)s.")
            % {"channel": channel, "choices": ", ".join(Channel.values)},
            details={"field": "channel"})
    if Client.objects.filter(code=code).exists():
        raise Conflict(_("A client with code '%(code)s' already exists.") % {"code": code},
                       details={"field": "code"})
    client = Client.objects.create(code=code, name=name.strip(), kind=kind, channel=channel,
                                   email=email, phone=phone, address=address, language=language)
    for contact in contacts or []:
        ClientContact.objects.create(client=client, **contact)
    audit.record(actor=actor, action="client.create", obj=client,
                 after=audit.snapshot(client, FIELDS))
    return client

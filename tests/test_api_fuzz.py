"""Property-based fuzzing of /api/v1/ against its own OpenAPI document (schemathesis).

Every operation of the document is driven in-process through the WSGI application with
generated parameters and bodies, valid and invalid, as an administrator and as a workshop
member. Nothing may answer 5xx, every success must match the document, and every error must be
the documented JSON error.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance, status_code_conformance

from etabli.accounts.models import ApiToken
from etabli.accounts.services import token_create
from etabli.documents.services import document_upload
from etabli.orders.services import change_request_create
from etabli.production.models import StepStatus, Transfer
from etabli.wsgi import application
from tests.documents import files as sample_files
from tests.factories import HouseSetup

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)

EXCLUDED_CHECKS = [
    # The document lists each operation's success codes; the errors every operation may answer
    # (400/401/403/404/409/413/422, all one JSON shape) are not repeated on each of them. The
    # shape of those errors is checked by `error_is_json` below instead.
    status_code_conformance,
    # A schema-valid request may still be refused for reasons a schema cannot express: an id
    # that does not exist or is out of scope (404), a state that does not allow the change
    # (409), a business rule (400), a role (403).
    positive_data_acceptance,
]


def error_is_json(ctx, response, case):
    """Every 4xx answer is the documented error: JSON {code, message, details}.

    405 is left out: django-ninja answers a method a path does not have with plain text.
    """
    if 400 <= response.status_code < 500 and response.status_code != 405:
        body = response.json()
        assert set(body) == {"code", "message", "details"}, body
        assert isinstance(body["message"], str) and isinstance(body["details"], dict)
    return None


class Keys:
    """API keys of the fuzzing users, made again when a generated request revoked one (or when
    the test that made it was rolled back)."""

    def __init__(self) -> None:
        self.keys: dict[int, tuple[int, str]] = {}

    def headers(self, user) -> dict[str, str]:
        token = self.keys.get(user.pk)
        if token is None or not ApiToken.objects.filter(pk=token[0], revoked_at=None).exists():
            row, raw = token_create(actor=user, user=user, name="fuzz")
            self.keys[user.pk] = token = (row.pk, raw)
        return {"Authorization": f"Bearer {token[1]}"}


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """A house with something in every state, built once for all operations: each operation's
    test then runs in a savepoint inside this transaction, rolled back at its end."""
    # Django closes "old" connections when a request starts and finishes; here that is the
    # connection holding the transaction. Django's own test client switches this off in the
    # same way while it sends a request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    with django_db_blocker.unblock(), transaction.atomic():
        h = HouseSetup.build()
        order = h.launched_order(quantity=2)
        at_setter, at_caster = order.pieces.order_by("serial")
        h.walk(at_setter, to="setting", arrive=True)
        h.walk(at_caster, to="prototyping", arrive=True)
        draft = h.draft_order()
        photo = document_upload(actor=h.sales, order_id=order.pk, piece_id=at_caster.pk,
                                uploaded_file=SimpleUploadedFile("ring.jpg", sample_files.jpeg()))
        spare_token, _key = token_create(actor=h.sales, user=h.sales, name="spare")
        cr = change_request_create(actor=h.sales, order_id=order.pk, description="Engraving")
        # Real ids for the path parameters of the random examples (see the test).
        h.fuzz_ids = {
            "token_id": spare_token.pk, "workshop_id": h.caster.pk, "client_id": h.client.pk,
            "order_id": draft.pk, "line_id": draft.lines.get().pk, "code": "quote_accepted",
            "step_id": draft.route.get(step="setting").pk, "cr_id": cr.pk,
            "piece_id": at_caster.pk, "serial": at_caster.serial,
            "run_id": at_caster.runs.filter(status=StepStatus.PENDING).first().pk,
            "transfer_id": Transfer.objects.filter(to_workshop=h.caster).first().pk,
            "document_id": photo.pk,
        }
        h.keys = Keys()
        yield h
        transaction.set_rollback(True)
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(max_examples=5, deadline=None, database=None,
          # The `db` fixture is function-scoped on purpose: one savepoint per operation.
          suppress_health_check=list(HealthCheck))
def test_api_fuzz(case, world, db):
    users = [world.admin, world.caster_member]
    phase = case.meta.phase.name if case.meta is not None else None
    if phase == "coverage":
        # The coverage phase walks every boundary and wrong type of every parameter (hundreds
        # of cases per operation, whatever max_examples says): once, as the administrator,
        # keeps the whole test within a minute. Both users get the random examples.
        users = users[:1]
    check = {"excluded_checks": EXCLUDED_CHECKS, "additional_checks": [error_is_json]}
    for user in users:
        case.call_and_validate(headers=world.keys.headers(user), **check)
    if phase == "fuzzing" and case.path_parameters \
            and case.meta.generation.mode == schemathesis.GenerationMode.POSITIVE:
        # Random ids almost never name a real row: send the same random body again to rows
        # that exist (a piece at the caster, a draft order, …) so the services run too.
        real = case.derive()
        real.path_parameters = {name: world.fuzz_ids.get(name, value)
                                for name, value in case.path_parameters.items()}
        for user in users:
            real.call_and_validate(headers=world.keys.headers(user), **check)

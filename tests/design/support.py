"""What tests do so a piece satisfies design's gates (called by tests.gate_support), and small
generated files for the design tests: a PNG render, an STL mesh, a signed acceptance (PDF).

At the end of a design step the line's design is approved as a client would do it: the
designer sends a round with a render and the client's contact approves it in the portal (or,
for a client without a portal account, sales records the client's written approval). At the
end of a prototyping step the prototypist records an approved prototype (with a fit test for a
ring).
"""

from __future__ import annotations

import io

from django.core.files.uploadedfile import SimpleUploadedFile

from etabli.accounts.models import Role, User
from etabli.design import selectors, services
from etabli.design.models import Prototype, RoundStatus
from etabli.documents.models import DocumentKind, Visibility
from etabli.documents.services import document_upload
from etabli.workshops.models import StepKind


def png_bytes(colour: str = "#c9a227", size: tuple[int, int] = (48, 32)) -> bytes:
    """A small PNG (a 'render')."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def pdf_bytes(text: str = "Signed") -> bytes:
    """A small, valid one-page PDF (a scanned letter)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (120, 60), "white")
    ImageDraw.Draw(image).text((6, 20), text[:20], fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format="PDF")
    return buffer.getvalue()


def stl_bytes(x_mm: float = 10.0, y_mm: float = 10.0, z_mm: float = 2.0) -> bytes:
    """A closed box mesh (binary STL), x × y × z millimetres."""
    import trimesh

    return trimesh.creation.box(extents=(x_mm, y_mm, z_mm)).export(file_type="stl")


def render_file(name: str = "render.png", colour: str = "#c9a227") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, png_bytes(colour), "image/png")


def stl_file(name: str = "ring.stl", **size) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, stl_bytes(**size), "application/octet-stream")


def pdf_file(name: str = "approval.pdf", text: str = "Signed") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, pdf_bytes(text), "application/pdf")


def written_acceptance(h, order, name: str = "signed-waiver.pdf"):
    """The client's signed letter, attached to `order` by sales (house only)."""
    kind = "client_acceptance" if "client_acceptance" in DocumentKind.values \
        else DocumentKind.OTHER
    return document_upload(actor=h.sales, order_id=order.pk, uploaded_file=pdf_file(name),
                           kind=kind, visibility=Visibility.HOUSE)


def client_contact_of(order) -> User | None:
    return User.objects.filter(role=Role.CLIENT, client_id=order.client_id,
                               is_active=True).order_by("pk").first()


def sent_round(h, line, *, designer=None, note: str = "Round for the client."):
    """The line's round waiting for the client: the open one, or a new one the designer sends
    with a render."""
    designer = designer or h.designer
    current = line.design_rounds.filter(status__in=[RoundStatus.DRAFT,
                                                    RoundStatus.SENT]).first()
    if current is not None and current.status == RoundStatus.SENT:
        return current
    if current is None:
        current = services.design_round_create(actor=designer, line_id=line.pk,
                                               designer_note=note)
    if not current.files.exists():
        services.design_round_add_file(actor=designer, round_id=current.pk,
                                       uploaded_file=render_file(), kind="render")
    return services.design_round_send(actor=designer, round_id=current.pk)


def approve_design(h, line, *, designer=None):
    """Send a round (if none is waiting) and approve it as the client would."""
    rnd = sent_round(h, line, designer=designer)
    contact = client_contact_of(line.order)
    if contact is not None:
        return services.design_round_decide(actor=contact, round_id=rnd.pk, approve=True)
    return services.design_round_decide(
        actor=h.sales, round_id=rnd.pk, approve=True,
        comment="Signed renders returned by e-mail.",
        uploaded_file=pdf_file("signed-renders.pdf"))


def before_send(h, piece, run) -> None:
    pass


def before_start(h, piece, run) -> None:
    pass


def before_complete(h, piece, run) -> None:
    if run.step == StepKind.DESIGN:
        if not selectors.line_state(piece.line).approved:
            approve_design(h, piece.line)
    elif run.step == StepKind.PROTOTYPING:
        if not Prototype.objects.filter(run=run).exists():
            actor = h.actor_at(run.workshop_id, run.step)
            fit = True if selectors.needs_fit_test(piece.line) else None
            services.prototype_record(actor=actor, piece_id=piece.pk, method="wax_print",
                                      result="approved", fit_ok=fit)


def ready_to_leave(h, piece) -> None:
    """Whatever design needs before `piece` completes its open step (an approved design, an
    approved prototype), for tests that complete a step by hand."""
    from etabli.production.models import OPEN_STEP_STATUSES

    run = piece.runs.filter(status__in=OPEN_STEP_STATUSES).first()
    if run is not None:
        before_complete(h, piece, run)


def approve_design_through_api(api, h, line_id: int) -> dict:
    """The designer sends a round with a render and the client approves it, over the API."""
    from tests.apiclient import API, ok

    designer = api(h.designer)
    rnd = ok(designer.post(f"/design/lines/{line_id}/rounds",
                           {"designer_note": "Round 1: renders"}), 201)
    response = designer.client.post(f"{API}/design/rounds/{rnd['id']}/files",
                                    {"file": render_file(), "kind": "render"},
                                    headers=designer._headers())
    ok(response, 201)
    ok(designer.post(f"/design/rounds/{rnd['id']}/send"))
    from etabli.orders.models import OrderLine

    contact = client_contact_of(OrderLine.objects.get(pk=line_id).order)
    return ok(api(contact).post(f"/design/rounds/{rnd['id']}/decision",
                                {"decision": "approve"}))

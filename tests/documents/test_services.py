"""Documents' services: uploads on an order, a line or a piece, who may attach, versions, who
may see each document, the audit trail, nothing half-written."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from etabli.core.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    TransitionNotAllowed,
    ValidationFailed,
)
from etabli.core.models import AuditEntry
from etabli.documents import selectors
from etabli.documents.models import Document
from etabli.documents.services import (
    document_new_version,
    document_upload,
    document_visibility_set,
)
from etabli.orders.services import order_cancel
from etabli.production.services import piece_note

from . import files
from .conftest import stored_files

ALL = {"order_house", "order_workshops", "order_client", "line1", "line2", "piece1", "piece2",
       "piece1_house"}
SHARED_ORDER = {"order_workshops", "order_client"}


def seen(world, user) -> set[str]:
    ids = set(Document.objects.visible_to(user).values_list("pk", flat=True))
    return {key for key, doc in world.docs.items() if doc.pk in ids}


# ---------------------------------------------------------------------------------------------
# who sees what


def test_each_role_sees_its_documents(world):
    h, w = world.h, world
    for user in (h.admin, h.manager, h.sales, h.designer, h.quality, h.logistics):
        assert seen(w, user) == ALL, user.role
    # the caster and the polisher are on both pieces' routes
    for member in (h.caster_member, h.polisher_member):
        assert seen(w, member) == SHARED_ORDER | {"line1", "line2", "piece1", "piece2"}
    # each setter sets one line: the other line's and piece's documents are not theirs
    assert seen(w, h.setter_member) == SHARED_ORDER | {"line1", "piece1"}
    assert seen(w, w.other_setter_member) == SHARED_ORDER | {"line2", "piece2"}
    assert seen(w, w.outsider) == set()
    assert seen(w, h.client_contact) == {"order_client"}
    assert seen(w, h.other_client_contact) == set()


def test_a_skipped_step_does_not_put_its_workshop_on_the_route(world):
    from etabli.production.models import StepStatus

    w = world
    w.piece2.runs.filter(workshop=w.other_setter).update(status=StepStatus.SKIPPED)
    assert seen(w, w.other_setter_member) == set()


def test_inactive_and_anonymous_users_see_nothing(world):
    from django.contrib.auth.models import AnonymousUser

    h = world.h
    h.sales.is_active = False
    h.sales.save()
    assert not Document.objects.visible_to(h.sales).exists()
    assert not Document.objects.visible_to(AnonymousUser()).exists()


def test_event_photos_stay_with_the_workshop_that_took_them(world):
    h, w = world.h, world
    piece = h.walk(w.piece1, to="prototyping", arrive=True)
    assert piece.location_id == h.caster.pk
    note = piece_note(actor=h.caster_member, piece_id=piece.pk, comment="wax printed")
    photo = document_upload(actor=h.caster_member, order_id=piece.order_id, piece_id=piece.pk,
                            uploaded_file=files.upload("wax.jpg", files.jpeg()),
                            kind="photo", event=note, visibility="client")
    # a workshop's upload is for the workshops; the house decides what the client sees
    assert photo.visibility == "workshops"
    visible = Document.objects.visible_to
    assert visible(h.caster_member).filter(pk=photo.pk).exists()
    assert visible(h.manager).filter(pk=photo.pk).exists()
    # the setter is on this piece's route, but the photo was taken at the caster's
    assert not visible(h.setter_member).filter(pk=photo.pk).exists()
    assert visible(h.setter_member).filter(pk=w.docs["piece1"].pk).exists()
    document_visibility_set(actor=h.sales, document_id=photo.pk, visibility="client")
    assert visible(h.client_contact).filter(pk=photo.pk).exists()
    assert not visible(h.setter_member).filter(pk=photo.pk).exists()


# ---------------------------------------------------------------------------------------------
# uploads


def test_upload_on_order_line_and_piece(world, _media):
    w = world
    order_doc, line_doc, piece_doc = w.docs["order_workshops"], w.docs["line1"], w.docs["piece1"]
    assert (order_doc.line_id, order_doc.piece_id) == (None, None)
    assert (line_doc.line_id, line_doc.piece_id) == (w.line1.pk, None)
    # a piece's document is also its line's
    assert (piece_doc.line_id, piece_doc.piece_id) == (w.line1.pk, w.piece1.pk)
    for doc in (order_doc, line_doc, piece_doc):
        assert doc.order_id == w.order.pk
        assert (doc.version, doc.is_current, doc.family, doc.replaces_id) == (
            1, True, doc.token, None)
        # stored under a name we chose, never the user's
        assert doc.file.name == f"documents/{w.order.pk}/{doc.token}"
    assert piece_doc.content_type == "image/jpeg" and piece_doc.original_name == "piece1.jpg"
    assert len(piece_doc.sha256) == 64 and piece_doc.size_bytes == len(piece_doc.file.read())
    assert f"documents/{w.order.pk}/{piece_doc.token}" in stored_files(_media)


def test_images_get_a_thumbnail_other_files_none(world, _media):
    photo, sheet = world.docs["piece1"], world.docs["line1"]
    assert photo.thumbnail.name == f"documents/{world.order.pk}/{photo.token}-thumb"
    assert photo.thumbnail.read()[:3] == b"\xff\xd8\xff"
    assert not sheet.thumbnail


def test_upload_targets_are_checked(world):
    h, w = world.h, world
    other = h.launched_order()
    other_piece = other.pieces.get()
    with pytest.raises(NotFound):  # a line of another order
        w.upload(line_id=other.lines.get().pk)
    with pytest.raises(NotFound):  # a piece of another order
        w.upload(piece_id=other_piece.pk)
    with pytest.raises(ValidationFailed) as exc:  # a piece on another line
        w.upload(piece_id=w.piece1.pk, line_id=w.line2.pk)
    assert exc.value.details["field"] == "line_id"
    with pytest.raises(NotFound):
        w.upload(order_id=999_999)
    with pytest.raises(ValidationFailed):
        w.upload(order_id=None)
    # the line alone says which order
    doc = w.upload(order_id=None, line_id=w.line2.pk)
    assert (doc.order_id, doc.line_id) == (w.order.pk, w.line2.pk)
    with pytest.raises(ValidationFailed) as exc:
        w.upload(kind="selfie")
    assert exc.value.details["field"] == "kind"
    with pytest.raises(ValidationFailed) as exc:
        w.upload(visibility="everyone")
    assert exc.value.details["field"] == "visibility"


def test_who_may_attach(world):
    h, w = world.h, world
    for user in (h.admin, h.manager, h.sales):
        assert w.upload(actor=user, kind="other").uploaded_by == user
    # designers: their design files on an order or a line, nothing else
    for kind in ("cad", "render", "technical_sheet", "material_spec"):
        w.upload("sheet.pdf", files.pdf(), actor=h.designer, kind=kind, line_id=w.line1.pk)
    with pytest.raises(PermissionDenied, match="Designers attach"):
        w.upload(actor=h.designer, kind="certificate")
    for user in (h.quality, h.logistics, h.caster_member):
        with pytest.raises(PermissionDenied, match="Only sales"):
            w.upload(actor=user, kind="photo")
    for user in (h.client_contact, h.other_client_contact):
        with pytest.raises(PermissionDenied):
            w.upload(actor=user, kind="photo")
        with pytest.raises(PermissionDenied):
            w.upload(actor=user, kind="photo", piece_id=w.piece1.pk)


def test_people_working_on_a_piece_attach_to_it_and_nobody_else(world):
    h, w = world.h, world
    # the piece waits for design at the house: the designer sees it, the workshops do not
    w.upload(actor=h.designer, kind="render", piece_id=w.piece1.pk)
    # (logistics sees the pieces waiting at the house to be dispatched)
    for user in (h.caster_member, h.setter_member, h.quality, w.outsider):
        with pytest.raises(NotFound):
            w.upload(actor=user, kind="photo", piece_id=w.piece1.pk)
    piece = h.walk(w.piece1, to="prototyping", arrive=True)
    doc = w.upload(actor=h.caster_member, kind="photo", piece_id=piece.pk, visibility="house")
    assert doc.visibility == "workshops"  # a workshop's own photo stays visible to it
    with pytest.raises(NotFound):
        w.upload(actor=h.setter_member, kind="photo", piece_id=piece.pk)


def test_cancelled_orders_take_no_more_documents(world):
    h = world.h
    order = h.draft_order()
    order_cancel(actor=h.sales, order_id=order.pk, reason="client changed their mind")
    with pytest.raises(TransitionNotAllowed, match="cancelled"):
        world.upload(order_id=order.pk)


@pytest.mark.parametrize(("name", "data", "code"), [
    ("big.jpg", None, "too_large"),
    ("photo.jpg", files.pdf()[:0], "empty"),
    ("photo.jpg", b"\xff\xd8\xff" + b"1" * 20, "invalid_image"),
    ("photo.jpg", b"\xff\xd8\xff" + b"<html>" * 10, "active_content"),
    ("photo.jpg", files.jpeg() + b"<script>alert(1)</script>", "active_content"),
    ("drawing.svg", b"<svg onload=alert(1)>", "active_content"),
    ("../../etc/passwd", b"root:x:0:0:root:/root:/bin/bash\n", "unsupported_type"),
    ("prices.xlsx", files.docx_like(), "not_xlsx"),
    ("ring.stl", files.stl_binary(3)[:-1], "invalid_stl"),
])
def test_refused_uploads_leave_nothing_behind(world, settings, _media, name, data, code):
    settings.ETABLI_MAX_UPLOAD_MB = 1
    if data is None:
        data = b"\x00" * (1024 * 1024 + 1)
    before = (Document.objects.count(), AuditEntry.objects.count(), stored_files(_media))
    with pytest.raises(ValidationFailed) as exc:
        world.upload(name, data)
    assert exc.value.code == code
    assert (Document.objects.count(), AuditEntry.objects.count(),
            stored_files(_media)) == before


def test_names_are_cleaned_but_the_file_is_judged_by_its_content(world):
    doc = world.upload("../../etc/pass\x00wd\n.png", files.png())
    assert doc.original_name == "passwd.png" and doc.content_type == "image/png"
    # a PDF named like a photo is a PDF
    assert world.upload("photo.jpg", files.pdf()).content_type == "application/pdf"


def test_upload_is_audited(world):
    doc = world.docs["line1"]
    entry = AuditEntry.objects.get(action="document.upload", object_id=str(doc.pk))
    assert entry.actor == world.h.sales and entry.order_id == world.order.pk
    assert entry.after["line"] == world.line1.pk and entry.after["version"] == 1


def test_a_failed_row_write_removes_the_stored_files(world, _media, monkeypatch):
    before = stored_files(_media)

    def broken_save(self, *args, **kwargs):
        raise IntegrityError("simulated")

    monkeypatch.setattr(Document, "save", broken_save)
    with pytest.raises(IntegrityError):
        with transaction.atomic():
            world.upload("ring.jpg", files.jpeg())
    assert stored_files(_media) == before


# ---------------------------------------------------------------------------------------------
# versions


def test_a_new_version_keeps_the_old_ones(world, _media):
    h, w = world.h, world
    v1 = w.upload("ring.stl", files.stl_binary(2), kind="cad", line_id=w.line1.pk,
                  visibility="client")
    v2 = document_new_version(actor=h.designer, document_id=v1.pk,
                              uploaded_file=files.upload("ring-v2.stl", files.stl_binary(5)))
    v1.refresh_from_db()
    assert (v2.version, v2.family, v2.replaces_id, v2.is_current) == (2, v1.family, v1.pk, True)
    assert not v1.is_current
    # same place and kind; visibility inherited
    assert (v2.order_id, v2.line_id, v2.piece_id, v2.kind, v2.visibility) == (
        v1.order_id, v1.line_id, v1.piece_id, "cad", "client")
    assert v2.uploaded_by == h.designer and v2.token != v1.token
    # both files are kept
    assert v1.file.read() == files.stl_binary(2) and v2.file.read() == files.stl_binary(5)
    v3 = document_new_version(actor=h.sales, document_id=v2.pk, visibility="house",
                              uploaded_file=files.upload("ring-v3.stl", files.stl_binary(6)))
    assert (v3.version, v3.visibility, v3.replaces_id) == (3, "house", v2.pk)
    assert list(Document.objects.filter(family=v1.family, is_current=True)) == [v3]
    entry = AuditEntry.objects.get(action="document.new_version", object_id=str(v3.pk))
    assert entry.before == {"document": v2.pk, "version": 2}
    assert entry.after["version"] == 3 and entry.after["visibility"] == "house"


def test_only_the_current_version_is_revised(world):
    h, w = world.h, world
    v1 = w.docs["line1"]
    v2 = document_new_version(actor=h.sales, document_id=v1.pk,
                              uploaded_file=files.upload("v2.pdf", files.pdf("two")))
    with pytest.raises(Conflict) as exc:
        document_new_version(actor=h.sales, document_id=v1.pk,
                             uploaded_file=files.upload("v3.pdf", files.pdf("three")))
    assert "version 2" in exc.value.message and exc.value.details["current_id"] == v2.pk
    assert Document.objects.filter(family=v1.family).count() == 2


def test_who_may_revise(world):
    h, w = world.h, world
    up = files.upload
    sheet = w.docs["line1"]  # an "other" document on a line
    for user in (h.designer, h.quality, h.logistics):
        with pytest.raises(PermissionDenied):
            document_new_version(actor=user, document_id=sheet.pk,
                                 uploaded_file=up("v.pdf", files.pdf()))
    for user in (h.caster_member, h.client_contact):
        with pytest.raises(PermissionDenied):
            document_new_version(actor=user, document_id=w.docs["order_client"].pk,
                                 uploaded_file=up("v.pdf", files.pdf()))
    for user in (w.outsider, h.other_client_contact):
        with pytest.raises(NotFound):
            document_new_version(actor=user, document_id=sheet.pk,
                                 uploaded_file=up("v.pdf", files.pdf()))
    with pytest.raises(NotFound):  # a house-only document is not the workshop's to see
        document_new_version(actor=h.caster_member, document_id=w.docs["order_house"].pk,
                             uploaded_file=up("v.pdf", files.pdf()))
    # a designer revises a piece's render while the piece is in design, not afterwards
    render = w.upload(actor=h.designer, kind="render", piece_id=w.piece1.pk)
    render = document_new_version(actor=h.designer, document_id=render.pk,
                                  uploaded_file=up("v2.jpg", files.jpeg()))
    h.walk(w.piece1, to="manufacturing")
    with pytest.raises(PermissionDenied, match="no longer at your step"):
        document_new_version(actor=h.designer, document_id=render.pk,
                             uploaded_file=up("v3.jpg", files.jpeg()))
    assert document_new_version(actor=h.manager, document_id=render.pk,
                                uploaded_file=up("v3.jpg", files.jpeg())).version == 3


def test_event_photos_are_not_revised(world):
    h, w = world.h, world
    piece = h.walk(w.piece1, to="prototyping", arrive=True)
    note = piece_note(actor=h.caster_member, piece_id=piece.pk, comment="wax")
    photo = document_upload(actor=h.caster_member, order_id=piece.order_id, piece_id=piece.pk,
                            uploaded_file=files.upload("wax.jpg", files.jpeg()), kind="photo",
                            event=note)
    with pytest.raises(PermissionDenied, match="attach a new photo"):
        document_new_version(actor=h.manager, document_id=photo.pk,
                             uploaded_file=files.upload("v2.jpg", files.jpeg()))


def test_a_refused_new_version_changes_nothing(world, _media):
    h, w = world.h, world
    v1 = w.docs["piece1"]
    before = (Document.objects.count(), AuditEntry.objects.count(), stored_files(_media))
    with pytest.raises(ValidationFailed):
        document_new_version(actor=h.sales, document_id=v1.pk,
                             uploaded_file=files.upload("x.jpg", b"<svg onload=alert(1)>"))
    with pytest.raises(ValidationFailed):
        document_new_version(actor=h.sales, document_id=v1.pk, visibility="world",
                             uploaded_file=files.upload("x.jpg", files.jpeg()))
    v1.refresh_from_db()
    assert v1.is_current
    assert (Document.objects.count(), AuditEntry.objects.count(),
            stored_files(_media)) == before


def test_the_database_holds_one_current_version_and_unique_numbers(world):
    v1 = world.docs["line1"]
    twin = Document.objects.get(pk=world.docs["line2"].pk)
    twin.family = v1.family
    with pytest.raises(IntegrityError), transaction.atomic():
        twin.save(update_fields=["family"])  # two current versions of one document
    twin.is_current = False
    with pytest.raises(IntegrityError), transaction.atomic():
        twin.save(update_fields=["family", "is_current"])  # two "version 1"


def test_lists_show_the_newest_version_each_reader_may_see(world):
    h, w = world.h, world
    v1 = w.docs["order_client"]
    v2 = document_new_version(actor=h.sales, document_id=v1.pk, visibility="house",
                              uploaded_file=files.upload("v2.pdf", files.pdf("two")))
    house = selectors.order_documents(h.sales, w.order)
    row = next(d for d in house if d.family == v1.family)
    assert row.pk == v2.pk and [v.version for v in row.versions] == [2, 1]
    assert [v.pk for v in row.older_versions] == [v1.pk]
    # the client was shown version 1; version 2 is the house's: version 1 stays listed
    client = selectors.order_documents(h.client_contact, w.order)
    assert [d.pk for d in client] == [v1.pk] and client[0].older_versions == []
    assert not client[0].can_revise
    assert row.can_revise


# ---------------------------------------------------------------------------------------------
# visibility


def test_house_staff_change_who_sees_a_document(world):
    h, w = world.h, world
    doc = w.docs["piece1_house"]
    assert not Document.objects.visible_to(h.setter_member).filter(pk=doc.pk).exists()
    for user in (h.sales, h.designer, h.quality):
        document_visibility_set(actor=user, document_id=doc.pk, visibility="workshops")
    assert Document.objects.visible_to(h.setter_member).filter(pk=doc.pk).exists()
    entries = AuditEntry.objects.filter(action="document.visibility", object_id=str(doc.pk))
    assert [(e.before, e.after) for e in entries] == [
        ({"visibility": "house"}, {"visibility": "workshops"})]  # the same value twice is no change
    with pytest.raises(ValidationFailed):
        document_visibility_set(actor=h.sales, document_id=doc.pk, visibility="public")
    with pytest.raises(PermissionDenied):  # the caster sees it now, but may not share it
        document_visibility_set(actor=h.caster_member, document_id=doc.pk, visibility="client")
    with pytest.raises(NotFound):  # the client does not see it: it does not exist for them
        document_visibility_set(actor=h.client_contact, document_id=doc.pk, visibility="client")
    with pytest.raises(PermissionDenied):
        document_visibility_set(actor=h.client_contact, document_id=w.docs["order_client"].pk,
                                visibility="house")
    with pytest.raises(NotFound):
        document_visibility_set(actor=h.sales, document_id=999_999, visibility="client")


def test_an_event_photo_belongs_to_the_event_s_piece(world):
    h, w = world.h, world
    piece = h.walk(w.piece1, to="prototyping", arrive=True)
    note = piece_note(actor=h.caster_member, piece_id=piece.pk, comment="wax")
    for kwargs in ({"piece_id": w.piece2.pk}, {}):
        with pytest.raises(ValidationFailed, match="belongs to that event's piece"):
            w.upload("wax.jpg", kind="photo", event=note, **kwargs)


def test_a_version_is_not_deleted_from_under_the_next_but_all_go_together(world):
    from django.db.models import RestrictedError

    h, w = world.h, world
    v1 = w.docs["line1"]
    v2 = document_new_version(actor=h.sales, document_id=v1.pk,
                              uploaded_file=files.upload("v2.pdf", files.pdf("two")))
    with pytest.raises(RestrictedError), transaction.atomic():
        Document.objects.filter(pk=v1.pk).delete()
    # the whole order's documents (as when a demo house is emptied) go together
    Document.objects.filter(order=w.order).delete()
    assert not Document.objects.filter(pk__in=[v1.pk, v2.pk]).exists()


def test_thumbnails_command_backfills_images_only(world, _media):
    from io import StringIO

    from django.core.management import call_command

    photo, sheet = world.docs["piece1"], world.docs["line1"]
    # An image from before thumbnails existed: its file is there, its thumbnail is not.
    photo.thumbnail.delete(save=False)
    Document.objects.filter(pk=photo.pk).update(thumbnail="")
    out = StringIO()
    call_command("thumbnails", "--dry-run", stdout=out)
    assert out.getvalue().strip() == "1 image(s) without a thumbnail."
    out = StringIO()
    call_command("thumbnails", stdout=out)
    assert "1 thumbnail(s) made" in out.getvalue()
    photo.refresh_from_db()
    sheet.refresh_from_db()
    assert photo.thumbnail.name == f"documents/{world.order.pk}/{photo.token}-thumb"
    assert photo.thumbnail.read()[:3] == b"\xff\xd8\xff"
    assert not sheet.thumbnail
    out = StringIO()
    call_command("thumbnails", stdout=out)  # again: nothing left to do
    assert "0 thumbnail(s) made" in out.getvalue()

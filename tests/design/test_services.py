"""Design services: briefs, rounds (counting, sending, files and versions), the client's
decision and its formal record, the gate out of design, prototypes and their results."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from etabli.core.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    TransitionNotAllowed,
    ValidationFailed,
)
from etabli.core.models import AuditEntry
from etabli.design import selectors, services
from etabli.design.models import DesignApproval, DesignBrief, DesignRound, Prototype, RoundStatus
from etabli.documents.models import Document
from etabli.orders.services import order_cancel
from etabli.production.models import StepStatus
from etabli.production.services import piece_complete, piece_start, step_run_skip
from etabli.workshops.models import StepKind
from tests.design.conftest import custom_line
from tests.design.support import (
    approve_design,
    pdf_file,
    render_file,
    sent_round,
    stl_file,
    written_acceptance,
)

pytestmark = pytest.mark.django_db


def open_run(piece):
    piece.refresh_from_db()
    return piece.current_run


def new_round(h, line, **kwargs) -> DesignRound:
    return services.design_round_create(actor=h.designer, line_id=line.pk, **kwargs)


def with_render(h, rnd, name="render.png", colour="#c9a227"):
    return services.design_round_add_file(actor=h.designer, round_id=rnd.pk,
                                          uploaded_file=render_file(name, colour),
                                          kind="render")


def send(h, line, **kwargs) -> DesignRound:
    rnd = new_round(h, line, **kwargs)
    with_render(h, rnd)
    return services.design_round_send(actor=h.designer, round_id=rnd.pk)


def decide(h, rnd, approve=True, comment=""):
    return services.design_round_decide(actor=h.client_contact, round_id=rnd.pk,
                                        approve=approve, comment=comment)


# ---------------------------------------------------------------------------------------------
# the brief


def test_sales_writes_the_brief_budget_and_target_price(house_setup):
    h = house_setup
    order = h.draft_order(lines=[custom_line()])
    line = order.lines.get()
    brief = services.design_brief_save(
        actor=h.sales, line_id=line.pk, client_intent="A ring for 20 years of marriage",
        technical_constraints="Sapphire supplied by the client", budget_metal_g="6.5",
        budget_stone_count=5, budget_stone_ct="1.75", target_price="4800")
    line.refresh_from_db()
    assert brief.client_intent == "A ring for 20 years of marriage"
    assert (line.budget_metal_g, line.budget_stone_count, line.budget_stone_ct,
            line.target_price) == (Decimal("6.500"), 5, Decimal("1.750"), Decimal("4800.00"))
    entry = AuditEntry.objects.get(action="design.brief")
    assert entry.before["budget_metal_g"] == "5.000" and entry.after["budget_metal_g"] == "6.500"
    assert entry.after["target_price"] == "4800.00" and entry.order_id == order.pk
    # only what is given changes; None clears
    services.design_brief_save(actor=h.sales, line_id=line.pk, budget_stone_ct=None)
    line.refresh_from_db()
    brief.refresh_from_db()
    assert line.budget_stone_ct is None and line.budget_metal_g == Decimal("6.500")
    assert brief.technical_constraints == "Sapphire supplied by the client"
    assert DesignBrief.objects.count() == 1


def test_the_designer_writes_the_brief_but_never_the_price(house_setup, at_design):
    h = house_setup
    line = at_design.line
    services.design_brief_save(actor=h.designer, line_id=line.pk,
                               aesthetic_constraints="Art deco", budget_metal_g="4.8")
    line.refresh_from_db()
    assert line.budget_metal_g == Decimal("4.800")
    with pytest.raises(PermissionDenied, match="target price") as exc:
        services.design_brief_save(actor=h.designer, line_id=line.pk, target_price="10")
    assert exc.value.details == {"field": "target_price"}
    line.refresh_from_db()
    assert line.target_price == Decimal("1200.00")
    # the designer's audit entry does not carry the price
    entry = AuditEntry.objects.get(action="design.brief")
    assert "target_price" not in entry.after


@pytest.mark.parametrize("field,value,words", [
    ("budget_metal_g", "-1", "more than 0 g"),
    ("budget_metal_g", "abc", "not a number of g"),
    ("budget_metal_g", "1.2345", "3 decimals"),
    ("budget_metal_g", "6000", "at most 5000"),
    ("budget_stone_ct", "0", "more than 0 ct"),
    ("budget_stone_count", "-2", "whole number"),
    ("budget_stone_count", "2.5", "whole number"),
    ("budget_stone_count", True, "whole number"),
    ("target_price", "-5", "positive amount"),
    ("target_price", "NaN", "not an amount"),
    ("client_intent", "x" * 4001, "too long"),
])
def test_brief_bad_input_changes_nothing(house_setup, field, value, words):
    h = house_setup
    line = h.draft_order(lines=[custom_line()]).lines.get()
    with pytest.raises(ValidationFailed, match=words) as exc:
        services.design_brief_save(actor=h.sales, line_id=line.pk, **{field: value})
    assert exc.value.details == {"field": field}
    assert not DesignBrief.objects.exists() and not AuditEntry.objects.filter(
        action="design.brief").exists()


def test_who_may_write_a_brief(house_setup, at_design):
    h = house_setup
    line = at_design.line
    with pytest.raises(PermissionDenied):  # the client sees the line, but not the brief
        services.design_brief_save(actor=h.client_contact, line_id=line.pk, client_intent="x")
    for user in (h.quality, h.logistics, h.caster_member, h.other_client_contact):
        with pytest.raises(NotFound):  # no order of theirs
            services.design_brief_save(actor=user, line_id=line.pk, client_intent="x")
    with pytest.raises(NotFound):
        services.design_brief_save(actor=h.sales, line_id=10**9, client_intent="x")
    # a designer does not see a draft order (no piece at design yet)
    draft = h.draft_order(lines=[custom_line()])
    with pytest.raises(NotFound):
        services.design_brief_save(actor=h.designer, line_id=draft.lines.get().pk,
                                   client_intent="x")
    order_cancel(actor=h.sales, order_id=draft.pk, reason="Client withdrew")
    with pytest.raises(TransitionNotAllowed, match="cancelled"):
        services.design_brief_save(actor=h.sales, line_id=draft.lines.get().pk,
                                   client_intent="x")


# ---------------------------------------------------------------------------------------------
# rounds


def test_rounds_are_numbered_one_open_at_a_time(house_setup, at_design):
    h = house_setup
    line = at_design.line
    first = new_round(h, line, designer_note="Three options for the gallery")
    assert (first.number, first.status) == (1, RoundStatus.DRAFT)
    with pytest.raises(Conflict, match="still being prepared"):
        new_round(h, line)
    with_render(h, first)
    services.design_round_send(actor=h.designer, round_id=first.pk)
    with pytest.raises(Conflict, match="waiting for the client's decision"):
        new_round(h, line)
    decide(h, first, approve=False, comment="Thinner band, please")
    second = new_round(h, line)
    assert second.number == 2
    assert [a.action for a in AuditEntry.objects.filter(action__startswith="design.round")
            .order_by("id")][:4] == ["design.round.create", "design.round.file",
                                     "design.round.send", "design.round.changes"]


def test_sending_needs_a_render_or_a_cad_file_and_happens_once(house_setup, at_design):
    h = house_setup
    rnd = new_round(h, at_design.line)
    with pytest.raises(ValidationFailed, match="at least one render or CAD file") as exc:
        services.design_round_send(actor=h.designer, round_id=rnd.pk)
    assert exc.value.details == {"field": "files"}
    with_render(h, rnd)
    sent = services.design_round_send(actor=h.designer, round_id=rnd.pk)
    assert sent.status == RoundStatus.SENT and sent.sent_at and sent.sent_by == h.designer
    with pytest.raises(TransitionNotAllowed, match="already been sent"):
        services.design_round_send(actor=h.designer, round_id=rnd.pk)
    # a round sent no longer changes
    with pytest.raises(TransitionNotAllowed, match="no longer changes"):
        with_render(h, rnd, "late.png")
    with pytest.raises(TransitionNotAllowed, match="no longer changes"):
        services.design_round_update(actor=h.designer, round_id=rnd.pk, designer_note="x")


def test_a_cad_file_alone_may_be_sent(house_setup, at_design):
    h = house_setup
    rnd = new_round(h, at_design.line)
    services.design_round_add_file(actor=h.designer, round_id=rnd.pk, uploaded_file=stl_file(),
                                   kind="cad")
    assert services.design_round_send(actor=h.designer, round_id=rnd.pk).status == "sent"


def test_round_files_and_their_visibility(house_setup, at_design):
    h = house_setup
    rnd = new_round(h, at_design.line)
    render = with_render(h, rnd)
    cad = services.design_round_add_file(actor=h.designer, round_id=rnd.pk,
                                         uploaded_file=stl_file(), kind="cad")
    assert (render.kind, render.visibility, render.line_id) == ("render", "client",
                                                                 at_design.line_id)
    assert (cad.kind, cad.visibility) == ("cad", "workshops")
    # the same file twice (a double submit) is kept once
    assert with_render(h, rnd) == render
    assert rnd.files.count() == 2
    with pytest.raises(ValidationFailed, match="CAD files or renders") as exc:
        services.design_round_add_file(actor=h.designer, round_id=rnd.pk,
                                       uploaded_file=pdf_file(), kind="certificate")
    assert exc.value.details == {"field": "kind"}
    with pytest.raises(ValidationFailed, match="Unknown visibility"):
        services.design_round_add_file(actor=h.designer, round_id=rnd.pk,
                                       uploaded_file=render_file("b.png", "#000"),
                                       kind="render", visibility="everyone")
    with pytest.raises(ValidationFailed):  # not an image, whatever its name says
        services.design_round_add_file(
            actor=h.designer, round_id=rnd.pk, kind="render",
            uploaded_file=SimpleUploadedFile("x.png", b"<html><script>1</script></html>"))
    services.design_round_remove_file(actor=h.designer, round_id=rnd.pk, document_id=cad.pk)
    assert list(rnd.files.all()) == [render]
    assert Document.objects.filter(pk=cad.pk).exists()  # the document stays on the order
    with pytest.raises(NotFound):
        services.design_round_remove_file(actor=h.designer, round_id=rnd.pk,
                                          document_id=cad.pk)


def test_the_cad_mesh_gives_the_estimated_metal_unless_entered(house_setup, at_design):
    h = house_setup
    rnd = new_round(h, at_design.line, estimated_stone_count=3)
    # a 10 × 10 × 2 mm box is 200 mm³: 3.100 g of 18k yellow gold (15.50 g/cm³)
    services.design_round_add_file(actor=h.designer, round_id=rnd.pk, uploaded_file=stl_file(),
                                   kind="cad")
    rnd.refresh_from_db()
    assert (rnd.estimated_metal_g, rnd.metal_source) == (Decimal("3.100"), "cad")
    services.design_round_update(actor=h.designer, round_id=rnd.pk, estimated_metal_g="3.4")
    services.design_round_add_file(actor=h.designer, round_id=rnd.pk,
                                   uploaded_file=stl_file("v2.stl", x_mm=12), kind="cad")
    rnd.refresh_from_db()
    assert (rnd.estimated_metal_g, rnd.metal_source) == (Decimal("3.400"), "entered")
    # a mesh that cannot be read is refused and leaves nothing behind
    before = Document.objects.count()
    with pytest.raises(ValidationFailed):
        services.design_round_add_file(
            actor=h.designer, round_id=rnd.pk, kind="cad",
            uploaded_file=SimpleUploadedFile("broken.stl", b"solid x\nfacet normal 0 0 0\n"
                                             b"outer loop\nvertex 0 0 0\nendloop\nendfacet\n"
                                             b"endsolid x\n"))
    assert Document.objects.count() == before


def test_a_new_cad_version_in_a_later_round_keeps_the_old_one(house_setup, at_design):
    h = house_setup
    line = at_design.line
    first = new_round(h, line)
    v1 = services.design_round_add_file(actor=h.designer, round_id=first.pk,
                                        uploaded_file=stl_file("ring.stl"), kind="cad")
    with_render(h, first)
    services.design_round_send(actor=h.designer, round_id=first.pk)
    decide(h, first, approve=False, comment="Wider shoulders")
    second = new_round(h, line)
    v2 = services.design_round_add_file(actor=h.designer, round_id=second.pk,
                                        uploaded_file=stl_file("ring.stl", x_mm=11),
                                        kind="cad", replaces_id=v1.pk)
    v1.refresh_from_db()
    assert (v1.version, v2.version, v2.family, v2.replaces_id) == (1, 2, v1.family, v1.pk)
    assert not v1.is_current and v2.is_current
    assert v1 in first.files.all() and v2 in second.files.all() and v1 not in second.files.all()
    # a render is not a new version of a CAD file; an unknown file is not found
    with pytest.raises(ValidationFailed, match="its new version is one too"):
        services.design_round_add_file(actor=h.designer, round_id=second.pk,
                                       uploaded_file=render_file(), kind="render",
                                       replaces_id=v2.pk)
    with pytest.raises(NotFound) as exc:
        services.design_round_add_file(actor=h.designer, round_id=second.pk,
                                       uploaded_file=stl_file(), kind="cad", replaces_id=10**9)
    assert exc.value.details == {"field": "replaces_id"}


def test_who_may_prepare_rounds(house_setup, at_design):
    h = house_setup
    line = at_design.line
    with pytest.raises(PermissionDenied):
        services.design_round_create(actor=h.client_contact, line_id=line.pk)
    for user in (h.quality, h.logistics, h.caster_member):
        with pytest.raises(NotFound):
            services.design_round_create(actor=user, line_id=line.pk)
    rnd = services.design_round_create(actor=h.sales, line_id=line.pk)
    with pytest.raises(NotFound):  # a client never sees a draft round
        services.design_round_decide(actor=h.client_contact, round_id=rnd.pk, approve=True)
    with pytest.raises(NotFound):
        services.design_round_send(actor=h.quality, round_id=rnd.pk)
    # once the piece is at finishing, the inspector reads the design work but does not change it
    approve_design(h, line)
    h.walk(at_design, to=StepKind.FINISHING)
    with pytest.raises(PermissionDenied, match="work on designs"):
        services.design_round_create(actor=h.quality, line_id=line.pk)


def test_rounds_sent_are_counted_and_warned_past_the_limit(house_setup, at_design, settings):
    h = house_setup
    settings.ETABLI_DESIGN_ROUND_LIMIT = 2
    line = at_design.line
    for n in (1, 2):
        rnd = send(h, line)
        state = selectors.line_state(line)
        assert (state.rounds_sent, state.over_limit, state.limit_warning) == (n, False, "")
        decide(h, rnd, approve=False, comment=f"Not yet ({n})")
    draft = new_round(h, line)
    assert selectors.line_state(line).rounds_sent == 2  # a draft is not sent
    with_render(h, draft)
    services.design_round_send(actor=h.designer, round_id=draft.pk)  # it does not block
    state = selectors.line_state(line)
    assert state.rounds_sent == 3 and state.over_limit
    assert state.limit_warning == "3 design rounds sent, more than the house's limit of 2."
    entry = AuditEntry.objects.filter(action="design.round.send").latest("id")
    assert entry.after == {"status": "sent", "rounds_sent": 3, "limit": 2, "over_limit": True}


# ---------------------------------------------------------------------------------------------
# the client's decision


def test_the_client_approves_a_formal_record_with_files_and_budget(house_setup, at_design):
    h = house_setup
    line = at_design.line  # budget: 5.000 g, 3 stones, 1.200 ct
    rnd = new_round(h, line, estimated_metal_g="5.2", estimated_stone_count=2,
                    estimated_stone_ct="1.35")
    render = with_render(h, rnd)
    cad = services.design_round_add_file(actor=h.designer, round_id=rnd.pk,
                                         uploaded_file=stl_file(), kind="cad")
    services.design_round_send(actor=h.designer, round_id=rnd.pk)
    figures = selectors.budget.of_round(rnd)
    assert (figures.metal.difference, figures.metal.difference_pct, figures.metal.over) == (
        Decimal("0.200"), Decimal("4.0"), True)
    assert (figures.stone_count.difference, figures.stone_count.over) == (-1, False)
    assert (figures.stone_ct.difference, figures.stone_ct.over) == (Decimal("0.150"), True)
    assert figures.warnings == [
        "The design weighs 5.200 g of metal, 0.200 g over the budget of 5.000 g.",
        "The design's stones weigh 1.350 ct, 0.150 ct over the budget of 1.200 ct."]

    decided = decide(h, rnd, comment="Lovely")
    assert decided.status == RoundStatus.APPROVED and not decided.decided_on_behalf
    approval = DesignApproval.objects.get()
    assert (approval.round, approval.line, approval.round_number, approval.approved_by,
            approval.on_behalf, approval.note) == (rnd, line, 1, h.client_contact, False,
                                                   "Lovely")
    assert {f["id"]: (f["sha256"], f["version"]) for f in approval.files} == {
        render.pk: (render.sha256, 1), cad.pk: (cad.sha256, 1)}
    assert (approval.estimated_metal_g, approval.budget_metal_g, approval.metal_difference_g) \
        == (Decimal("5.200"), Decimal("5.000"), Decimal("0.200"))
    assert (approval.estimated_stone_count, approval.budget_stone_count,
            approval.stone_count_difference) == (2, 3, -1)
    assert approval.stone_ct_difference == Decimal("0.150")
    # a formal record: never changed
    approval.note = "edited"
    with pytest.raises(ValueError, match="never changed"):
        approval.save()
    # the budget changing later does not change what was approved
    services.design_brief_save(actor=h.sales, line_id=line.pk, budget_metal_g="6")
    approval.refresh_from_db()
    assert approval.budget_metal_g == Decimal("5.000")
    assert selectors.line_state(line).approved


def test_deciding_twice_is_refused_with_a_clear_message(house_setup, at_design):
    h = house_setup
    rnd = send(h, at_design.line)
    decide(h, rnd)
    with pytest.raises(TransitionNotAllowed, match="already approved by .* the decision is final")\
            as exc:
        decide(h, rnd, approve=False, comment="Actually no")
    assert exc.value.status == 409 and exc.value.code == "already_decided"
    other = h.launched_piece(lines=[custom_line()])
    piece_start(actor=h.designer, piece_id=other.pk)
    rnd = send(h, other.line)
    decide(h, rnd, approve=False, comment="Smaller stone")
    with pytest.raises(TransitionNotAllowed, match="Changes to Round 1 .* were already requested"):
        decide(h, rnd)
    assert DesignApproval.objects.count() == 1


def test_asking_for_changes_needs_a_comment(house_setup, at_design):
    h = house_setup
    rnd = send(h, at_design.line)
    with pytest.raises(ValidationFailed, match="Say what should change") as exc:
        decide(h, rnd, approve=False)
    assert exc.value.details == {"field": "comment"}
    rnd.refresh_from_db()
    assert rnd.status == RoundStatus.SENT
    decided = decide(h, rnd, approve=False, comment="  Rose gold instead  ")
    assert decided.decision_comment == "Rose gold instead"
    assert selectors.line_state(at_design.line).code == "changes_requested"


def test_another_clients_round_is_not_found(house_setup, at_design):
    h = house_setup
    rnd = send(h, at_design.line)
    with pytest.raises(NotFound):
        services.design_round_decide(actor=h.other_client_contact, round_id=rnd.pk,
                                     approve=True)
    with pytest.raises(NotFound):
        services.design_round_decide(actor=h.client_contact, round_id=10**9, approve=True)
    with pytest.raises(PermissionDenied):
        services.design_round_decide(actor=h.designer, round_id=rnd.pk, approve=True)
    for user in (h.quality, h.caster_member):
        with pytest.raises(NotFound):
            services.design_round_decide(actor=user, round_id=rnd.pk, approve=True)
    rnd.refresh_from_db()
    assert rnd.status == RoundStatus.SENT


def test_the_house_approves_on_behalf_only_with_a_note_and_the_written_approval(house_setup,
                                                                                 at_design):
    h = house_setup
    rnd = send(h, at_design.line)
    with pytest.raises(ValidationFailed, match="Say how the client gave") as exc:
        services.design_round_decide(actor=h.sales, round_id=rnd.pk, approve=True,
                                     uploaded_file=pdf_file())
    assert exc.value.details == {"field": "comment"}
    with pytest.raises(ValidationFailed, match="Attach the client's written approval") as exc:
        services.design_round_decide(actor=h.sales, round_id=rnd.pk, approve=True,
                                     comment="By phone")
    assert exc.value.details == {"field": "document"}
    elsewhere = written_acceptance(h, h.launched_order())
    with pytest.raises(NotFound):
        services.design_round_decide(actor=h.sales, round_id=rnd.pk, approve=True,
                                     comment="E-mail", document_id=elsewhere.pk)
    assert not DesignApproval.objects.exists()
    services.design_round_decide(actor=h.sales, round_id=rnd.pk, approve=True,
                                 comment="Signed renders returned by e-mail on 3 May",
                                 uploaded_file=pdf_file("signed.pdf"))
    approval = DesignApproval.objects.get()
    assert approval.on_behalf and approval.approved_by == h.sales
    assert approval.document.original_name == "signed.pdf"
    assert (approval.document.visibility, approval.document.order_id) == (
        "house", at_design.order_id)
    rnd.refresh_from_db()
    assert rnd.decided_on_behalf and rnd.decided_by == h.sales


def test_on_behalf_with_a_document_already_on_the_order(house_setup, at_design):
    h = house_setup
    rnd = send(h, at_design.line)
    letter = written_acceptance(h, at_design.order, "letter.pdf")
    services.design_round_decide(actor=h.manager, round_id=rnd.pk, approve=True,
                                 comment="Letter of 3 May", document_id=letter.pk)
    assert DesignApproval.objects.get().document == letter
    # changes asked on the client's behalf need only what they said
    other = h.launched_piece(lines=[custom_line()])
    piece_start(actor=h.designer, piece_id=other.pk)
    rnd = send(h, other.line)
    services.design_round_decide(actor=h.sales, round_id=rnd.pk, approve=False,
                                 comment="Client called: thinner band")
    rnd.refresh_from_db()
    assert rnd.status == RoundStatus.CHANGES_REQUESTED and rnd.decided_on_behalf


def test_a_decision_on_a_draft_round_is_refused(house_setup, at_design):
    h = house_setup
    rnd = new_round(h, at_design.line)
    with pytest.raises(TransitionNotAllowed, match="not been sent"):
        services.design_round_decide(actor=h.sales, round_id=rnd.pk, approve=False,
                                     comment="x")


# ---------------------------------------------------------------------------------------------
# the gate out of design


def test_a_piece_leaves_design_only_with_the_clients_approval(house_setup, at_design):
    h = house_setup
    piece = at_design
    with pytest.raises(TransitionNotAllowed, match="No design round of line 1") as exc:
        piece_complete(actor=h.designer, piece_id=piece.pk)
    assert exc.value.code == "design_not_approved"
    assert f"/design/lines/{piece.line_id}/" in exc.value.message
    rnd = send(h, piece.line)
    with pytest.raises(TransitionNotAllowed, match="Round 1 of line 1 .* is waiting for the "
                                                   "client's decision"):
        piece_complete(actor=h.designer, piece_id=piece.pk)
    decide(h, rnd, approve=False, comment="Thinner")
    with pytest.raises(TransitionNotAllowed, match="asked for changes to round 1"):
        piece_complete(actor=h.designer, piece_id=piece.pk)
    rnd = send(h, piece.line)
    decide(h, rnd)
    piece_complete(actor=h.designer, piece_id=piece.pk)
    assert open_run(piece).step == StepKind.PROTOTYPING
    assert piece.runs.get(step=StepKind.DESIGN).status == StepStatus.DONE


def test_a_later_round_sent_needs_its_own_approval(house_setup, at_design):
    h = house_setup
    line = at_design.line
    decide(h, send(h, line))
    assert selectors.line_state(line).approved
    draft = new_round(h, line)  # a draft does not withdraw the approval
    assert selectors.line_state(line).approved
    with_render(h, draft)
    services.design_round_send(actor=h.designer, round_id=draft.pk)
    state = selectors.line_state(line)
    assert not state.approved and state.code == "waiting"


# ---------------------------------------------------------------------------------------------
# prototypes


def at_prototyping(h, *, line=None):
    piece = h.launched_piece(lines=[line or custom_line()])
    h.walk(piece, to=StepKind.PROTOTYPING, arrive=True)
    piece_start(actor=h.caster_member, piece_id=piece.pk)
    piece.refresh_from_db()
    return piece


def test_a_prototype_is_needed_to_complete_prototyping(house_setup):
    h = house_setup
    piece = at_prototyping(h)
    with pytest.raises(TransitionNotAllowed, match="Record the prototype of") as exc:
        piece_complete(actor=h.caster_member, piece_id=piece.pk)
    assert exc.value.code == "prototype_missing"
    prototype = services.prototype_record(actor=h.caster_member, piece_id=piece.pk,
                                          method="resin_print", result="approved", fit_ok=True,
                                          fit_notes="Size 52 on the gauge")
    assert (prototype.run, prototype.fit_tested, prototype.fit_ok) == (open_run(piece), True,
                                                                       True)
    with pytest.raises(Conflict, match="already recorded"):
        services.prototype_record(actor=h.designer, piece_id=piece.pk, method="cnc",
                                  result="approved", fit_ok=True)
    piece_complete(actor=h.caster_member, piece_id=piece.pk)
    assert open_run(piece).step == StepKind.MANUFACTURING
    assert AuditEntry.objects.filter(action="design.prototype", piece_id=piece.pk).exists()


def test_a_ring_needs_its_fit_test_and_must_fit_to_be_approved(house_setup):
    h = house_setup
    piece = at_prototyping(h)
    with pytest.raises(ValidationFailed, match="Record the fit test: this ring is size 52") \
            as exc:
        services.prototype_record(actor=h.caster_member, piece_id=piece.pk,
                                  method="wax_print", result="approved")
    assert exc.value.details == {"field": "fit_ok"}
    with pytest.raises(ValidationFailed, match="does not fit is not approved"):
        services.prototype_record(actor=h.caster_member, piece_id=piece.pk,
                                  method="wax_print", result="approved", fit_ok=False)
    assert not Prototype.objects.exists()


def test_a_pendant_needs_no_fit_test(house_setup):
    h = house_setup
    piece = at_prototyping(h, line=custom_line(size="42 cm chain",
                                               description="Initial pendant"))
    assert not selectors.needs_fit_test(piece.line)
    prototype = services.prototype_record(actor=h.designer, piece_id=piece.pk, method="cnc",
                                          result="approved")
    assert not prototype.fit_tested and prototype.fit_ok is None


@pytest.mark.parametrize("size,ring", [("52", True), ("6.5", True), ("N½", True),
                                       ("17 cm", False), ("58 mm inner diameter", False),
                                       ("", False)])
def test_which_sizes_are_ring_sizes(size, ring):
    class Line:
        pass

    line = Line()
    line.size = size
    assert selectors.needs_fit_test(line) is ring


@pytest.mark.parametrize("field,kwargs,words", [
    ("method", {"method": "clay"}, "Unknown method"),
    ("result", {"result": "maybe"}, "Unknown result"),
    ("fit_ok", {"fit_ok": "yes"}, "fits"),
    ("reason", {"result": "changes_needed", "reason": "  "}, "Say what must change"),
])
def test_prototype_bad_input(house_setup, field, kwargs, words):
    h = house_setup
    piece = at_prototyping(h)
    data = {"method": "wax_print", "result": "approved", "fit_ok": True} | kwargs
    with pytest.raises(ValidationFailed, match=words) as exc:
        services.prototype_record(actor=h.designer, piece_id=piece.pk, **data)
    assert exc.value.details == {"field": field}
    assert not Prototype.objects.exists() and open_run(piece).status == StepStatus.IN_PROGRESS


def test_who_records_a_prototype_and_when(house_setup):
    h = house_setup
    piece = h.launched_piece(lines=[custom_line()])
    kwargs = {"method": "wax_print", "result": "approved", "fit_ok": True}
    with pytest.raises(TransitionNotAllowed, match="not at a prototyping step"):
        services.prototype_record(actor=h.designer, piece_id=piece.pk, **kwargs)
    h.walk(piece, to=StepKind.PROTOTYPING, arrive=True)
    with pytest.raises(TransitionNotAllowed, match="Start the prototyping step"):
        services.prototype_record(actor=h.caster_member, piece_id=piece.pk, **kwargs)
    piece_start(actor=h.caster_member, piece_id=piece.pk)
    with pytest.raises(NotFound):  # another workshop does not even see the piece
        services.prototype_record(actor=h.setter_member, piece_id=piece.pk, **kwargs)
    with pytest.raises(PermissionDenied, match="prototypist"):
        services.prototype_record(actor=h.sales, piece_id=piece.pk, **kwargs)
    for user in (h.quality, h.logistics):  # pieces at prototyping are not theirs to see
        with pytest.raises(NotFound):
            services.prototype_record(actor=user, piece_id=piece.pk, **kwargs)
    with pytest.raises(PermissionDenied, match="prototypist"):
        services.prototype_record(actor=h.client_contact, piece_id=piece.pk, **kwargs)
    # the workshop approves its prototype, but sending the piece back is the house's call
    with pytest.raises(PermissionDenied, match="house's decision"):
        services.prototype_record(actor=h.caster_member, piece_id=piece.pk, method="wax_print",
                                  result="changes_needed", reason="Too thick", fit_ok=True)
    assert services.prototype_record(actor=h.manager, piece_id=piece.pk, **kwargs).pk


def test_cad_changes_needed_sends_the_piece_back_and_withdraws_the_approval(house_setup):
    h = house_setup
    piece = at_prototyping(h)
    line = piece.line
    approval = DesignApproval.objects.get(line=line)
    prototype = services.prototype_record(
        actor=h.designer, piece_id=piece.pk, method="resin_print", result="changes_needed",
        fit_ok=False, fit_notes="Tight at 52", reason="Shank 0.3 mm too thin at the back")
    piece.refresh_from_db()
    assert piece.rework_count == 1 and not piece.right_first_time
    run = open_run(piece)
    assert run.step == StepKind.DESIGN and run.attempt == 2 and run.status == StepStatus.READY
    assert prototype.invalidates == approval and prototype.rework_event.kind == "rework"
    assert prototype.rework_event.comment == "Shank 0.3 mm too thin at the back"
    prototype.run.refresh_from_db()
    assert prototype.run.reworked and prototype.run.status == StepStatus.DONE
    state = selectors.line_state(line)
    assert not state.approved and state.code == "invalidated"
    # the new design step cannot end on the old approval
    h.bring(piece)  # back from the caster to the house
    piece_start(actor=h.designer, piece_id=piece.pk)
    with pytest.raises(TransitionNotAllowed, match="approval of round 1 .* was withdrawn: the "
                                                   "prototype of .* needs CAD changes"):
        piece_complete(actor=h.designer, piece_id=piece.pk)
    # a new round, approved, lets it go on to a second prototype
    approve_design(h, line)
    assert selectors.line_state(line).approved
    piece_complete(actor=h.designer, piece_id=piece.pk)
    assert open_run(piece).step == StepKind.PROTOTYPING and open_run(piece).attempt == 2


def test_changes_needed_without_a_design_step_to_go_back_to(house_setup):
    h = house_setup
    piece = h.launched_piece(lines=[custom_line()])
    step_run_skip(actor=h.manager, run_id=piece.runs.get(step=StepKind.DESIGN).pk,
                  reason="exact_reproduction", comment="Same CAD as last year")
    h.walk(piece, to=StepKind.PROTOTYPING, arrive=True)
    piece_start(actor=h.caster_member, piece_id=piece.pk)
    with pytest.raises(TransitionNotAllowed, match="no design step done to go back to"):
        services.prototype_record(actor=h.designer, piece_id=piece.pk, method="wax_print",
                                  result="changes_needed", reason="x", fit_ok=True)
    assert piece.runs.count() == 7


def test_the_support_round_is_what_a_client_would_do(house_setup, at_design):
    h = house_setup
    rnd = sent_round(h, at_design.line)
    assert rnd.status == RoundStatus.SENT and rnd.files.get().visibility == "client"
    assert sent_round(h, at_design.line) == rnd  # the round waiting is reused


@pytest.mark.parametrize("kind,make", [("render", lambda: stl_file("ring.png.stl")),
                                       ("render", lambda: pdf_file("render.pdf")),
                                       ("cad", lambda: render_file("model.png")),
                                       ("cad", lambda: pdf_file("drawing.pdf"))])
def test_a_render_is_an_image_and_a_cad_file_a_model(house_setup, at_design, kind, make):
    h = house_setup
    rnd = new_round(h, at_design.line)
    before = Document.objects.count()
    with pytest.raises(ValidationFailed, match="is neither") as exc:
        services.design_round_add_file(actor=h.designer, round_id=rnd.pk, uploaded_file=make(),
                                       kind=kind)
    assert exc.value.details == {"field": "file"}
    assert Document.objects.count() == before and not rnd.files.exists()


@pytest.mark.parametrize("label", ["design", "stonesetting", "finishing", "quality", "shipping"])
def test_the_models_messages_are_translated(label):
    """A constraint's message and an append-only record's refusal are shown to users: they go
    through the translations (lazily, in the reader's language)."""
    from django.apps import apps
    from django.utils.functional import Promise

    for model in apps.get_app_config(label).get_models():
        for constraint in model._meta.constraints:
            assert isinstance(constraint.violation_error_message, Promise), (
                model.__name__, constraint.name)
        if "append_only_message" in vars(model):
            assert isinstance(model.append_only_message, Promise), model.__name__

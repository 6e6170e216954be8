"""The design pages' forms: they parse input; the services decide."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from etabli.documents.models import Visibility

from .models import PrototypeMethod, PrototypeResult

ROUND_FILE_ACCEPT = ".png,.jpg,.jpeg,.webp,.stl,.obj,.3dm,.pdf"


def _text(label, help_text="", rows: int = 3, required: bool = False):
    return forms.CharField(label=label, required=required, max_length=4000, help_text=help_text,
                           widget=forms.Textarea(attrs={"rows": rows}))


def _grams(label, help_text=""):
    return forms.DecimalField(label=label, required=False, min_value=0, max_digits=10,
                              decimal_places=3, help_text=help_text,
                              widget=forms.NumberInput(attrs={"step": "0.001",
                                                              "inputmode": "decimal"}))


def _count(label):
    return forms.IntegerField(label=label, required=False, min_value=0, max_value=100_000,
                              widget=forms.NumberInput(attrs={"inputmode": "numeric"}))


class BriefForm(forms.Form):
    client_intent = _text(_("Client's intent"), _("What the client wants the piece to be and "
                                                  "to say; the occasion; who will wear it."),
                          rows=4)
    technical_constraints = _text(_("Technical constraints"),
                                  _("Size, wear, stones supplied by the client, setting, "
                                    "clasp, hallmarking…"))
    aesthetic_constraints = _text(_("Aesthetic constraints"),
                                  _("Style, references, finish, what to avoid."))
    budget_metal_g = _grams(_("Metal budget (g per piece)"),
                            _("Estimated metal weight of one finished piece."))
    budget_stone_count = _count(_("Stones (per piece)"))
    budget_stone_ct = _grams(_("Stone weight (ct per piece)"))
    target_price = forms.DecimalField(label=_("Target price"), required=False, min_value=0,
                                      max_digits=12, decimal_places=2)

    def __init__(self, *args, sees_prices: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if not sees_prices:
            del self.fields["target_price"]


class RoundForm(forms.Form):
    designer_note = _text(_("Note for the client"),
                          _("What this round shows, what changed since the last one."))
    estimated_metal_g = _grams(_("Estimated metal (g)"),
                               _("Leave empty to take it from the CAD mesh (STL or OBJ)."))
    estimated_stone_count = _count(_("Estimated stones"))
    estimated_stone_ct = _grams(_("Estimated stone weight (ct)"))


class RoundFileForm(forms.Form):
    file = forms.FileField(label=_("File"),
                           widget=forms.ClearableFileInput(attrs={"accept": ROUND_FILE_ACCEPT}),
                           error_messages={"required": _("Choose a file.")},
                           help_text=_("Renders (PNG, JPEG, WebP) or CAD files (STL, OBJ, "
                                       "3DM)."))
    kind = forms.ChoiceField(label=_("Kind"), choices=[("render", _("Render")),
                                                      ("cad", _("CAD file"))])
    visibility = forms.ChoiceField(
        label=_("Who sees it"), required=False,
        choices=[("", _("Renders: the client; CAD files: the workshops"))]
        + list(Visibility.choices))
    replaces = forms.TypedChoiceField(label=_("New version of"), required=False, coerce=int,
                                      empty_value=None)

    def __init__(self, *args, previous=(), **kwargs):
        super().__init__(*args, **kwargs)
        if previous:
            self.fields["replaces"].choices = [("", _("— a new file —"))] + [
                (d.pk, f"{d.original_name} (v{getattr(d, 'version', 1)})") for d in previous]
        else:
            del self.fields["replaces"]


class OnBehalfForm(forms.Form):
    """The house records the client's decision (sales, production manager, administrator)."""

    decision = forms.ChoiceField(label=_("The client's decision"), widget=forms.RadioSelect,
                                 choices=[("approve", _("Approved the round")),
                                          ("request_changes", _("Asked for changes"))])
    comment = _text(_("How the client told us, and what they said"), required=False)
    file = forms.FileField(label=_("The client's written approval"), required=False,
                           help_text=_("Signed renders, the e-mail or the letter (PDF or "
                                       "photo). Needed to record an approval."))
    document = forms.TypedChoiceField(label=_("…or a document already on the order"),
                                      required=False, coerce=int, empty_value=None)

    def __init__(self, *args, documents=(), **kwargs):
        super().__init__(*args, **kwargs)
        if documents:
            self.fields["document"].choices = [("", _("— none —"))] + [
                (d.pk, d.original_name) for d in documents]
        else:
            del self.fields["document"]


class ClientDecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "approve"),
                                          ("request_changes", "request_changes")],
                                 widget=forms.HiddenInput)
    comment = _text(_("Your comments"), _("Needed when you ask for changes: say what should "
                                          "change."), rows=4)


FIT_CHOICES = [("", _("— not tested —")), ("yes", _("Fits")), ("no", _("Does not fit"))]


class PrototypeForm(forms.Form):
    method = forms.ChoiceField(label=_("How it was made"), choices=PrototypeMethod.choices)
    fit = forms.ChoiceField(label=_("Fit test"), required=False, choices=FIT_CHOICES)
    fit_notes = _text(_("Fit notes"), rows=2)
    result = forms.ChoiceField(label=_("Result"), choices=PrototypeResult.choices)
    reason = _text(_("What must change in the CAD"), _("Needed when CAD changes are needed: "
                                                        "the piece goes back to design."))
    notes = _text(_("Notes"), rows=2)

    def __init__(self, *args, ring_size: str = "", workshop: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if ring_size:
            self.fields["fit"].required = True
            self.fields["fit"].help_text = _("Try it on a ring gauge: size %(size)s.") % {
                "size": ring_size}
        if workshop:
            # Sending the piece back to design is the house's decision.
            self.fields["result"].choices = [(PrototypeResult.APPROVED,
                                              PrototypeResult.APPROVED.label)]
            del self.fields["reason"]

    def fit_ok(self) -> bool | None:
        return {"yes": True, "no": False}.get(self.cleaned_data.get("fit") or "")

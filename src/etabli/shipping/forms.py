"""The delivery pages' forms: they parse what a person typed; the services decide."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .models import CaseKind, Protection, ReceptionOutcome, ShippingMethod


def _amount_input():
    return forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"})


def _pieces_field(label):
    return forms.MultipleChoiceField(label=label, widget=forms.CheckboxSelectMultiple)


def piece_choices(pieces) -> list[tuple[str, str]]:
    return [(str(p.pk), f"{p.serial} — {p.line.description}") for p in pieces]


class RefForm(forms.Form):
    client_ref = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)


class ShipmentForm(RefForm):
    pieces = _pieces_field(gettext_lazy("Pieces"))
    method = forms.ChoiceField(label=gettext_lazy("Method"), choices=ShippingMethod.choices)
    carrier = forms.CharField(label=gettext_lazy("Carrier"), required=False, max_length=80,
                              help_text=gettext_lazy("e.g. Brink's, Malca-Amit, Ferrari, "
                                                     "Chronopost"))
    tracking_number = forms.CharField(label=gettext_lazy("Tracking number"), required=False,
                                      max_length=60,
                                      help_text=gettext_lazy("Can be given when it ships."))
    address = forms.CharField(label=gettext_lazy("Delivery address"), required=False,
                              max_length=4000, widget=forms.Textarea(attrs={"rows": 3}),
                              help_text=gettext_lazy("Empty: the client's address (the "
                                                     "house's for a pickup)."))
    signature_required = forms.BooleanField(label=gettext_lazy("Signature required on "
                                                               "delivery"), required=False,
                                            initial=True)
    neutral_outer_packaging = forms.BooleanField(
        label=gettext_lazy("Neutral outer packaging (nothing says jewellery)"), required=False,
        initial=True)
    note = forms.CharField(label=gettext_lazy("Note for the house"), required=False,
                           max_length=4000, widget=forms.Textarea(attrs={"rows": 2}))
    declared_value = forms.CharField(label=gettext_lazy("Declared value"), required=False,
                                     max_length=20, widget=_amount_input(),
                                     help_text=gettext_lazy("Empty: the pieces' agreed prices."))
    insurance_value = forms.CharField(label=gettext_lazy("Insured for"), required=False,
                                      max_length=20, widget=_amount_input(),
                                      help_text=gettext_lazy("Empty: the declared value."))

    def __init__(self, *args, pieces=(), sees_prices: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["pieces"].choices = piece_choices(pieces)
        if not sees_prices:
            del self.fields["declared_value"]
            del self.fields["insurance_value"]


class ShipmentEditForm(forms.Form):
    method = forms.ChoiceField(label=gettext_lazy("Method"), choices=ShippingMethod.choices)
    carrier = forms.CharField(label=gettext_lazy("Carrier"), required=False, max_length=80)
    tracking_number = forms.CharField(label=gettext_lazy("Tracking number"), required=False,
                                      max_length=60)
    address = forms.CharField(label=gettext_lazy("Delivery address"), required=False,
                              max_length=4000, widget=forms.Textarea(attrs={"rows": 3}))
    signature_required = forms.BooleanField(label=gettext_lazy("Signature required on "
                                                               "delivery"), required=False)
    neutral_outer_packaging = forms.BooleanField(
        label=gettext_lazy("Neutral outer packaging (nothing says jewellery)"), required=False)
    note = forms.CharField(label=gettext_lazy("Note for the house"), required=False,
                           max_length=4000, widget=forms.Textarea(attrs={"rows": 2}))


class AmountsForm(forms.Form):
    declared_value = forms.CharField(label=gettext_lazy("Declared value"), required=False,
                                     max_length=20, widget=_amount_input())
    insurance_value = forms.CharField(label=gettext_lazy("Insured for"), required=False,
                                      max_length=20, widget=_amount_input())


class PackForm(forms.Form):
    """A case and a protection for each piece on the shipment, and the outer packaging."""

    neutral_outer_packaging = forms.BooleanField(
        label=gettext_lazy("Neutral outer packaging (nothing says jewellery)"), required=False)

    def __init__(self, *args, items=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.rows = []
        for item in items:
            pid = item.piece_id
            case = forms.ChoiceField(label=_("Case for %(serial)s") % {"serial": item.piece.serial},
                                     choices=[("", "—")] + list(CaseKind.choices),
                                     initial=item.case, required=False)
            protection = forms.ChoiceField(label=_("Protection"),
                                           choices=[("", "—")] + list(Protection.choices),
                                           initial=item.protection, required=False)
            self.fields[f"case_{pid}"] = case
            self.fields[f"protection_{pid}"] = protection
            self.rows.append((item, self[f"case_{pid}"], self[f"protection_{pid}"]))

    def packed(self) -> list[dict]:
        """The pieces given a case and a protection (a half-filled row is an error)."""
        out = []
        for item, case, protection in self.rows:
            c = self.cleaned_data.get(case.name)
            p = self.cleaned_data.get(protection.name)
            if c and p:
                out.append({"piece_id": item.piece_id, "case": c, "protection": p})
            elif c or p:
                self.add_error(case.name if not c else protection.name,
                               _("Choose both the case and the protection."))
        return out


class AddPiecesForm(forms.Form):
    pieces = _pieces_field(gettext_lazy("Pieces to add"))

    def __init__(self, *args, pieces=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["pieces"].choices = piece_choices(pieces)


class ShipForm(forms.Form):
    carrier = forms.CharField(label=gettext_lazy("Carrier"), required=False, max_length=80)
    tracking_number = forms.CharField(label=gettext_lazy("Tracking number"), required=False,
                                      max_length=60,
                                      widget=forms.TextInput(attrs={"autocomplete": "off"}))


class DeliverForm(forms.Form):
    signed_by = forms.CharField(label=gettext_lazy("Signed for by"), required=False,
                                max_length=120,
                                help_text=gettext_lazy("The name on the carrier's proof of "
                                                       "delivery."))
    comment = forms.CharField(label=gettext_lazy("Comment"), required=False, max_length=4000,
                              widget=forms.Textarea(attrs={"rows": 2}))


class CancelForm(forms.Form):
    reason = forms.CharField(label=gettext_lazy("Why is it cancelled?"), max_length=4000,
                             widget=forms.Textarea(attrs={"rows": 2}))


class InvoicePricesForm(forms.Form):
    def __init__(self, *args, lines=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.rows = []
        for line in lines:
            name = f"price_{line.pk}"
            self.fields[name] = forms.CharField(
                label=_("Unit price, line %(n)s") % {"n": line.position}, required=False,
                max_length=20, initial=line.unit_price, widget=_amount_input())
            self.rows.append((line, self[name]))


class ReceptionForm(forms.Form):
    """The reception, by the client in the portal or by the house for them."""

    outcome = forms.ChoiceField(
        label=gettext_lazy("What arrived"), widget=forms.RadioSelect,
        choices=[(ReceptionOutcome.ACCEPTED, gettext_lazy("Everything is here and as ordered")),
                 (ReceptionOutcome.RESERVATIONS, gettext_lazy("I have reservations"))],
        initial=ReceptionOutcome.ACCEPTED, required=False)
    note = forms.CharField(
        label=gettext_lazy("Anything to tell us about the delivery?"), required=False,
        max_length=4000, widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("Optional: the state of the parcel, a missing item…"))
    reservation = forms.CharField(
        label=gettext_lazy("What is not right?"), required=False, max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("About the order as a whole; or describe a piece below."))

    def __init__(self, *args, pieces=(), on_behalf: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.piece_rows = []
        for piece in pieces:
            name = f"reservation_{piece.pk}"
            self.fields[name] = forms.CharField(
                label=_("About %(serial)s (%(description)s)")
                % {"serial": piece.serial, "description": piece.line.description},
                required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 2}))
            self.piece_rows.append((piece, self[name]))
        if on_behalf:
            self.fields["outcome"].label = _("What the client said")
            self.fields["outcome"].choices = [
                (ReceptionOutcome.ACCEPTED, _("Everything arrived and is as ordered")),
                (ReceptionOutcome.RESERVATIONS, _("The client has reservations"))]
            self.fields["note"].label = _("How did the client tell you?")
            self.fields["note"].help_text = _("Required: by phone, by e-mail, in person… and "
                                              "when.")

    def reservations(self) -> list[dict]:
        data = self.cleaned_data
        rows = []
        if data.get("reservation"):
            rows.append({"text": data["reservation"]})
        for piece, field in self.piece_rows:
            text = data.get(field.name)
            if text:
                rows.append({"piece_id": piece.pk, "text": text})
        return rows

    def clean_outcome(self):
        # Nothing chosen: the pieces are here and as ordered (the form's default).
        return self.cleaned_data.get("outcome") or ReceptionOutcome.ACCEPTED

    def clean(self):
        data = super().clean()
        if data.get("outcome") == ReceptionOutcome.ACCEPTED and self.reservations():
            self.add_error("outcome", _("You described a problem: choose reservations, or "
                                        "clear the description."))
        return data


class ResolveForm(forms.Form):
    resolution = forms.CharField(label=gettext_lazy("How was it resolved?"), max_length=4000,
                                 widget=forms.Textarea(attrs={"rows": 2}))

"""Forms of the house's materials pages.

They only parse what a person typed; the materials services decide what is allowed and say why
not (their refusals are shown next to the field they name, see `views._show`).
"""

from __future__ import annotations

import uuid

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import LocationKind, Metal, SlipKind, SlipStatus

DATETIME_INPUT = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]
ISSUE_WEIGHT_LINES = 3  # grain, sheet, wire… of one alloy on one slip
MAX_SERIALS = 200


def weight_field(label, *, required=True, help_text=""):
    return forms.DecimalField(
        label=label, required=required, max_digits=12, decimal_places=3, help_text=help_text,
        widget=forms.NumberInput(attrs={"step": "0.001", "inputmode": "decimal",
                                        "autocomplete": "off"}))


class RefForm(forms.Form):
    """A hidden id so that a form sent twice writes once."""

    client_ref = forms.CharField(widget=forms.HiddenInput, required=False, max_length=64)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("client_ref", uuid.uuid4().hex)


def _choices(rows, blank=None):
    out = [("", blank)] if blank is not None else []
    return out + list(rows)


# ---------------------------------------------------------------------------------------------
# home and reports


class BalanceFilterForm(forms.Form):
    at = forms.DateTimeField(
        label=_("As of"), required=False, input_formats=DATETIME_INPUT,
        help_text=_("Empty for now."),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"))
    price_date = forms.DateField(label=_("Prices of"), required=False,
                                 help_text=_("Empty for the day of the balances."),
                                 widget=forms.DateInput(attrs={"type": "date"}))


class PeriodForm(forms.Form):
    start = forms.DateField(label=_("From"), required=False,
                            widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=_("To"), required=False,
                          widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            self.add_error("end", _("The end of the period is before its start."))
        return data


# ---------------------------------------------------------------------------------------------
# prices, purchases, allowances, alloys


class PriceForm(forms.Form):
    metal = forms.ChoiceField(label=_("Metal"), choices=Metal.choices)
    priced_on = forms.DateField(label=_("Date"), widget=forms.DateInput(attrs={"type": "date"}))
    price_per_fine_g = forms.DecimalField(
        label=_("Price of a fine gram"), max_digits=16, decimal_places=4,
        widget=forms.NumberInput(attrs={"step": "0.0001", "inputmode": "decimal"}))
    currency = forms.CharField(label=_("Currency"), max_length=3, required=False)
    source = forms.CharField(label=_("Source"), max_length=80, required=False,
                             help_text=_("e.g. LBMA fixing, supplier quote."))


class PriceImportForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_("Columns date, metal, price_per_fine_g and optionally currency; "
                    "all lines are imported or none."),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}))


class PurchaseForm(RefForm):
    alloy = forms.ChoiceField(label=_("Alloy"))
    weight_g = weight_field(_("Weight (g)"))
    supplier = forms.CharField(label=_("Supplier"), max_length=100, required=False)
    reference = forms.CharField(label=_("Invoice or reference"), max_length=100, required=False)

    def __init__(self, *args, alloys=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["alloy"].choices = _choices(((a.code, _(a.name)) for a in alloys), "—")


class AllowanceForm(forms.Form):
    workshop_id = forms.TypedChoiceField(label=_("Workshop"), coerce=int, required=False,
                                         empty_value=None)
    operation = forms.ChoiceField(label=_("Operation"))
    percent = forms.DecimalField(label=_("Allowance (% of the metal issued)"), max_digits=7,
                                 decimal_places=2,
                                 widget=forms.NumberInput(attrs={"step": "0.01"}))

    def __init__(self, *args, workshops=(), operations=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["workshop_id"].choices = _choices(((w.pk, w.name) for w in workshops),
                                                      _("House default (every workshop)"))
        self.fields["operation"].choices = _choices(((o.code, _(o.name)) for o in operations), "—")


class AlloyForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=80)
    colour = forms.CharField(label=_("Colour"), max_length=30, required=False)
    density_g_cm3 = forms.DecimalField(label=_("Density (g/cm³)"), max_digits=6, decimal_places=2,
                                       widget=forms.NumberInput(attrs={"step": "0.01"}))


# ---------------------------------------------------------------------------------------------
# slips


class SlipFilterForm(forms.Form):
    status = forms.ChoiceField(label=_("Status"), required=False)
    kind = forms.ChoiceField(label=_("Kind"), required=False)
    workshop_id = forms.TypedChoiceField(label=_("Workshop"), required=False, coerce=int,
                                         empty_value=None)
    flagged = forms.BooleanField(label=_("Flagged only"), required=False)

    def __init__(self, *args, workshops=(), **kwargs):
        super().__init__(*args, **kwargs)
        everything = _("All")
        self.fields["status"].choices = _choices(SlipStatus.choices, everything)
        self.fields["kind"].choices = _choices(SlipKind.choices, everything)
        self.fields["workshop_id"].choices = _choices(((w.pk, w.name) for w in workshops),
                                                      everything)


class IssueForm(RefForm):
    workshop_id = forms.TypedChoiceField(label=_("Workshop"), coerce=int)
    operation = forms.ChoiceField(label=_("Operation"), required=False,
                                  help_text=_("Losses are measured against the allowance of "
                                              "this operation."))
    alloy = forms.ChoiceField(label=_("Alloy"))
    serials = forms.CharField(
        label=_("For pieces (serial numbers)"), required=False, max_length=4000,
        help_text=_("Optional: the serials of the pieces the metal is for, separated by spaces "
                    "or commas."),
        widget=forms.Textarea(attrs={"rows": 2}))
    comment = forms.CharField(label=_("Comment"), required=False, max_length=2000,
                              widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, workshops=(), operations=(), alloys=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["workshop_id"].choices = _choices(((w.pk, w.name) for w in workshops), "—")
        self.fields["operation"].choices = _choices(((o.code, _(o.name)) for o in operations), "—")
        self.fields["alloy"].choices = _choices(((a.code, _(a.name)) for a in alloys), "—")
        for i in range(1, ISSUE_WEIGHT_LINES + 1):
            self.fields[f"weight_g_{i}"] = weight_field(
                _("Weight, line %(n)s (g)") % {"n": i}, required=i == 1,
                help_text=_("Each lot weighed on its own (grain, sheet, wire).") if i == 1
                else "")

    def weight_lines(self) -> list[str]:
        return [f"weight_g_{i}" for i in range(1, ISSUE_WEIGHT_LINES + 1)]


def split_serials(text: str) -> list[str]:
    return [s for s in (text or "").replace(",", " ").replace(";", " ").split() if s]


class ReceiveForm(forms.Form):
    """One weight per metal line (count and carats per stone line), prefilled empty: whoever
    receives the slip weighs what arrived."""

    comment = forms.CharField(label=_("Comment"), required=False, max_length=2000,
                              widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, lines=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.lines = []
        for ln in lines:
            if ln.lot_id is None:
                name = f"line_{ln.pk}"
                label = (_("%(piece)s, weighed whole (g)") % {"piece": ln.piece.serial}
                         if ln.piece_id else _("%(kind)s (g)") % {"kind": ln.get_kind_display()})
                self.fields[name] = weight_field(label)
                self.lines.append((ln, [name]))
            else:
                self.fields[f"line_{ln.pk}_count"] = forms.IntegerField(
                    label=_("Stones of lot %(lot)s received") % {"lot": ln.lot.number},
                    min_value=0, max_value=100000)
                self.fields[f"line_{ln.pk}_carats"] = forms.DecimalField(
                    label=_("Carats received"), required=False, max_digits=10, decimal_places=3,
                    min_value=0, widget=forms.NumberInput(attrs={"step": "0.001"}))
                self.lines.append((ln, [f"line_{ln.pk}_count", f"line_{ln.pk}_carats"]))
        self.order_fields([n for _ln, names in self.lines for n in names] + ["comment"])

    def line_payload(self) -> list[dict]:
        data = self.cleaned_data
        out = []
        for ln, names in self.lines:
            if len(names) == 1:
                out.append({"line_id": ln.pk, "weight_g": data[names[0]]})
            else:
                out.append({"line_id": ln.pk, "count": data[names[0]],
                            "carats": data.get(names[1])})
        return out


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=240)


# ---------------------------------------------------------------------------------------------
# stock-takes


COUNTABLE_KINDS = (LocationKind.VAULT, LocationKind.WORKSHOP, LocationKind.REFINER)


class StockTakeLocationForm(forms.Form):
    location_id = forms.TypedChoiceField(label=_("Place counted"), coerce=int)

    def __init__(self, *args, locations=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["location_id"].choices = _choices(((loc.pk, label) for loc, label in
                                                       locations), "—")


class StockTakeCountForm(forms.Form):
    """One counted weight per alloy; an alloy left empty is not counted."""

    location_id = forms.IntegerField(widget=forms.HiddenInput)

    def __init__(self, *args, alloys=(), book=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.rows = []
        for alloy in alloys:
            name = f"count_{alloy.code}"
            self.fields[name] = weight_field(alloy.name, required=False)
            self.rows.append((alloy, name, (book or {}).get(alloy.pk)))

    def count_rows(self) -> list:
        return [(alloy, self[name], book) for alloy, name, book in self.rows]

    def counts(self) -> dict:
        return {alloy.code: self.cleaned_data[name] for alloy, name, _book in self.rows
                if self.cleaned_data.get(name) is not None}


class StockTakePostForm(forms.Form):
    reason = forms.CharField(label=_("Reason for the adjustment"), required=False,
                             max_length=2000, widget=forms.Textarea(attrs={"rows": 2}),
                             help_text=_("Required when the count differs from the book."))


# ---------------------------------------------------------------------------------------------
# casting


class CastingTreeForm(forms.Form):
    workshop_id = forms.TypedChoiceField(label=_("Caster"), coerce=int)
    alloy = forms.ChoiceField(label=_("Alloy"))
    serials = forms.CharField(label=_("Pieces on the tree (serial numbers)"), max_length=4000,
                              help_text=_("Separated by spaces or commas."),
                              widget=forms.Textarea(attrs={"rows": 2}))
    wax_weight_g = weight_field(_("Wax weight of the tree (g)"))
    wax_density_g_cm3 = forms.DecimalField(label=_("Wax density (g/cm³)"), max_digits=6,
                                           decimal_places=3, initial="1.000",
                                           widget=forms.NumberInput(attrs={"step": "0.001"}))
    sprue_allowance_percent = forms.DecimalField(
        label=_("Sprue and button allowance (%)"), max_digits=6, decimal_places=2, initial="30",
        widget=forms.NumberInput(attrs={"step": "0.1"}))
    comment = forms.CharField(label=_("Comment"), required=False, max_length=2000,
                              widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, workshops=(), alloys=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["workshop_id"].choices = _choices(((w.pk, w.name) for w in workshops), "—")
        self.fields["alloy"].choices = _choices(((a.code, _(a.name)) for a in alloys), "—")


class CastingIssueForm(RefForm):
    weight_g = weight_field(_("Metal issued (g)"), required=False,
                            help_text=_("Empty for the metal needed."))

"""The refiner page: scrap sent from the vault to be refined, and the refiner's statement
booked as fine metal back into the vault (the refining loss in fine grams)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from etabli.core.errors import DomainError

from . import services
from .access import manages_materials
from .forms import RefForm, _choices, weight_field
from .models import MaterialSlip, SlipKind, SlipStatus
from .views import _alloys, _invalid, _require, _show, house_materials_page

LINES = 3


class RefinerSendForm(RefForm):
    comment = forms.CharField(label=_lazy("Comment"), max_length=2000, required=False)

    def __init__(self, *args, alloys=(), **kwargs):
        super().__init__(*args, **kwargs)
        choices = _choices(((a.code, _lazy(a.name)) for a in alloys), "—")
        for i in range(1, LINES + 1):
            self.fields[f"alloy_{i}"] = forms.ChoiceField(label=_lazy("Alloy"), choices=choices,
                                                          required=i == 1)
            self.fields[f"weight_g_{i}"] = weight_field(_lazy("Weight (g)"), required=i == 1)

    def lines(self) -> list[dict]:
        d = self.cleaned_data
        return [{"alloy": d[f"alloy_{i}"], "weight_g": d[f"weight_g_{i}"]}
                for i in range(1, LINES + 1) if d.get(f"alloy_{i}") and d.get(f"weight_g_{i}")]

    def line_fields(self):
        return [(self[f"alloy_{i}"], self[f"weight_g_{i}"]) for i in range(1, LINES + 1)]


class RefinerSettleForm(forms.Form):
    slip_id = forms.IntegerField(widget=forms.HiddenInput)
    alloy = forms.ChoiceField(label=_lazy("Fine metal returned"))
    weight_g = weight_field(_lazy("Weight returned (g)"))

    def __init__(self, *args, alloys=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["alloy"].choices = _choices(((a.code, _lazy(a.name)) for a in alloys), "—")


@house_materials_page
def refiner(request):
    user = request.user
    manages = manages_materials(user)
    alloys = _alloys()
    send_form = RefinerSendForm(alloys=alloys)
    settle_form = None
    settle_for = None
    if request.method == "POST":
        _require(manages)
        if request.POST.get("action") == "settle":
            settle_form = RefinerSettleForm(request.POST, alloys=alloys)
            if settle_form.is_valid():
                d = settle_form.cleaned_data
                settle_for = d["slip_id"]
                try:
                    slip = services.refiner_settle(
                        actor=user, slip_id=d["slip_id"],
                        returned=[{"alloy": d["alloy"], "weight_g": d["weight_g"]}])
                except DomainError as exc:
                    if exc.code == "already_settled":
                        messages.info(request, exc.message)
                        return redirect("materials:refiner")
                    _show(request, settle_form, exc)
                else:
                    messages.success(request, _("Slip %(slip)s settled: %(loss)s g of fine metal "
                                                "lost in refining.")
                                     % {"slip": slip.number, "loss": slip.loss_fine_g})
                    return redirect("materials:refiner")
            else:
                settle_for = request.POST.get("slip_id")
                _invalid(request)
        else:
            send_form = RefinerSendForm(request.POST, alloys=alloys)
            if send_form.is_valid():
                try:
                    slip = services.refiner_send(actor=user, lines=send_form.lines(),
                                                 comment=send_form.cleaned_data["comment"],
                                                 client_ref=send_form.cleaned_data["client_ref"]
                                                 or None)
                except DomainError as exc:
                    _show(request, send_form, exc)
                else:
                    messages.success(request, _("Slip %(slip)s: sent to the refiner.")
                                     % {"slip": slip.number})
                    return redirect("materials:refiner")
            else:
                _invalid(request)
    slips = list(MaterialSlip.objects.visible_to(user).filter(kind=SlipKind.REFINER)
                 .prefetch_related("lines__alloy").order_by("-sent_at", "-id")[:50])
    rows = []
    for slip in slips:
        form = None
        if manages and slip.status == SlipStatus.SENT:
            form = settle_form if settle_form is not None and str(settle_for) == str(slip.pk) \
                else RefinerSettleForm(initial={"slip_id": slip.pk}, alloys=alloys)
        rows.append({"slip": slip, "lines": list(slip.lines.all()), "form": form})
    return render(request, "materials/refiner.html",
                  {"send_form": send_form if manages else None, "rows": rows})

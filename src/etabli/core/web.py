"""Helpers shared by the pages: errors next to fields, the role's home, paging."""

from __future__ import annotations

from django import forms
from django.core.paginator import Paginator
from django.urls import reverse

from etabli.accounts.models import Role

from .errors import DomainError


def role_home(user) -> str:
    if user.role == Role.WORKSHOP:
        return reverse("workshop:queue")
    if user.role == Role.CLIENT:
        return reverse("portal:orders")
    if user.is_house_wide:
        return reverse("production:dashboard")
    return reverse("production:pieces")


def form_error(form: forms.Form, exc: DomainError) -> None:
    """Show a service's refusal next to the field it names, else at the top of the form."""
    field = (exc.details or {}).get("field")
    if field and field in form.fields:
        form.add_error(field, exc.message)
    else:
        form.add_error(None, exc.message)


def page_of(request, queryset, per_page: int = 50):
    """The requested page of a list (`?page=`), never an error for a bad page number."""
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))

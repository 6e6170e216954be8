"""Report pages under /reports/."""

from django.urls import path

from . import views

app_name = "reports"

urlpatterns = [
    path("", views.report, name="report"),
    path("export.xlsx", views.export_xlsx, name="xlsx"),
    path("export/<slug:table>.xlsx", views.export_xlsx, name="table_xlsx"),
    path("export/<slug:table>.csv", views.export_csv, name="table_csv"),
    path("monthly.pdf", views.monthly_pdf, name="monthly_pdf"),
]

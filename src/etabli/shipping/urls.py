"""Delivery pages (mounted at /delivery/)."""

from django.urls import path

from . import views

app_name = "shipping"

urlpatterns = [
    path("", views.shipment_list, name="list"),
    path("shipments/<int:shipment_id>/", views.shipment_detail, name="shipment"),
    path("shipments/<int:shipment_id>/delivery-slip.pdf", views.slip_pdf, name="slip_pdf"),
    path("shipments/<int:shipment_id>/<slug:action>/", views.shipment_action,
         name="shipment_action"),
    path("orders/<int:order_id>/", views.order_delivery, name="order"),
    path("orders/<int:order_id>/new/", views.shipment_new, name="new"),
    path("orders/<int:order_id>/reception/", views.order_reception, name="reception"),
    path("orders/<int:order_id>/invoice/", views.invoice_page, name="invoice"),
    path("orders/<int:order_id>/invoice/<slug:action>/", views.invoice_action,
         name="invoice_action"),
    path("orders/<int:order_id>/invoice.pdf", views.invoice_pdf, name="invoice_pdf"),
    path("orders/<int:order_id>/certificates.pdf", views.certificates_pdf,
         name="certificates_pdf"),
    path("orders/<int:order_id>/care-card.pdf", views.care_card_pdf, name="care_card_pdf"),
    path("follow-ups/<int:follow_up_id>/resolve/", views.follow_up_resolve,
         name="resolve"),
]

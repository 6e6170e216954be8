"""Alert pages under /alerts/."""

from django.urls import path

from . import views

app_name = "alerts"

urlpatterns = [
    path("", views.alert_list, name="list"),
    path("rules/", views.rule_list, name="rules"),
    path("rules/<str:kind>/", views.rule_edit, name="rule"),
    path("<int:alert_id>/", views.alert_page, name="detail"),
    path("<int:alert_id>/acknowledge/", views.acknowledge, name="acknowledge"),
    path("<int:alert_id>/resolve/", views.resolve, name="resolve"),
    path("<int:alert_id>/assign/", views.assign, name="assign"),
]

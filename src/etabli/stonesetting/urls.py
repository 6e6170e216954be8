from django.urls import path

from . import views

app_name = "stonesetting"

urlpatterns = [
    path("", views.plan_list, name="plans"),
    path("pieces/<int:piece_id>/", views.plan_page, name="plan"),
    path("pieces/<int:piece_id>/create/", views.plan_create, name="create"),
    path("pieces/<int:piece_id>/groups/", views.group_add, name="group_add"),
    path("pieces/<int:piece_id>/groups/<int:group_id>/", views.group_edit, name="group_edit"),
    path("pieces/<int:piece_id>/groups/<int:group_id>/remove/", views.group_remove,
         name="group_remove"),
    path("pieces/<int:piece_id>/check/", views.plan_check, name="check"),
    path("pieces/<int:piece_id>/reopen/", views.plan_reopen, name="reopen"),
    path("pieces/<int:piece_id>/control/", views.control_record, name="control"),
]

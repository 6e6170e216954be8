"""The house's materials pages, under /materials/."""

from django.urls import path

from . import refiner_views, views

app_name = "materials"

urlpatterns = [
    path("", views.home, name="home"),
    path("prices/", views.prices, name="prices"),
    path("prices/import/", views.prices_import, name="prices_import"),
    path("purchase/", views.purchase, name="purchase"),
    path("allowances/", views.allowances, name="allowances"),
    path("alloys/", views.alloys, name="alloys"),
    path("slips/", views.slip_list, name="slips"),
    path("slips/new/", views.slip_new, name="slip_new"),
    path("slips/<int:slip_id>/", views.slip_page, name="slip"),
    path("slips/<int:slip_id>/receive/", views.slip_receive, name="slip_receive"),
    path("slips/<int:slip_id>/cancel/", views.slip_cancel, name="slip_cancel"),
    path("slips/<int:slip_id>/settle/", views.slip_settle, name="slip_settle"),
    path("slips/<int:slip_id>/slip.pdf", views.slip_print, name="slip_pdf"),
    path("workshops/<int:workshop_id>/statement/", views.statement, name="statement"),
    path("workshops/<int:workshop_id>/statement.pdf", views.statement_print,
         name="statement_pdf"),
    path("losses/", views.losses, name="losses"),
    path("stock-takes/", views.stock_takes, name="stock_takes"),
    path("stock-takes/new/", views.stock_take_new, name="stock_take_new"),
    path("stock-takes/<int:take_id>/", views.stock_take, name="stock_take"),
    path("stock-takes/<int:take_id>/post/", views.stock_take_post, name="stock_take_post"),
    path("refiner/", refiner_views.refiner, name="refiner"),
    path("casting/", views.casting_list, name="casting_trees"),
    path("casting/new/", views.casting_new, name="casting_new"),
    path("casting/<int:tree_id>/", views.casting_tree, name="casting_tree"),
    path("casting/<int:tree_id>/issue/", views.casting_issue, name="casting_issue"),
]

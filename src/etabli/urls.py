from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from etabli.accounts.views import set_language
from etabli.api import api
from etabli.core.api import api_not_found
from etabli.core.views import home
from etabli.documents.views import download

urlpatterns = [
    path("", home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True),
         name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password/done/", auth_views.PasswordChangeDoneView.as_view(),
         name="password_change_done"),
    path("language/", set_language, name="set_language"),
    path("documents/<str:token>/", download, name="document"),
    path("", include("etabli.production.urls")),
    path("orders/", include("etabli.orders.urls")),
    path("materials/", include("etabli.materials.urls")),
    path("cad/", include("etabli.materials.cad_urls")),
    path("stones/", include("etabli.materials.stone_urls")),
    path("workshop/materials/", include("etabli.materials.workshop_urls")),
    path("workshop/", include("etabli.production.workshop_urls")),
    path("portal/", include("etabli.clients.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    re_path(r"^api/(?P<path>.*)$", api_not_found),
]

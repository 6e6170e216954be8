from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from etabli.accounts.views import set_language
from etabli.api import api
from etabli.core.api import api_not_found
from etabli.core.views import favicon, home
from etabli.documents import views as document_views

urlpatterns = [
    path("", home, name="home"),
    # Browsers and tools that ask for /favicon.ico without reading the page's icon link.
    path("favicon.ico", favicon),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True),
         name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password/done/", auth_views.PasswordChangeDoneView.as_view(),
         name="password_change_done"),
    path("language/", set_language, name="set_language"),
    path("documents/<str:token>/", document_views.download, name="document"),
    path("documents/<str:token>/thumb/", document_views.thumbnail, name="document_thumb"),
    path("documents/<str:token>/info/", document_views.info, name="document_info"),
    path("documents/<str:token>/versions/", document_views.new_version,
         name="document_new_version"),
    path("documents/<str:token>/visibility/", document_views.set_visibility,
         name="document_visibility"),
    path("", include("etabli.production.urls")),
    path("orders/", include("etabli.orders.urls")),
    path("materials/", include("etabli.materials.urls")),
    path("cad/", include("etabli.materials.cad_urls")),
    path("stones/", include("etabli.materials.stone_urls")),
    path("workshop/materials/", include("etabli.materials.workshop_urls")),
    path("workshop/", include("etabli.production.workshop_urls")),
    path("portal/", include("etabli.clients.urls")),
    path("design/", include("etabli.design.urls")),
    path("setting/", include("etabli.stonesetting.urls")),
    path("finishing/", include("etabli.finishing.urls")),
    path("quality/", include("etabli.quality.urls")),
    path("delivery/", include("etabli.shipping.urls")),
    path("alerts/", include("etabli.alerts.urls")),
    path("inbox/", include("etabli.notifications.urls")),
    path("reports/", include("etabli.reports.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    re_path(r"^api/(?P<path>.*)$", api_not_found),
]

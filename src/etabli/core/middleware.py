from django.utils import translation
from django.utils.translation import gettext as _


class UserLanguageMiddleware:
    """Speak the language the user chose (kept on their profile), after LocaleMiddleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.language:
            translation.activate(user.language)
            request.LANGUAGE_CODE = user.language
        return self.get_response(request)


class ApiJsonErrorsMiddleware:
    """Answers under /api/ are JSON even when Django or the router answers first (405)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (request.path.startswith("/api/") and response.status_code == 405
                and not response.get("Content-Type", "").startswith("application/json")):
            from django.http import JsonResponse

            allowed = response.get("Allow", "")
            replacement = JsonResponse(
                {"code": "method_not_allowed",
                 "message": _("%(method)s is not allowed here. Allowed: %(allowed)s.")
                 % {"method": request.method, "allowed": allowed},
                 "details": {"allowed": [m.strip() for m in allowed.split(",") if m.strip()]}},
                status=405)
            if allowed:
                replacement["Allow"] = allowed
            return replacement
        return response

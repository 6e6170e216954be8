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


class BusyDatabaseMiddleware:
    """A database too busy to answer in time (SQLite's "database is locked" after its busy
    timeout, many people writing at once; PostgreSQL ending one of two transactions that
    waited for each other) is a 503 with Retry-After, not a 500: nothing was written (the
    request's transaction rolled back) and the same request can simply be sent again."""

    BUSY = ("database is locked", "deadlock detected")

    RETRY_AFTER_S = 5

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        from django.db import OperationalError
        from django.http import HttpResponse, JsonResponse

        if not (isinstance(exception, OperationalError)
                and any(busy in str(exception).lower() for busy in self.BUSY)):
            return None
        message = _("Établi is busy: too many changes at once. Nothing was saved; try again in "
                    "a few seconds.")
        if request.path.startswith("/api/"):
            response = JsonResponse({"code": "busy", "message": message, "details": {}},
                                    status=503)
        else:
            response = HttpResponse(message, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(self.RETRY_AFTER_S)
        return response

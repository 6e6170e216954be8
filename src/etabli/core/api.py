"""Shared API plumbing: authentication, errors as JSON, pagination."""


import functools
import json
import logging

from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig
from django.db import IntegrityError
from django.http import Http404, HttpRequest
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from ninja import Field, NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.pagination import LimitOffsetPagination
from ninja.security import HttpBearer

from .errors import DomainError

log = logging.getLogger("etabli.api")


class TokenAuth(HttpBearer):
    """`Authorization: Bearer etb_…` with a per-user token (stored hashed)."""

    def authenticate(self, request: HttpRequest, token: str):
        from etabli.accounts.services import token_authenticate

        user = token_authenticate(token)
        if user is not None:
            request.user = user
            # Answer in the language on the token owner's profile, as the pages do for a
            # logged-in user (UserLanguageMiddleware runs before token authentication), unless
            # the request asks for one with Accept-Language.
            if user.language and not request.META.get("HTTP_ACCEPT_LANGUAGE"):
                translation.activate(user.language)
                request.LANGUAGE_CODE = user.language
        return user


class ErrorOut(Schema):
    code: str
    message: str
    details: dict = {}


def _error(api: NinjaAPI, request, status: int, code: str, message: str, details=None):
    return api.create_response(request, {"code": code, "message": message,
                                         "details": details or {}}, status=status)


def _validation_message(errors: list[dict]) -> tuple[str, list[dict]]:
    parts, details = [], []
    for err in errors[:20]:
        loc = [str(p) for p in err.get("loc", []) if p not in ("body", "payload", "query",
                                                                "path", "filters")]
        field = ".".join(loc) or "request"
        msg = err.get("msg", "invalid")
        if err.get("type") == "json_invalid":
            return _("The request body is not valid JSON."), [{"field": "body", "message": msg}]
        parts.append(f"{field}: {msg}")
        details.append({"field": field, "message": msg})
    return _("Invalid input. %(problems)s") % {"problems": "; ".join(parts)}, details


class Pagination(LimitOffsetPagination):
    """`limit` and `offset`, bounded: past 2**63 the database fails instead of answering."""

    class Input(Schema):
        limit: int = Field(100, ge=1, le=1000)
        offset: int = Field(0, ge=0, le=1_000_000_000)


def _raw_input_problem(request) -> tuple[str, str] | None:
    """What the schemas let through but the database refuses or misreads: NUL characters
    (PostgreSQL text cannot hold them), a query parameter given twice, and a JSON body that is
    not an object (read as an empty one)."""
    texts = [request.path]
    for key, values in request.GET.lists():
        # No query parameter of the API takes several values: a repeated one would be read
        # as its last value, silently.
        if len(values) > 1:
            return "query", _("'%(name)s' is given more than once; give it once.") % {
                "name": key}
        texts += [key, *values]
    # A file upload the handler's form parameters have read: there is no `body` any more;
    # check its text fields instead.
    form_read = request.content_type == "multipart/form-data" and hasattr(request, "_post")
    if form_read:
        for key, values in request.POST.lists():
            texts += [key, *values]
    if any("\x00" in text for text in texts):
        return "request", _("NUL characters (\\u0000) are not allowed.")
    if request.method not in ("POST", "PUT", "PATCH") or form_read or not request.body:
        return None
    try:
        data = json.loads(request.body)
    except (ValueError, RecursionError):
        return None  # the body parser already answered 400 for this
    if not isinstance(data, dict):
        return "body", _("The request body must be a JSON object.")
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack += list(value.keys()) + list(value.values())
        elif isinstance(value, list):
            stack += value
        elif isinstance(value, str) and "\x00" in value:
            return "body", _("NUL characters (\\u0000) are not allowed.")
    return None


def refuse_raw_input_problems(view_func):
    """Run after authentication and parsing, before the handler touches the database."""

    @functools.wraps(view_func)
    def guarded(request, *args, **kwargs):
        problem = _raw_input_problem(request)
        if problem is not None:
            field, message = problem
            raise DomainError(_("Invalid input. %(problems)s")
                              % {"problems": f"{field}: {message}"}, code="invalid_input",
                              status=422,
                              details={"errors": [{"field": field, "message": message}]})
        return view_func(request, *args, **kwargs)

    return guarded


def install_error_handlers(api: NinjaAPI) -> None:
    api.add_decorator(refuse_raw_input_problems, mode="operation")

    @api.exception_handler(DomainError)
    def domain_error(request, exc: DomainError):
        return _error(api, request, exc.status, exc.code, exc.message, exc.details)

    @api.exception_handler(NinjaValidationError)
    def validation_error(request, exc: NinjaValidationError):
        message, details = _validation_message(exc.errors)
        return _error(api, request, 422, "invalid_input", message, {"errors": details})

    @api.exception_handler(AuthenticationError)
    def auth_error(request, exc):
        return _error(api, request, 401, "not_authenticated",
                      _("Log in, or send 'Authorization: Bearer <token>' with an API token."))

    @api.exception_handler(HttpError)
    def http_error(request, exc: HttpError):
        code = {400: "bad_request", 403: "forbidden", 404: "not_found",
                405: "method_not_allowed"}.get(exc.status_code, "error")
        message = str(exc)
        if exc.status_code == 403 and "CSRF" in message:
            message = _("CSRF check failed: send the X-CSRFToken header with the csrftoken "
                        "cookie, or use an API token.")
        elif exc.status_code == 400 and "parse" in message.lower():
            message = _("The request body is not valid JSON.")
        return _error(api, request, exc.status_code, code, message)

    @api.exception_handler(RequestDataTooBig)
    def too_big(request, exc):
        return _error(api, request, 413, "too_large",
                      _("The request body is too large (at most 5 MB)."))

    @api.exception_handler(Http404)
    def not_found(request, exc):
        return _error(api, request, 404, "not_found", str(exc) or _("Not found."))

    @api.exception_handler(ObjectDoesNotExist)
    def does_not_exist(request, exc):
        return _error(api, request, 404, "not_found", _("Not found."))

    @api.exception_handler(OverflowError)
    def overflow(request, exc):
        # SQLite cannot bind an integer past 2**63 (an id filter, say); nothing was written.
        return _error(api, request, 400, "invalid",
                      _("A number in the request is out of range."))

    @api.exception_handler(IntegrityError)
    def integrity(request, exc):
        # Two requests raced past a guard; the database constraint held. Safe to retry.
        log.warning("integrity error on %s: %s", request.path, exc)
        return _error(api, request, 409, "conflict",
                      _("This change clashes with another one made at the same time; "
                        "reload and try again."))


@csrf_exempt
def api_not_found(request, path: str = ""):
    """JSON 404 for any /api/ address that does not exist."""
    from django.http import JsonResponse

    return JsonResponse({"code": "not_found",
                         "message": _("There is no API endpoint at %(path)s.")
                         % {"path": request.path},
                         "details": {}}, status=404)

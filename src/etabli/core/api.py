"""Shared API plumbing: authentication, errors as JSON, pagination."""


import logging

from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig
from django.db import IntegrityError
from django.http import Http404, HttpRequest
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
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
            return "The request body is not valid JSON.", [{"field": "body", "message": msg}]
        parts.append(f"{field}: {msg}")
        details.append({"field": field, "message": msg})
    return "Invalid input. " + "; ".join(parts), details


def install_error_handlers(api: NinjaAPI) -> None:
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
                      "Log in, or send 'Authorization: Bearer <token>' with an API token.")

    @api.exception_handler(HttpError)
    def http_error(request, exc: HttpError):
        code = {400: "bad_request", 403: "forbidden", 404: "not_found",
                405: "method_not_allowed"}.get(exc.status_code, "error")
        message = str(exc)
        if exc.status_code == 403 and "CSRF" in message:
            message = ("CSRF check failed: send the X-CSRFToken header with the csrftoken "
                       "cookie, or use an API token.")
        elif exc.status_code == 400 and "parse" in message.lower():
            message = "The request body is not valid JSON."
        return _error(api, request, exc.status_code, code, message)

    @api.exception_handler(RequestDataTooBig)
    def too_big(request, exc):
        return _error(api, request, 413, "too_large",
                      "The request body is too large (at most 5 MB).")

    @api.exception_handler(Http404)
    def not_found(request, exc):
        return _error(api, request, 404, "not_found", str(exc) or "Not found.")

    @api.exception_handler(ObjectDoesNotExist)
    def does_not_exist(request, exc):
        return _error(api, request, 404, "not_found", "Not found.")

    @api.exception_handler(IntegrityError)
    def integrity(request, exc):
        # Two requests raced past a guard; the database constraint held. Safe to retry.
        log.warning("integrity error on %s: %s", request.path, exc)
        return _error(api, request, 409, "conflict",
                      "This change clashes with another one made at the same time; "
                      "reload and try again.")


@csrf_exempt
def api_not_found(request, path: str = ""):
    """JSON 404 for any /api/ address that does not exist."""
    from django.http import JsonResponse

    return JsonResponse({"code": "not_found",
                         "message": f"There is no API endpoint at {request.path}.",
                         "details": {}}, status=404)
